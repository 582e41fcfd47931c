"""The metrics listener: `GET /metrics` on an address of its own, served by the gateway's own
HTTP server in the same event loop as the gateway (so the counters need no lock).

Separate by default and on loopback by default: the metrics name servers and identity
providers and count refusals, which is for the operator, not for MCP clients. With N worker
processes each worker serves its own counters on the first free port of port … port+N-1
(Prometheus scrapes each; sums across them are PromQL's job).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator

from ..asgi import Receive, Scope, Send
from ..config.telemetry import MetricsConfig
from ..errors import ConfigError
from ..server import ConnectionLimits, HttpServer, bind
from .gateway_metrics import GatewayMetrics
from .metrics import CONTENT_TYPE

__all__ = ["MetricsApp", "bind_metrics", "serving_metrics"]

log = logging.getLogger("mcp_bastion")
_LIMITS = ConnectionLimits(
    head_timeout=10.0, max_header_bytes=8192, keep_alive_timeout=30.0, max_connections=64
)


class MetricsApp:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            await _reply(send, 404, b"text/plain", b"not found\n")
        elif scope["method"] not in ("GET", "HEAD"):
            await _reply(send, 405, b"text/plain", b"method not allowed\n")
        else:
            body = self._metrics.exposition()
            await _reply(send, 200, CONTENT_TYPE, body if scope["method"] == "GET" else b"", len(body))

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


async def _reply(
    send: Send, status: int, content_type: bytes, body: bytes, length: int | None = None
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body) if length is None else length).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bind_metrics(config: MetricsConfig, workers: int = 1) -> socket.socket:
    """The metrics socket of this process: the first free port of port … port+workers-1."""
    last: OSError | None = None
    ports = [config.port] if config.port == 0 else range(config.port, config.port + workers)
    for port in ports:
        try:
            return bind(config.host, port)
        except OSError as exc:
            last = exc
            if exc.errno != errno.EADDRINUSE:
                break
    reason = os.strerror(last.errno) if last is not None and last.errno else str(last)
    raise ConfigError(
        f"cannot listen for metrics on {config.host}:{config.port} ({reason})",
        path="telemetry.metrics",
        hint="pick another telemetry.metrics.port, or stop what holds it",
    )


@contextlib.asynccontextmanager
async def serving_metrics(
    metrics: GatewayMetrics | None,
    server: HttpServer,
    config: MetricsConfig,
    workers: int,
    sock: socket.socket | None = None,
) -> AsyncIterator[None]:
    """Serve `metrics` beside `server` (the MCP listener) while the block runs; on `sock` when
    given (bound already), else on the configured address."""
    if metrics is None:
        yield
        return
    listener = HttpServer(MetricsApp(metrics), _LIMITS, grace=1.0)
    metrics.watch_connections(server.open_connections)
    sock = sock or bind_metrics(config, workers)
    log.info("metrics on http://%s:%d/metrics", config.host, sock.getsockname()[1])
    task = asyncio.ensure_future(listener.serve(sock))
    try:
        yield
    finally:
        listener.stop()
        await task
        sock.close()
