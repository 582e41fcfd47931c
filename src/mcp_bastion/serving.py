"""Running the gateway: its own HTTP/1.1 server on uvloop, in one or more worker processes."""

from __future__ import annotations

import logging
import os
import sys

import uvloop

from .app import build_gateway
from .config import BastionConfig, LoadedConfig, config_warnings
from .errors import ConfigError
from .native import build_description
from .server import ConnectionLimits, HttpServer, bind, run_workers
from .telemetry import Telemetry
from .telemetry.listener import serving_metrics

__all__ = ["connection_limits", "serve"]

log = logging.getLogger("mcp_bastion")


def serve(loaded: LoadedConfig, *, workers: int | None = None) -> None:
    """Serve a loaded config. Every check ran in `load_config` (secrets included): nothing the
    config holds can fail after "listening" is logged."""
    config = loaded.config
    listen = config.listen
    count = workers or listen.workers
    for warning in config_warnings(config, workers=count):
        log.warning("%s: %s", loaded.path or "config", warning)
    for server in config.servers:
        resource = f"{config.public_base_url}/{server.name}/mcp"
        auth = "auth on" if server.auth else "AUTH OFF"
        log.info(
            "protecting %s -> %s (%s, upstream auth %s)",
            resource,
            server.upstream,
            auth,
            server.upstream_auth.type,
        )
    # Bound once, before any worker starts: the workers accept from the same socket.
    try:
        sock = bind(listen.host, listen.port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {listen.host}:{listen.port} ({os.strerror(exc.errno) if exc.errno else exc})",
            source=loaded.path or "",
            path="listen",
            hint="pick another listen.port, or stop what holds it",
        ) from None
    log.info("listening on %s:%d with %d worker(s), %s", listen.host, listen.port, count, build_description())

    async def work() -> None:
        # Built in the worker itself: connection pools and key caches are per process.
        gateway = build_gateway(loaded)
        server = HttpServer(gateway, connection_limits(config))
        metrics = gateway.telemetry.metrics if isinstance(gateway.telemetry, Telemetry) else None
        async with serving_metrics(metrics, server, config.telemetry.metrics, count):
            await server.serve(sock, handle_signals=True)

    if count == 1:
        uvloop.run(work())
        return
    status = run_workers(count, lambda: uvloop.run(work()))
    if status:
        sys.exit(status)


def connection_limits(config: BastionConfig) -> ConnectionLimits:
    """The connection bounds of `limits` (the same for `serve` and for the tests)."""
    limits = config.limits
    return ConnectionLimits(
        head_timeout=limits.header_read_timeout_seconds,
        max_header_bytes=limits.max_header_bytes,
        keep_alive_timeout=limits.keep_alive_timeout_seconds,
        max_connections=limits.max_connections,
    )
