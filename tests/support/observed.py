"""The gateway with its telemetry on, served as `serve` serves it: the MCP listener and the
metrics listener in one event loop, in a thread, on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import uvloop

from mcp_bastion.app import Gateway, build_gateway
from mcp_bastion.audit import AuditSink
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.server import HttpServer
from mcp_bastion.serving import connection_limits
from mcp_bastion.telemetry import Telemetry
from mcp_bastion.telemetry.listener import serving_metrics

from .gateway import AuditFeed, gateway_config
from .servers import STARTUP_TIMEOUT_S, bind_loopback


@dataclass
class ObservedGateway:
    gateway: Gateway
    audit: AuditFeed | AuditSink
    base_url: str
    metrics_url: str

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}/mcp"

    @property
    def telemetry(self) -> Telemetry:
        assert isinstance(self.gateway.telemetry, Telemetry)
        return self.gateway.telemetry


@contextlib.contextmanager
def observed_gateway(
    issuer: str,
    upstreams: Mapping[str, str],
    *,
    telemetry: dict[str, Any],
    clock: Callable[[], float] | None = None,
    audit: AuditSink | None = None,
    **overrides: Any,
) -> Iterator[ObservedGateway]:
    sock, metrics_sock = bind_loopback(), bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = parse_config(gateway_config(base, issuer, upstreams, telemetry=telemetry, **overrides))
    sink = audit if audit is not None else AuditFeed()
    seams: dict[str, Any] = {"audit": sink} if clock is None else {"audit": sink, "clock": clock}
    gateway = build_gateway(LoadedConfig(config, {}), **seams)
    server = HttpServer(gateway, connection_limits(config), grace=2.0)
    metrics = gateway.telemetry.metrics if isinstance(gateway.telemetry, Telemetry) else None
    failure: list[BaseException] = []

    async def serve() -> None:
        async with serving_metrics(metrics, server, config.telemetry.metrics, 1, metrics_sock):
            await server.serve(sock)

    def run() -> None:
        try:
            uvloop.run(serve())
        except BaseException as exc:  # surfaced to the test
            failure.append(exc)
            server.started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not server.started.wait(STARTUP_TIMEOUT_S) or failure:
        raise RuntimeError(f"the gateway did not start: {failure}")
    try:
        yield ObservedGateway(gateway, sink, base, f"http://127.0.0.1:{_port(metrics_sock)}/metrics")
    finally:
        server.stop()
        thread.join(timeout=10)
        sock.close()
        metrics_sock.close()
    # A shutdown that hangs would leave the audit spool undelivered: say so, not an empty file.
    assert not thread.is_alive(), "the gateway did not stop within 10 s of stop()"
    assert not failure, failure


def _port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port
