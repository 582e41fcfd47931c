"""Running the gateway: its own HTTP/1.1 server on uvloop, in one or more worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

import uvloop

from .app import build_gateway
from .config import BastionConfig, LoadedConfig, config_warnings
from .errors import ConfigError
from .logs import redactor
from .native import build_description
from .reload import ConfigReloader, with_process_keys
from .server import ConnectionLimits, HttpServer, bind, run_workers
from .server.drain import DrainPolicy
from .server.runner import ServedApp
from .server.tls import CertificateReloader, server_context
from .telemetry import telemetry_for
from .telemetry.listener import serving_metrics

__all__ = ["connection_limits", "serve"]

log = logging.getLogger("mcp_bastion")


def serve(
    loaded: LoadedConfig, *, workers: int | None = None, host: str | None = None, port: int | None = None
) -> None:
    """Serve a loaded config. Every check ran in `load_config` (secrets included): nothing the
    config holds can fail after "listening" is logged. `host` and `port` override `listen`."""
    # Until the event loop takes SIGHUP over, one arriving must not end the process: it stays
    # pending (blocked) and is delivered, once, to the loop's handler (workers inherit this).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    loaded = _with_listen(loaded, overrides)
    redactor.add_secrets(loaded.secrets.values())
    count = workers or loaded.config.listen.workers
    _announce(loaded, count)
    sock = _bind(loaded)  # once, before any worker starts: the workers accept from the same socket
    listen = loaded.config.listen
    log.info(
        "listening on %s:%d (%s) with %d worker(s), %s",
        listen.host,
        listen.port,
        "https" if listen.tls is not None else "http",
        count,
        build_description(),
    )
    if count == 1:
        uvloop.run(_work(loaded, sock, count, overrides))
        return
    status = run_workers(count, lambda: uvloop.run(_work(loaded, sock, count, overrides)))
    if status:
        sys.exit(status)


def _with_listen(loaded: LoadedConfig, overrides: dict[str, Any]) -> LoadedConfig:
    """`loaded` with `serve --host/--port` applied to `listen`."""
    if not overrides:
        return loaded
    listen = loaded.config.listen.model_copy(update=overrides)
    return LoadedConfig(loaded.config.model_copy(update={"listen": listen}), loaded.secrets, loaded.path)


def _announce(loaded: LoadedConfig, workers: int) -> None:
    """Log the config's risky settings, and what each server protects and how."""
    config = loaded.config
    for warning in config_warnings(config, workers=workers):
        log.warning("%s: %s", loaded.path or "config", warning)
    for server in config.servers:
        log.info(
            "protecting %s -> %s (%s, upstream auth %s)",
            f"{config.public_base_url}/{server.name}/mcp",
            server.upstream,
            "auth on" if server.auth else "AUTH OFF",
            server.upstream_auth.type,
        )


def _bind(loaded: LoadedConfig) -> socket.socket:
    listen = loaded.config.listen
    try:
        return bind(listen.host, listen.port)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {listen.host}:{listen.port} ({os.strerror(exc.errno) if exc.errno else exc})",
            source=loaded.path or "",
            path="listen",
            hint="pick another listen.port, or stop what holds it",
        ) from None


async def _work(loaded: LoadedConfig, sock: socket.socket, count: int, overrides: dict[str, Any]) -> None:
    """One worker: its gateway (pools and key caches are per process), reloads on SIGHUP, the
    metrics listener, until SIGTERM/SIGINT and the drain."""
    config, listen = loaded.config, loaded.config.listen
    keyed = with_process_keys(loaded)
    redactor.add_secrets(keyed.secrets.values())
    # One telemetry per worker, kept across reloads: the metrics listener and the exporter
    # serve whichever gateway is current (telemetry settings wait for a restart).
    telemetry = telemetry_for(config.telemetry)

    def build(config_now: LoadedConfig) -> ServedApp:
        return build_gateway(config_now, telemetry=telemetry)

    limits, drain = _server_settings(keyed)
    server = HttpServer(build(keyed), limits, grace=drain.grace, stream_grace=drain.stream_grace)
    reloader = ConfigReloader(server, keyed, build, tune=_server_settings, listen_overrides=overrides)
    certificates = CertificateReloader(server_context(listen.tls), listen.tls) if listen.tls else None
    _reload_on_sighup(reloader, certificates)
    began = time.monotonic()
    if count > 1:
        log.info("worker %d ready", os.getpid())
    if certificates is not None:
        certificates.start_watching()
    metrics = telemetry.metrics if telemetry is not None else None
    try:
        async with serving_metrics(metrics, server, config.telemetry.metrics, count):
            await server.serve(sock, handle_signals=True, tls=certificates.context if certificates else None)
    finally:
        if certificates is not None:
            certificates.stop_watching()
    await reloader.close()
    if telemetry is not None:
        await telemetry.aclose()
    log.info("stopped after %.0fs (%d reload(s))", time.monotonic() - began, reloader.reloads)


def _reload_on_sighup(reloader: ConfigReloader, certificates: CertificateReloader | None) -> None:
    """SIGHUP reloads the certificate (at once) and the config (validated first, in a task)."""
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[bool]] = set()

    def on_sighup() -> None:
        if certificates is not None:
            certificates.reload()
        task = loop.create_task(reloader.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def _server_settings(loaded: LoadedConfig) -> tuple[ConnectionLimits, DrainPolicy]:
    drain = loaded.config.listen.drain
    return connection_limits(loaded.config), DrainPolicy(drain.grace_seconds, drain.stream_grace_seconds)


def connection_limits(config: BastionConfig) -> ConnectionLimits:
    """The connection bounds of `limits` (the same for `serve` and for the tests)."""
    limits = config.limits
    return ConnectionLimits(
        head_timeout=limits.header_read_timeout_seconds,
        max_header_bytes=limits.max_header_bytes,
        keep_alive_timeout=limits.keep_alive_timeout_seconds,
        max_connections=limits.max_connections,
    )
