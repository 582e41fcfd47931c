"""Running the gateway under uvicorn (uvloop + httptools), with one or more worker processes."""

from __future__ import annotations

import logging
import os

import uvicorn

from .app import build_gateway
from .config import LoadedConfig, load_config

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
    options = dict(
        host=listen.host,
        port=listen.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,  # the audit feed is the access log; it never carries tokens
        proxy_headers=False,  # X-Forwarded-* is believed only from trusted_proxies, by the edge stage
        server_header=False,
        timeout_keep_alive=30,
    )
    if count == 1:
        uvicorn.run(build_gateway(loaded), interface="asgi3", **options)  # type: ignore[arg-type]
        return
    # Worker processes import the app themselves; they find the config through the environment.
    os.environ[_CONFIG_ENV] = _config_path(loaded)
    uvicorn.run("mcp_bastion.serving:create_app", factory=True, workers=count, **options)  # type: ignore[arg-type]


def create_app() -> object:
    """Factory for worker processes: loads the config named by the parent process."""
    return build_gateway(load_config(os.environ[_CONFIG_ENV]))


def _config_path(loaded: LoadedConfig) -> str:
    path = loaded.path
    if not path:
        raise RuntimeError("multi-worker serving needs a config loaded from a file")
    return path
