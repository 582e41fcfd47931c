"""What the gateway knows about one protected MCP server, fixed at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config.model import ServerConfig
from .credentials import UpstreamCredential
from .pinning.store import ToolPins
from .policy.catalog import ToolCatalog
from .policy.decide import ServerPolicy
from .safety.chain import SafetyChain
from .upstream.transport import UpstreamTransport

__all__ = ["ServerRoute"]


@dataclass(frozen=True)
class ServerRoute:
    name: str
    config: ServerConfig
    resource: str  # the public MCP URL, byte-identical in PRM `resource` and token `aud`
    path: str
    metadata_url: str
    metadata: bytes
    issuers: frozenset[str]
    policy: ServerPolicy
    catalog: ToolCatalog
    credential: UpstreamCredential
    transport: UpstreamTransport
    start_scopes: tuple[str, ...]  # the scope= of a 401: the minimal scopes to start
    pins: ToolPins = field(default_factory=ToolPins.off)  # pinned tool definitions, learned lists
    safety: SafetyChain | None = None  # the server's safety filters; None: it has none

    @property
    def auth(self) -> bool:
        return self.config.auth
