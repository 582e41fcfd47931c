"""How the gateway authenticates to an upstream, behind one async protocol.

The client's own token never leaves the gateway (MCP authorization, "Token Passthrough"):
each upstream gets a credential of the gateway's choosing. `header()` is async because the
credentials still to come fetch one from the IdP (RFC 8693 token exchange, on-behalf-of,
client credentials); the ones here answer at once.
"""

from __future__ import annotations

from typing import Protocol

from ..auth.principal import Principal
from .minted import MintedCredential, TokenMinter
from .static import NoCredential, StaticCredential

__all__ = ["MintedCredential", "NoCredential", "StaticCredential", "TokenMinter", "UpstreamCredential"]


class UpstreamCredential(Protocol):
    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        """The one header that authenticates this call upstream, or None to send none.

        `scopes` is what the call needs: a credential that carries scopes carries no more.
        A failure raises a BastionError (UpstreamError when the credential cannot be had):
        never a fallback to another credential.
        """
        ...
