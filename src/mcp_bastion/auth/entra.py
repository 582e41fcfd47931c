"""Entra ID v1.0 access tokens, accepted beside v2.0 ones when `entra.accept_v1` says so.

An API whose manifest leaves `accessTokenAcceptedVersion` unset (or 1) gets v1.0 tokens:
issuer `https://sts.windows.net/<tenant>/` instead of
`https://login.microsoftonline.com/<tenant>/v2.0`, `ver` `1.0`, the client in `appid` instead
of `azp`, `aud` the App ID URI (`api://…`) or the application GUID. They are signed by the same
tenant keys. With `accept_v1`, the tenant's v1.0 issuer is an alias of the configured one
(same keys, same policy); such a token must also say `ver: 1.0` and carry the tenant's `tid`.
Another tenant's v1.0 issuer is no alias of anything: refused as an untrusted issuer.
"""

from __future__ import annotations

from typing import Any

from ..config.entra import entra_tenant, v1_issuer
from ..config.model import IdentityProviderConfig
from ..errors import InvalidToken

__all__ = ["V1Check", "issuer_aliases"]


def issuer_aliases(config: IdentityProviderConfig) -> tuple[str, ...]:
    """Other `iss` values that name this provider: its tenant's v1.0 issuer, when accepted."""
    tenant = _accepted_v1_tenant(config)
    return () if tenant is None else (v1_issuer(tenant),)


class V1Check:
    """What a token with the v1.0 issuer must also say (the preset's check, auth/presets.py)."""

    def __init__(self, config: IdentityProviderConfig) -> None:
        tenant = _accepted_v1_tenant(config)
        self._tenant = tenant
        self._issuer = None if tenant is None else v1_issuer(tenant)

    def check(self, claims: dict[str, Any]) -> None:
        if self._issuer is None or claims.get("iss") != self._issuer:
            return
        if claims.get("ver") != "1.0":
            raise InvalidToken("token has the v1.0 issuer but is not a v1.0 token")
        if claims.get("tid") != self._tenant:
            raise InvalidToken("token is of another tenant")


def _accepted_v1_tenant(config: IdentityProviderConfig) -> str | None:
    entra = config.entra
    if config.preset != "entra" or entra is None or not entra.accept_v1:
        return None
    return entra_tenant(config.issuer, entra)
