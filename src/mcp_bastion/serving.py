"""Running the gateway under uvicorn (uvloop + httptools), with one or more worker processes."""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn

from .app import build_gateway
from .config import BastionConfig, LoadedConfig, load_config
from .edge.http_protocol import GatewayHttpProtocol, bound_protocol

__all__ = ["create_app", "serve"]

_CONFIG_ENV = "MCP_BASTION_CONFIG"
log = logging.getLogger("mcp_bastion")


def serve(loaded: LoadedConfig, *, workers: int | None = None) -> None:
    config = loaded.config
    listen = config.listen
    count = workers or listen.workers
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
    log.info("listening on %s:%d with %d worker(s)", listen.host, listen.port, count)
    options = uvicorn_options(config)
    if count == 1:
        uvicorn.run(build_gateway(loaded), interface="asgi3", **options)
        return
    # Worker processes import the app themselves; they find the config through the environment.
    # uvicorn pickles its options for them, so the protocol is the importable base class, which
    # each worker's create_app() binds to the config's limits.
    os.environ[_CONFIG_ENV] = _config_path(loaded)
    options["http"] = GatewayHttpProtocol
    uvicorn.run("mcp_bastion.serving:create_app", factory=True, workers=count, **options)


def uvicorn_options(config: BastionConfig) -> dict[str, Any]:
    """How uvicorn must run the gateway: the same for `serve` and for the tests."""
    limits = config.limits
    return {
        "host": config.listen.host,
        "port": config.listen.port,
        "loop": "uvloop",
        "http": bound_protocol(limits.header_read_timeout_seconds, limits.max_header_bytes),
        "lifespan": "on",
        "access_log": False,  # the audit feed is the access log; it never carries tokens
        "proxy_headers": False,  # X-Forwarded-* is believed only from trusted_proxies, by the edge stage
        "server_header": False,
        "timeout_keep_alive": limits.keep_alive_timeout_seconds,
        "limit_concurrency": limits.max_connections,  # beyond it: 503 (uvicorn), the process stays up
    }


def create_app() -> object:
    """Factory for worker processes: loads the config named by the parent process."""
    loaded = load_config(os.environ[_CONFIG_ENV])
    limits = loaded.config.limits
    GatewayHttpProtocol.configure(limits.header_read_timeout_seconds, limits.max_header_bytes)
    return build_gateway(loaded)


def _config_path(loaded: LoadedConfig) -> str:
    path = loaded.path
    if not path:
        raise RuntimeError("multi-worker serving needs a config loaded from a file")
    return path
