"""`mcp-bastion wrap -- CMD ARGS…`: one stdio plug-in behind the whole gateway, on loopback.

Without `--config`, the development IdP shares the port with the gateway, exactly as in the
demo (same login page, same `--auto-approve`), and the plug-in is the one server, at
`http://HOST:PORT/NAME/mcp`. With `--config FILE`, the plug-in is added to that `serve`
config as one more `command:` server and the file's own IdPs are trusted instead.

The plug-in's environment is `PATH`, `HOME`, `LANG` and `TMPDIR` (those set) plus every
`--env NAME`, each taken from wrap's own environment as a secret: nothing else of it leaks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..app import build_gateway
from ..config import BastionConfig, LoadedConfig, parse_config
from ..demo.router import PrefixRouter
from ..demo.stack import check_bind, listen_socket, uvicorn_server
from ..devidp import DevIdpSettings, build_devidp

__all__ = [
    "DEFAULT_ENV",
    "WrapOptions",
    "WrapStack",
    "build_wrap_stack",
    "render_wrap",
    "run_wrap",
    "wrap_config",
]

DEFAULT_ENV = ("PATH", "HOME", "LANG", "TMPDIR")


@dataclass(frozen=True)
class WrapOptions:
    command: tuple[str, ...]
    name: str = "local"
    host: str = "127.0.0.1"
    port: int = 8000
    auto_approve: str | None = None
    allow_remote: bool = False
    process: str = "per_subject"
    env: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrapStack:
    base_url: str
    issuer: str | None
    name: str
    config: BastionConfig
    app: Any

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.name}/mcp"

    def client_config(self) -> dict[str, Any]:
        return {"mcpServers": {self.name: {"type": "http", "url": self.url}}}


def wrapped_server(
    options: WrapOptions, index: int, environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The `command:` server entry for the plug-in, and the secrets its environment reads."""
    names = [n for n in dict.fromkeys((*DEFAULT_ENV, *options.env)) if n in environ]
    server = {
        "name": options.name,
        "title": " ".join(options.command)[:200],
        "command": list(options.command),
        "env": {n: {"env": n} for n in names},
        "stdio": {"process": options.process},
    }
    return server, {f"servers[{index}].env.{n}": environ[n] for n in names}


def build_wrap_stack(
    options: WrapOptions, *, port: int, environ: Mapping[str, str] | None = None
) -> WrapStack:
    """The development IdP and the gateway with the plug-in as its one server, on one port."""
    display_host = f"[{options.host}]" if ":" in options.host else options.host
    base = f"http://{display_host}:{port}"
    issuer = f"{base}/idp"
    url = f"{base}/{options.name}/mcp"
    idp = build_devidp(
        DevIdpSettings(
            issuer=issuer,
            resources={url: ("tools.read", "tools.write", "admin")},
            auto_approve=options.auto_approve,
        )
    )
    server, secrets = wrapped_server(options, 0, os.environ if environ is None else environ)
    config = parse_config(
        {
            "public_base_url": base,
            "allowed_hosts": [f"localhost:{port}", f"127.0.0.1:{port}"],
            "identity_providers": [{"name": "devidp", "issuer": issuer, "allow_insecure_http": True}],
            "servers": [server],
            "audit": {"sink": "stdout"},
        },
        source="<wrap>",
    )
    secrets["sessions.key"] = base64.b64encode(os.urandom(32)).decode()
    gateway = build_gateway(LoadedConfig(config, secrets))
    app = PrefixRouter([(idp.path_prefixes, idp.app)], fallback=gateway)
    return WrapStack(base, issuer, options.name, config, app)


def wrap_config(
    loaded: LoadedConfig, options: WrapOptions, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """A `serve` config with the plug-in added as one more server (its IdPs, its limits)."""
    config = loaded.config
    index = len(config.servers)
    server, secrets = wrapped_server(options, index, os.environ if environ is None else environ)
    data = config.model_dump(mode="json", exclude_defaults=True)
    data["servers"] = [*data["servers"], server]
    merged = parse_config(data, source=loaded.path or "<wrap>")
    return LoadedConfig(merged, {**loaded.secrets, **secrets}, loaded.path)


async def run_wrap(options: WrapOptions, announce: Callable[[WrapStack], None]) -> None:
    """Serve the development IdP and the wrapped plug-in until interrupted."""
    check_bind(options.host, options.allow_remote)
    sock = listen_socket(options.host, options.port)
    stack = build_wrap_stack(options, port=sock.getsockname()[1])
    server = uvicorn_server(stack.app, access_log=False)
    # Ctrl-C and SIGTERM stop the server, which stops the plug-ins (the gateway's shutdown)
    # and returns; uvicorn's own capture would re-raise the signal after that.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # an override by design
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop, setattr, server, "should_exit", True)
    running = asyncio.ensure_future(server.serve(sockets=[sock]))
    await stack.app.started.wait()
    announce(stack)
    await running


def render_wrap(stack: WrapStack, command: Sequence[str], auto_approve: str | None) -> str:
    login = "auto-approved as " + auto_approve if auto_approve else "any user name on the consent page"
    lines = [
        f"mcp-bastion wrap: {' '.join(command)}",
        f"  MCP server       {stack.url}",
    ]
    if stack.issuer is not None:
        lines.append(f"  development IdP  {stack.issuer}   (login: {login})")
    lines += [
        f"  gateway JWKS     {stack.base_url}/.well-known/jwks.json   (verifies the identity token the plug-in receives)",
        "",
        "Paste into your MCP client's configuration:",
        json.dumps(stack.client_config(), indent=2),
        "",
        "Audit events follow on stdout, one JSON object per line. Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
