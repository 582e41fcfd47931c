"""Start the real gateway on loopback in front of real upstreams, for integration tests."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_bastion.app import Gateway, build_gateway
from mcp_bastion.audit import AuditEvent, MemorySink
from mcp_bastion.config import BastionConfig, LoadedConfig, parse_config
from mcp_bastion.server import HttpServer
from mcp_bastion.serving import connection_limits

from .servers import STARTUP_TIMEOUT_S, RunningServer, bind_loopback, run_in_thread


class AuditFeed(MemorySink):
    """The gateway's audit events, with a wait: an event is emitted when its exchange ends,
    which can be just after the client has its answer."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def emit(self, event: AuditEvent) -> None:
        with self._changed:
            super().emit(event)
            self._changed.notify_all()

    def wait_for(self, wanted: Callable[[AuditEvent], bool], timeout: float = 10.0) -> AuditEvent:
        with self._changed:
            found = self._changed.wait_for(lambda: next(filter(wanted, self.events), None), timeout)
        assert found is not None, f"no such audit event within {timeout}s: {self.events}"
        return found

    def wait_count(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` events were emitted (every exchange before them has ended)."""
        with self._changed:
            reached = self._changed.wait_for(lambda: len(self.events) >= count, timeout)
        assert reached, f"{len(self.events)} audit events within {timeout}s, expected {count}"


@dataclass
class RunningGateway:
    server: RunningServer
    gateway: Gateway
    audit: AuditFeed

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def url(self, name: str) -> str:
        return f"{self.server.base_url}/{name}/mcp"


def gateway_config(
    base_url: str, issuer: str, upstreams: Mapping[str, str], **overrides: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "public_base_url": base_url,
        "identity_providers": [{"name": "test", "issuer": issuer, "allow_insecure_http": True}],
        "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
        "audit": {"sink": "none"},
    }
    config.update(overrides)
    return config


@contextlib.contextmanager
def running_gateway(
    issuer: str, upstreams: Mapping[str, str], secrets: Mapping[str, str] | None = None, **overrides: Any
) -> Iterator[RunningGateway]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = parse_config(gateway_config(base, issuer, upstreams, **overrides))
    audit = AuditFeed()
    gateway = build_gateway(LoadedConfig(config, dict(secrets or {})), audit=audit)
    with serve_gateway(gateway, sock, config) as server:
        yield RunningGateway(server, gateway, audit)


MCP_ACCEPT = "application/json, text/event-stream"


def post_mcp(
    http: httpx.Client,
    url: str,
    body: object,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a JSON-RPC body (or raw bytes) to an MCP endpoint as a well-behaved client would."""
    sent = {"content-type": "application/json", "accept": MCP_ACCEPT}
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post(url, content=content, headers=sent)


@contextlib.contextmanager
def serve_gateway(gateway: Gateway, sock: socket.socket, config: BastionConfig) -> Iterator[RunningServer]:
    """Serve the gateway on its own server (as `mcp-bastion serve` does), in a thread with its
    own event loop, until the block exits."""
    server = HttpServer(gateway, connection_limits(config), grace=2.0)
    thread, failure = run_in_thread(server, sock)
    if not server.started.wait(STARTUP_TIMEOUT_S) or failure:
        raise RuntimeError(f"the gateway did not start: {failure}")
    try:
        yield RunningServer("127.0.0.1", sock.getsockname()[1])
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()
    # A shutdown that hangs would leave the audit spool undelivered: say so, not an empty file.
    assert not thread.is_alive(), "the gateway did not stop within 10 s of stop()"
