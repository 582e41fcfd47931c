"""Who is calling: the verified identity the rest of the chain works with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ANONYMOUS", "Principal"]

_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    issuer: str
    client_id: str | None
    scopes: frozenset[str]  # as granted by the token, before hierarchy expansion
    token_hash: str  # SHA-256 prefix for the audit feed; never the token (RFC 6750 §5.3)
    expires_at: float
    jti: str | None = None
    # Every claim of the verified token (groups, roles, tenant, …) for policies beyond scopes.
    # Only ever filled after the signature verified; read-only for everyone downstream.
    claims: Mapping[str, Any] = field(default_factory=lambda: _NO_CLAIMS, compare=False)
    # The caller's own token, only for a route whose upstream credential is exchanged for it
    # (credentials/exchange.py); never cached, shown, audited or sent upstream.
    subject_token: str | None = field(default=None, repr=False, compare=False)


# For servers whose auth is switched off (benchmarks): no identity, no scopes.
ANONYMOUS = Principal("anonymous", "", None, frozenset(), "", float("inf"))
