"""Scope parsing and the grant rule: requested ∩ resource's ∩ user's (RFC 6749 §3.3).

Pure functions; the endpoints decide what to do with the errors they raise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import OAuthError

#: Requested by some clients to ask for a refresh token (OIDC Core §11). It is no resource
#: scope: this IdP accepts and drops it, and issues refresh tokens by the client's
#: registered grant types instead.
OFFLINE_ACCESS = "offline_access"

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) -- no space, '"' or '\'.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_scope_token(value: str) -> bool:
    """Whether ``value`` is one well-formed scope token."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Split a ``scope`` parameter into distinct tokens, in order; malformed → ``invalid_scope``."""
    if value is None:
        return ()
    tokens = [token for token in value.split(" ") if token]
    for token in tokens:
        if not is_scope_token(token):
            raise OAuthError("invalid_scope", "scope contains a character RFC 6749 §3.3 forbids")
    return tuple(dict.fromkeys(tokens))


def requested_for_resource(scope: str | None, resource_scopes: Sequence[str]) -> tuple[str, ...] | None:
    """The requested scopes this resource knows, or ``None`` when the client asked for none.

    Unknown scopes are dropped (RFC 6749 §3.3 lets the server grant less); a request whose
    scopes are *all* unknown is ``invalid_scope``, so a typo does not silently become an
    empty grant.
    """
    asked = [token for token in parse_scope(scope) if token != OFFLINE_ACCESS]
    if not asked:
        return None
    known = tuple(token for token in asked if token in resource_scopes)
    if not known:
        raise OAuthError("invalid_scope", "none of the requested scopes is offered by the resource")
    return known


def grant(
    requested: Sequence[str] | None, resource_scopes: Sequence[str], allowed: Sequence[str] | None
) -> tuple[str, ...]:
    """The scopes to grant: requested (default: all the resource's) ∩ ``allowed`` (None = all).

    A request that named scopes but keeps none after the ``allowed`` cut is ``invalid_scope``.
    """
    wanted = resource_scopes if requested is None else requested
    granted = tuple(token for token in wanted if allowed is None or token in allowed)
    if requested is not None and not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes may be granted")
    return granted


def narrow(granted: Sequence[str], scope: str | None) -> tuple[str, ...]:
    """A refresh request may ask for a subset of the original grant, never more (RFC 6749 §6)."""
    asked = [token for token in parse_scope(scope) if token != OFFLINE_ACCESS]
    if not asked:
        return tuple(granted)
    extra = [token for token in asked if token not in granted]
    if extra:
        raise OAuthError("invalid_scope", "a refresh may not widen the original grant")
    return tuple(asked)
