"""Checking the upstream IdP's ID token (OIDC Core §3.1.3.7). Pure but for the key lookup.

The ID token came straight from the IdP's token endpoint over the connection the facade
opened, but it is still checked in full: the signature with the IdP's published keys (a
compromised or misconfigured proxy must not choose the user), ``iss`` byte for byte,
``aud`` naming the facade's client, ``azp`` when there are several audiences, ``exp`` and
``iat`` with the provider's leeway, and the ``nonce`` this login sent (replay of another
login's ID token).
"""

from __future__ import annotations

import hmac
from typing import Any

from ..auth.keys import RemoteKeySet
from ..config.model import IdentityProviderConfig
from ._jws import JwtRejected, is_number, verified_claims

#: Subjects longer than this are not a real IdP's (Entra's `oid` is 36, Okta's 20).
MAX_SUBJECT_CHARS = 255

#: The name the sign-in's refusals are known by (a :class:`JwtRejected`).
IdTokenRejected = JwtRejected


async def verified_subject(
    id_token: Any,
    provider: IdentityProviderConfig,
    client_id: str,
    nonce: str,
    keys: RemoteKeySet,
    now: float,
) -> str:
    """The ``sub`` of a valid ID token for this login, or :class:`JwtRejected`."""
    claims = await verified_claims(id_token, provider, keys, what="ID token")
    _check_claims(claims, provider, client_id, nonce, now)
    return str(claims["sub"])


def checked_subject(claims: dict[str, Any], what: str) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise JwtRejected(f"{what} has no usable sub")
    return subject


def check_times(claims: dict[str, Any], provider: IdentityProviderConfig, now: float, what: str) -> float:
    """``exp`` not passed and ``iat`` not in the future, both with the provider's leeway; ``exp``."""
    leeway = provider.leeway_seconds
    expires, issued = claims.get("exp"), claims.get("iat")
    if not is_number(expires) or now > expires + leeway:
        raise JwtRejected(f"{what} is expired or has no exp")
    if not is_number(issued) or issued > now + leeway:
        raise JwtRejected(f"{what} iat is missing or in the future")
    return expires


def _check_claims(
    claims: dict[str, Any], provider: IdentityProviderConfig, client_id: str, nonce: str, now: float
) -> None:
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise JwtRejected("ID token audience is not the facade's client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise JwtRejected("ID token azp is not the facade's client")  # OIDC Core §3.1.3.7 (5)
    check_times(claims, provider, now, "ID token")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise JwtRejected("ID token nonce does not match this sign-in")  # replayed ID token
    checked_subject(claims, "ID token")
