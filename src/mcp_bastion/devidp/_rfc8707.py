"""RFC 8707 resource indicators: the one audience a token is minted for.

This IdP only issues audience-bound tokens, so ``resource`` is required at both the
authorization and the token endpoint and must name exactly one configured resource.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

from ..errors import OAuthError


def resource_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a resource indicator, or ``None`` if it is well formed."""
    parts = urlsplit(value)
    # RFC 8707 §2: "MUST be an absolute URI ... MUST NOT include a fragment component."
    if "#" in value:
        return "resource must not contain a fragment"
    if not parts.scheme or not parts.netloc:
        return "resource must be an absolute URI"
    if any(ch.isspace() for ch in value):
        return "resource must not contain whitespace"
    return None


def select_resource(values: Sequence[str], known: Collection[str]) -> str:
    """The one resource of the request; anything else is ``invalid_target`` (RFC 8707 §2)."""
    if not values:
        raise OAuthError("invalid_target", "resource is required (RFC 8707)")
    if len(values) > 1:
        raise OAuthError("invalid_target", "exactly one resource may be requested")
    value = values[0]
    problem = resource_problem(value)
    if problem is not None:
        raise OAuthError("invalid_target", problem)
    # Byte-identical comparison: the token's aud must equal what the resource calls itself.
    if value not in known:
        raise OAuthError("invalid_target", "resource is not served by this authorization server")
    return value
