"""Authorization-server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0).

The document's `issuer` must be byte-identical to the configured issuer (RFC 8414 §3.3,
OIDC Discovery §4.3): a mismatch is a mix-up or a misconfiguration, and is refused. So is a
`jwks_uri` that is not https or whose host resolves to an internal address (DM-06).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import KeySourceError
from .fetch import check_fetch_target, check_fetch_url, fetch_json

__all__ = ["discover_jwks_uri", "metadata_urls"]


def metadata_urls(issuer: str) -> tuple[str, ...]:
    """Where an issuer's metadata may live, in the order MCP clients probe them."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if not path:
        return (
            f"{origin}/.well-known/oauth-authorization-server",
            f"{origin}/.well-known/openid-configuration",
        )
    return (
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    )


async def discover_jwks_uri(
    http: httpx.AsyncClient,
    issuer: str,
    *,
    timeout: float,
    allow_insecure_http: bool,
    allow_private_network: bool = False,
) -> str:
    last: KeySourceError | None = None
    for url in metadata_urls(issuer):
        try:
            document = await fetch_json(
                http,
                url,
                timeout=timeout,
                allow_insecure_http=allow_insecure_http,
                allow_private_network=allow_private_network,
            )
        except KeySourceError as exc:
            last = exc
            continue
        jwks_uri = _jwks_uri_of(document, issuer, allow_insecure_http)
        # A document naming an internal address is refused whole, like a mismatching issuer.
        await check_fetch_target(
            jwks_uri,
            timeout=timeout,
            allow_insecure_http=allow_insecure_http,
            allow_private_network=allow_private_network,
        )
        return jwks_uri
    raise last or KeySourceError("no metadata document found")


def _jwks_uri_of(document: Any, issuer: str, allow_insecure_http: bool) -> str:
    if not isinstance(document, dict):
        raise KeySourceError("metadata document is not a JSON object")
    if document.get("issuer") != issuer:
        raise KeySourceError("metadata `issuer` differs from the configured issuer; refusing this provider")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise KeySourceError("metadata has no `jwks_uri`")
    check_fetch_url(jwks_uri, allow_insecure_http=allow_insecure_http)
    return jwks_uri
