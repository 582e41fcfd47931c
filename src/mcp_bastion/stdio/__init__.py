"""stdio plug-ins as upstreams (docs/stdio.md): a `command:` server runs as local processes.

`StdioPlugins` is what `build_gateway` asks for the transport and the credential of each
`command:` server; every other server keeps the factories it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..config import LoadedConfig
from ..config.model import SecretRef, ServerConfig
from ..credentials import TokenMinter, UpstreamCredential
from ..upstream.transport import UpstreamTransport
from .identity import PluginIdentity, new_subject_book, stdio_audience
from .pool import PluginsBusy, ProcessPool
from .process import IDENTITY_META, ProcessSpec
from .transport import StdioTransport

__all__ = ["IDENTITY_META", "PluginsBusy", "StdioPlugins", "StdioTransport"]

TransportFactory = Callable[[ServerConfig], UpstreamTransport]
CredentialFactory = Callable[[ServerConfig, int], UpstreamCredential]


class StdioPlugins:
    """The stdio side of one gateway: a process pool per `command:` server, one subject book."""

    def __init__(self, loaded: LoadedConfig, minter: TokenMinter) -> None:
        self._loaded = loaded
        self._minter = minter
        self._book = new_subject_book()
        self._pools: list[ProcessPool] = []

    def transports(self, fallback: TransportFactory) -> TransportFactory:
        def transport_for(server: ServerConfig) -> UpstreamTransport:
            if server.command is None:
                return fallback(server)
            index = self._loaded.config.servers.index(server)
            pool = ProcessPool(self.spec(server, index), server.stdio)
            self._pools.append(pool)
            return StdioTransport(pool, self._book)

        return transport_for

    def credentials(self, fallback: CredentialFactory) -> CredentialFactory:
        def credential_for(server: ServerConfig, index: int) -> UpstreamCredential:
            if server.command is None:
                return fallback(server, index)
            auth = server.upstream_auth
            audience = auth.audience or stdio_audience(server.name)
            return PluginIdentity(self._minter, audience, auth.ttl_seconds, self._book)

        return credential_for

    def spec(self, server: ServerConfig, index: int) -> ProcessSpec:
        assert server.command is not None
        env: dict[str, str] = {}
        for name, value in server.env.items():
            if isinstance(value, SecretRef):
                secret = self._loaded.secret(f"servers[{index}].env.{name}")
                assert secret is not None, "secrets are read before the gateway is built"
                env[name] = secret
            else:
                env[name] = value
        options = server.stdio
        return ProcessSpec(
            server=server.name,
            argv=server.command,
            cwd=server.cwd,
            env=env,
            max_line_bytes=options.max_line_bytes,
            start_timeout=options.start_timeout_seconds,
            stop_timeout=options.stop_timeout_seconds,
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools), return_exceptions=True)
