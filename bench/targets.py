"""The targets under test, each started as its own process with its own fixture upstream.

    A  direct           the fixture upstream itself: the limit
    B  nginx            Debian's nginx, one proxy_pass hop (keepalive upstream, buffering off)
    C  bastion          mcp-bastion, full auth: JWT, scopes, tools/list filtering, audit to a file;
                        the compiled build (what `pip install .` installs; bench/run builds it)
    P  bastion-py       C, interpreted: the pure-Python fallback (no C compiler at install)
    D  bastion-noauth   mcp-bastion with `auth: false` for the server: the proxy cost alone (compiled)
    F  bastion-filters  C with safety filters: secrets on results, a regex on arguments and
                        results, tool-description poisoning (docs/safety.md)
    G  bastion-guard    C with an external guard on arguments and results (the fixture
                        upstream's /guard, which allows everything)
    E  fastmcp          FastMCP's proxy (`create_proxy`) with its JWTVerifier, as shipped
    C2 bastion-2w       C under `serve --workers 2` (the worker-scaling workload only)
    CC bastion-cedar    C with Cedar policies (the Cedar workloads only): the examples on groups
                        and working hours, which read a claim and the time, not the arguments
    CA bastion-cedar-args  CC plus the example on a `path` argument: every call's arguments go
                        to Cedar, the costliest case
    O  bastion-nopin    C with `pinning: {mode: off}` (the pinning workloads only; C runs the
                        default, `record`)
    K  bastion-enforce  C with `pinning: {mode: enforce}` and a lockfile `mcp-bastion pin` wrote
                        from the fixture upstream (the pinning workloads only)

Giving every target its own upstream keeps each upstream's request counter its own.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .issuer import LocalIssuer
from .nginx import nginx_argv, write_nginx_config
from .procs import Process, free_port
from .tools import FILTERED_COUNT, GRANTED_SCOPES, TOOL_COUNT

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
FASTMCP_PYTHON = REPO / "bench" / ".venv-fastmcp" / "bin" / "python"
# The unpacked compiled wheel (scripts/build-native), set by bench/run. Without it every
# mcp-bastion target runs interpreted, and P is not started.
NATIVE = os.environ.get("BENCH_NATIVE") or None
# The safety filters of target F (`servers[].filters`): the local chain, nothing found in the
# fixture's answers (the usual case), every tool definition judged at list time.
LOCAL_FILTERS: list[dict[str, object]] = [
    {"id": "secrets", "type": "secrets"},
    {"id": "ssn", "type": "regex", "action": "deny", "patterns": {"ssn": r"\b\d{3}-\d{2}-\d{4}\b"}},
    {"id": "poisoning", "type": "poisoning"},
]
LEGACY = "2025-11-25"
BASE_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@dataclass
class Upstream:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__stats", timeout=5) as reply:
            return dict(json.loads(reply.read()))

    def requests(self) -> int:
        return self.stats()["requests"]


@dataclass
class Target:
    key: str
    name: str
    title: str
    url: str
    process: Process
    upstream: Upstream
    token: str | None = None
    expected_tools: int = TOOL_COUNT
    session: str | None = None
    min_seconds: int = 1  # shortest wrk run that still gets answers back at c=32
    extra: list[Process] = field(default_factory=list)

    def headers(self, era: str) -> dict[str, str]:
        """Request headers for a workload's era: legacy (with session), modern, or initialize."""
        headers = dict(BASE_HEADERS)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if era == "legacy":
            headers["MCP-Protocol-Version"] = LEGACY
            if self.session is not None:
                headers["Mcp-Session-Id"] = self.session
        elif era == "modern":
            headers.update(
                {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
            )
        return headers

    def open_session(self) -> None:
        """Initialize once through the target, as a client would: initialize, initialized, tools/list.

        Session-era workloads reuse the id. The tools/list also teaches a gateway the tools'
        annotations before load arrives: on a cold mcp-bastion, calls that arrive while its
        first catalog fetch is under way are refused 403 (see docs/performance.md).
        """
        body = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
        with httpx.Client(timeout=30, trust_env=False) as client:
            reply = client.post(self.url, json=body, headers=self.headers("initialize"))
            if reply.status_code != 200 or "mcp-session-id" not in reply.headers:
                raise RuntimeError(
                    f"{self.name}: initialize answered {reply.status_code}: {reply.text[:300]}"
                )
            self.session = reply.headers["mcp-session-id"]
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            reply = client.post(self.url, json=note, headers=self.headers("legacy"))
            if reply.status_code not in (200, 202):
                raise RuntimeError(f"{self.name}: notifications/initialized answered {reply.status_code}")
            listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
            reply = client.post(self.url, json=listing, headers=self.headers("legacy"))
            if reply.status_code != 200 or reply.text.count('"inputSchema"') != self.expected_tools:
                raise RuntimeError(
                    f"{self.name}: tools/list answered {reply.status_code}: {reply.text[:300]}"
                )

    def cpu_seconds(self) -> float:
        return self.process.cpu_seconds()

    def stop(self) -> None:
        for process in (self.process, *self.extra, self.upstream.process):
            process.stop()


class Launcher:
    """Starts targets; everything they write goes under ``out``."""

    def __init__(self, out: Path, issuer: LocalIssuer) -> None:
        self.out = out
        self.logs = out / "logs"
        self.issuer = issuer
        self.session_key = base64.b64encode(os.urandom(32)).decode()

    def upstream(self, key: str) -> Upstream:
        port = free_port()
        argv = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
        process = Process(f"upstream-{key}", argv, self.logs / f"upstream-{key}.log", cwd=REPO)
        process.wait_for_port(port)
        return Upstream(process, port)

    def direct(self) -> Target:
        upstream = self.upstream("A")
        title = "the fixture upstream, directly"
        return Target("A", "direct", title, upstream.url, upstream.process, upstream)

    def nginx(self) -> Target:
        upstream = self.upstream("B")
        port = free_port()
        config = write_nginx_config(self.out / "nginx", port, upstream.port)
        process = Process("nginx", nginx_argv(config), self.logs / "nginx.log")
        process.wait_for_port(port)
        title = "nginx proxy_pass hop"
        return Target("B", "nginx", title, f"http://127.0.0.1:{port}/mcp", process, upstream)

    def bastion(
        self,
        key: str,
        *,
        auth: bool,
        workers: int = 1,
        compiled: bool = True,
        cedar: tuple[str, ...] = (),
        pinning: str | None = None,
        filters: str | None = None,  # "local" (F) or "guard" (G)
    ) -> Target:
        compiled = compiled and NATIVE is not None
        env = self._gateway_env(compiled)
        upstream = self.upstream(key)
        port = free_port()
        path = self.out / f"bastion-{key}.yaml"
        chain: list[dict[str, object]] = []
        if filters == "local":
            chain = LOCAL_FILTERS
        elif filters == "guard":
            chain = [{"id": "guard", "type": "guard", "url": f"http://127.0.0.1:{upstream.port}/guard"}]
        config = self._bastion_config(key, port, upstream.url, auth, pinning, chain)
        if cedar:
            config["policy"] = {"files": self._policies(key, cedar)}
        path.write_text(json.dumps(config, indent=2))
        if pinning == "enforce":
            # The lockfile from the live catalog, as an operator would write it.
            pin = [str(VENV_BIN / "mcp-bastion"), "pin", "--config", str(path)]
            subprocess.run(pin, env=env, cwd=REPO, capture_output=True, text=True, check=True)
        argv = [str(VENV_BIN / "mcp-bastion"), "serve", "--config", str(path), "--workers", str(workers)]
        process = Process(f"bastion-{key}", argv, self.logs / f"bastion-{key}.log", env=env, cwd=REPO)
        process.wait_for_port(port)
        url = f"http://127.0.0.1:{port}/bench/mcp"
        build = "compiled" if compiled else "interpreted"
        if not auth:
            return Target(key, "bastion-noauth", f"mcp-bastion, auth: false, {build}", url, process, upstream)
        name = "bastion" if workers == 1 else f"bastion-{workers}w"
        if not compiled and NATIVE is not None:
            name = "bastion-py"
        title = f"mcp-bastion, full auth, {build}, {workers} worker{'s' if workers > 1 else ''}"
        if cedar:
            reads = "the arguments too" if "path-under-prefix" in cedar else "not the arguments"
            name = "bastion-cedar-args" if "path-under-prefix" in cedar else "bastion-cedar"
            title = f"{title}, Cedar: {', '.join(cedar[1:])} ({reads})"
        if pinning is not None:
            name = {"off": "bastion-nopin", "enforce": "bastion-enforce"}.get(pinning, f"bastion-{pinning}")
            title += f", pinning {pinning}"
        if filters is not None:
            name = f"bastion-{'filters' if filters == 'local' else 'guard'}"
            title += ", safety filters" if filters == "local" else ", external guard"
        # A groups claim for the policies to read (ops: the destructive-tools rule is evaluated
        # and passes, so CC lists what C lists); the token is otherwise the same.
        token = self.issuer.token(url, GRANTED_SCOPES, groups=["ops"])
        return Target(key, name, title, url, process, upstream, token=token, expected_tools=FILTERED_COUNT)

    def _policies(self, key: str, names: tuple[str, ...]) -> list[str]:
        """Examples of examples/policies/, the path rule aimed at the bench's server. None
        refuses what the bench sends (its calls have no `path`, its client works at all hours,
        its token is in `ops`), so every answer is the one C gives; each is evaluated."""
        folder = self.out / f"policies-{key}"
        folder.mkdir(exist_ok=True)
        files = []
        for name in names:
            text = (REPO / "examples" / "policies" / f"{name}.cedar").read_text()
            target = folder / f"{name}.cedar"
            target.write_text(text.replace('Server::"files"', 'Server::"bench"'))
            files.append(str(target))
        return files

    def _gateway_env(self, compiled: bool) -> dict[str, str]:
        """The gateway's environment, with the compiled build first on PYTHONPATH or absent;
        checked with `mcp-bastion --version`, which names the build it runs."""
        env = dict(os.environ, BENCH_SESSION_KEY=self.session_key)
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != NATIVE]
        if compiled and NATIVE is not None:
            paths.insert(0, NATIVE)
        env["PYTHONPATH"] = os.pathsep.join(paths)
        version = subprocess.run(
            [str(VENV_BIN / "mcp-bastion"), "--version"], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        if ("compiled request path" in version) != compiled:
            raise RuntimeError(
                f"expected the {'compiled' if compiled else 'interpreted'} build, got {version!r}"
            )
        return env

    def fastmcp(self) -> Target:
        upstream = self.upstream("E")
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        argv = [
            str(FASTMCP_PYTHON),
            str(REPO / "bench" / "fastmcp_proxy.py"),
            "--port",
            str(port),
            "--upstream",
            upstream.url,
            "--jwks-uri",
            self.issuer.jwks_uri,
            "--issuer",
            self.issuer.url,
            "--audience",
            url,
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        process = Process("fastmcp", argv, self.logs / "fastmcp.log", env=env, cwd=self.out)
        process.wait_for_port(port, timeout=60)
        token = self.issuer.token(url, GRANTED_SCOPES)
        title = "FastMCP create_proxy + JWTVerifier"
        # ~2 s per answer at c=32: a 1 s run would see none.
        return Target("E", "fastmcp", title, url, process, upstream, token=token, min_seconds=3)

    def _pinning(self, key: str, mode: str) -> dict[str, str]:
        if mode == "off":
            return {"mode": "off"}
        return {"mode": mode, "lockfile": str(self.out / f"bastion-{key}.lock.json")}

    def _bastion_config(
        self,
        key: str,
        port: int,
        upstream: str,
        auth: bool,
        pinning: str | None = None,
        filters: list[dict[str, object]] | None = None,
    ) -> dict[str, Any]:
        server: dict[str, Any] = {
            "name": "bench",
            "upstream": upstream,
            "auth": auth,
            # Destructive tools need admin, which the bench token lacks: tools/list is filtered.
            "destructive_scopes": ["admin"],
            **_callable_listing(),
        }
        if pinning is not None:
            server["pinning"] = self._pinning(key, pinning)
        if filters:
            server["filters"] = filters
        return {
            "public_base_url": f"http://127.0.0.1:{port}",
            "listen": {"host": "127.0.0.1", "port": port},
            "identity_providers": [
                {
                    "name": "bench",
                    "issuer": self.issuer.url,
                    "discovery": False,
                    "jwks_uri": self.issuer.jwks_uri,
                    "algorithms": ["ES256"],
                    "allow_insecure_http": True,
                }
            ],
            "servers": [server],
            # The idle-stream workload holds 1,000 upstream streams open at once; the default pool is 100.
            "limits": {"upstream_pool_size": 2048},
            "audit": {"sink": "file", "path": str(self.out / f"audit-{key}.jsonl")},
            "sessions": {"key": {"env": "BENCH_SESSION_KEY"}},
        }


def _callable_listing() -> dict[str, str]:
    """`tools_list: callable` where the gateway under test knows the key (it lists only what the
    token may call, as every revision before the key did), so `list_c32` measures the same
    filtering across revisions; `--ref` of an older revision gets no key it would refuse."""
    from mcp_bastion.config.model import ServerConfig

    return {"tools_list": "callable"} if "tools_list" in ServerConfig.model_fields else {}
