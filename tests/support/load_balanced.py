"""Replicas of `mcp-bastion serve` behind Debian's nginx, as docs/operations.md ("Replicas
behind a load balancer") recommends: one config per replica sharing `sessions.key`,
`signing.key` and a Redis quota store (a real Valkey), each with its own audit spool; nginx
round-robin in front, retrying only what is safe to retry; a real token issuer; and one
upstream that records which replica forwarded each call."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc.jwk import ECKey

from .issuer import LocalIssuer, running_issuer
from .recording_upstream import RecordingUpstream
from .serve_process import ServeProcess, free_port, serve_process, write_config
from .servers import read_body, serve_asgi
from .valkey import Valkey, running_valkey

NGINX = "/usr/sbin/nginx"
WAIT_S = 30.0
BURST = 25  # the `metered` rule's burst
ACCEPT = "application/json, text/event-stream"

# What nginx does in front of the replicas (docs/operations.md quotes it). `error timeout`
# moves a request to the next replica only while it can still be resent: for a POST (every
# MCP call) that is when the connection failed before the request went out (a replica down or
# restarting: connect refused); once sent, a broken answer is a 502 to the client, because a
# tools/call may have run. `http_503`: a draining replica's 503 is retried for GET (the SSE
# notification channel); for a POST nginx passes it on (no `non_idempotent`) without counting
# it against `max_fails`: the replica leaves the rotation when its listener closes.
NGINX_LOCATION = """\
    proxy_pass http://bastion;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_buffering off;
    proxy_read_timeout 1h;
    proxy_next_upstream error timeout http_503;
    proxy_next_upstream_tries 3;
    proxy_next_upstream_timeout 10s;
