"""Who is calling: the verified identity the rest of the chain works with."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANONYMOUS", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    issuer: str
    client_id: str | None
    scopes: frozenset[str]  # as granted by the token, before hierarchy expansion
    token_hash: str  # SHA-256 prefix for the audit feed; never the token (RFC 6750 §5.3)
    expires_at: float
    jti: str | None = None


# For servers whose auth is switched off (benchmarks): no identity, no scopes.
ANONYMOUS = Principal("anonymous", "", None, frozenset(), "", float("inf"))
