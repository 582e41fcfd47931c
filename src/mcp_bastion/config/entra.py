"""Entra ID options of an identity provider with `preset: entra` (docs/identity.md)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

from .base import Model, refuse

__all__ = ["EntraConfig", "check_entra", "entra_tenant", "v1_issuer"]

_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# The v2.0 issuer of one tenant (the public cloud): the form `issuer:` takes for Entra ID.
_V2_ISSUER = re.compile(rf"^https://login\.microsoftonline\.com/({_GUID})/v2\.0$")
TenantId = Annotated[str, Field(pattern=rf"^{_GUID}$")]


class EntraConfig(Model):
    """Entra ID specifics: which tenant, and whether its v1.0 access tokens are accepted too."""

    accept_v1: bool = Field(
        default=False,
        description="Also accept v1.0 access tokens (issuer https://sts.windows.net/<tenant>/, `ver` 1.0, "
        "`appid`) of the same tenant: for APIs whose manifest leaves accessTokenAcceptedVersion unset or 1.",
    )
    tenant_id: TenantId | None = Field(
        default=None,
        description="The directory (tenant) id, lower-case GUID; default: the one in the v2.0 `issuer`.",
    )


def entra_tenant(issuer: str, entra: EntraConfig | None) -> str | None:
    """The tenant a provider's tokens must come from: `entra.tenant_id`, else the issuer's."""
    if entra is not None and entra.tenant_id is not None:
        return entra.tenant_id
    match = _V2_ISSUER.fullmatch(issuer)
    return match.group(1) if match else None


def v1_issuer(tenant: str) -> str:
    """The `iss` of the tenant's v1.0 access tokens (with its trailing slash, as Entra sends it)."""
    return f"https://sts.windows.net/{tenant}/"


def check_entra(preset: str | None, issuer: str, entra: EntraConfig | None) -> None:
    """`entra` only with the entra preset; `accept_v1` needs a tenant, consistent with the issuer."""
    if entra is None:
        return
    if preset != "entra":
        raise refuse("entra options need preset: entra", "entra")
    match = _V2_ISSUER.fullmatch(issuer)
    if match and entra.tenant_id is not None and entra.tenant_id != match.group(1):
        raise refuse("tenant_id differs from the tenant in the issuer", "entra", "tenant_id")
    if entra.accept_v1 and entra_tenant(issuer, entra) is None:
        raise refuse(
            "accept_v1 needs the tenant: an issuer https://login.microsoftonline.com/<tenant-id>/v2.0, "
            "or entra.tenant_id",
            "entra",
            "tenant_id",
        )