"""


def _argument(doc: dict[str, Any]) -> str:
    value = ((doc.get("params") or {}).get("arguments") or {}).get("n", "")
    return str(value)


class PathUpstream:
    """A RecordingUpstream reached by each replica on its own path (`/r0/mcp`...), so the test
    knows which replica forwarded each call; `held` holds a streamed call open."""

    def __init__(self) -> None:
        self.recording = RecordingUpstream()
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (replica path, JSON-RPC message)
        self.hold = threading.Event()
        self.held_open = threading.Event()
        self._lock = threading.Lock()

    def replicas_of(self, argument: str) -> list[str]:
        """The replica path of each forwarded call whose `n` argument is `argument`."""
        with self._lock:
            return [path for path, doc in self.calls if _argument(doc) == argument]

    def arguments(self) -> list[str]:
        """The `n` argument of every call forwarded, by any replica."""
        with self._lock:
            return [_argument(doc) for _, doc in self.calls]

    def count_from(self, replica: int) -> int:
        with self._lock:
            return sum(1 for path, _ in self.calls if path == f"/r{replica}/mcp")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.recording(scope, receive, send)
            return
        body = await read_body(receive)
        doc = orjson.loads(body)
        if isinstance(doc, dict):
            with self._lock:
                self.calls.append((scope["path"], doc))
            if doc.get("method") == "tools/call" and doc["params"]["name"] == "held":
                await self._held(doc, receive, send)
                return
        replay = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def again() -> Any:
            return next(replay, None) or await receive()

        await self.recording(scope, again, send)

    async def _held(self, doc: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        note = {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 0},
        }
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + orjson.dumps(note) + b"\n\n",
                "more_body": True,
            }
        )
        if self.hold.is_set():
            self.held_open.set()
            while (await receive())["type"] != "http.disconnect":
                pass  # open until the replica forwarding it goes away
            return
        done = {"jsonrpc": "2.0", "id": doc["id"], "result": {"content": [{"type": "text", "text": "done"}]}}
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(done) + b"\n\n"})


@dataclass
class Replica:
    index: int
    config: Path
    port: int
    audit_file: Path
    process: ServeProcess | None = None
    _running: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> None:
        self._running = contextlib.ExitStack()
        self.process = self._running.enter_context(serve_process(self.config, self.port))

    def close(self) -> None:
        self._running.close()
        self.process = None

    def events(self) -> list[dict[str, Any]]:
        if not self.audit_file.exists():
            return []
        return [json.loads(line) for line in self.audit_file.read_bytes().splitlines()]


@dataclass
class Stack:
    base: str
    issuer: LocalIssuer
    upstream: PathUpstream
    replicas: list[Replica]
    valkey: Valkey

    def url(self) -> str:
        return f"{self.base}/rec/mcp"

    def token(self, subject: str = "alice") -> str:
        return self.issuer.token(audience=self.url(), subject=subject)

    def headers(self, token: str, **extra: str) -> dict[str, str]:
        return {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "accept": ACCEPT,
            **extra,
        }

    def audited(self) -> list[dict[str, Any]]:
        return [event for replica in self.replicas for event in replica.events()]


def _replica_config(tmp: Path, index: int, base: str, issuer: str, upstream: str, valkey: Valkey) -> Replica:
    folder = tmp / f"replica-{index}"
    folder.mkdir()
    port = free_port()
    audit_file = folder / "audit.jsonl"
    config = {
        "public_base_url": base,  # the load balancer's URL: tokens name it, not a replica
        "listen": {
            "host": "127.0.0.1",
            "port": port,
            "drain": {"grace_seconds": 10, "stream_grace_seconds": 1},
        },
        "identity_providers": [{"name": "test", "issuer": issuer, "allow_insecure_http": True}],
        "servers": [{"name": "rec", "upstream": f"{upstream}/r{index}/mcp"}],
        "sessions": {"key": {"file": str(tmp / "sessions.key")}},
        "signing": {"key": {"file": str(tmp / "signing.jwk")}},
        "quotas": {
            "store": "redis",
            "redis": {"url": valkey.url},
            "rules": [
                {
                    "name": "metered",
                    "key": ["subject", "tool"],
                    "tools": ["metered"],
                    "rate": 1,
                    "per_seconds": 3600,
                    "burst": BURST,
                }
            ],
        },
        "audit": {
            "sink": "file",
            "path": str(audit_file),
            "spool": {"dir": str(folder / "spool"), "segment_bytes": 65_536, "retry_max_seconds": 0.2},
        },
    }
    return Replica(index, write_config(folder / "bastion.yaml", config), port, audit_file)


def _nginx_config(tmp: Path, port: int, replicas: list[Replica]) -> Path:
    servers = "".join(f"    server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;\n" for r in replicas)
    temp = "".join(
        f"  {kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = (
        "daemon off;\nmaster_process off;\n"  # one foreground process the test owns (no privilege drop)
        f"pid {tmp / 'nginx.pid'};\nerror_log {tmp / 'nginx-error.log'} info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log {tmp / 'nginx-access.log'};\n{temp}"
        f"  upstream bastion {{\n{servers}  }}\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    location / {{\n{NGINX_LOCATION}    }}\n  }}\n"
        "}\n"
    )
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


def until(condition: Callable[[], bool], message: str, timeout: float = WAIT_S) -> None:
    # Polling subprocesses' ports and files: there is no event in this process to wait on.
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        pause.wait(0.05)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def _nginx(tmp: Path, port: int, replicas: list[Replica]) -> Iterator[None]:
    config = _nginx_config(tmp, port, replicas)
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        until(
            lambda: process.poll() is None and answers(f"http://127.0.0.1:{port}/healthz"),
            "nginx did not start",
        )
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextlib.contextmanager
def running_stack(tmp: Path, replicas: int = 3) -> Iterator[Stack]:
    """Valkey, the issuer, the upstream, `replicas` serve processes and nginx, until the block
    exits; a replica the block stopped or killed is closed too."""
    assert os.access(NGINX, os.X_OK), "Debian's nginx is missing: run scripts/install-apt-tools (as root)"
    (tmp / "sessions.key").write_text(base64.b64encode(os.urandom(32)).decode())
    (tmp / "signing.jwk").write_text(json.dumps(ECKey.generate_key("P-256").as_dict(private=True)))
    upstream = PathUpstream()
    nginx_port = free_port()
    base = f"http://127.0.0.1:{nginx_port}"
    with running_valkey() as valkey, running_issuer() as issuer, serve_asgi(upstream) as up:
        members = [_replica_config(tmp, i, base, issuer.issuer, up.base_url, valkey) for i in range(replicas)]
        try:
            for replica in members:
                replica.start()
            with _nginx(tmp, nginx_port, members):
                yield Stack(base, issuer, upstream, members, valkey)
        finally:
            for replica in members:
                replica.close()
