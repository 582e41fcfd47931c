"""Checking the upstream IdP's ID token (OIDC Core §3.1.3.7). Pure but for the key lookup.

The ID token came straight from the IdP's token endpoint over the connection the facade
opened, but it is still checked in full: the signature with the IdP's published keys (a
compromised or misconfigured proxy must not choose the user), ``iss`` byte for byte,
``aud`` naming the facade's client, ``azp`` when there are several audiences, ``exp`` and
``iat`` with the provider's leeway, and the ``nonce`` this login sent (replay of another
login's ID token).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import warnings
from typing import Any, TypeGuard

import orjson
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jws import JWSRegistry

from ..auth.keys import RemoteKeySet
from ..config.model import IdentityProviderConfig
from ..errors import BastionError

#: An ID token is a few hundred bytes; anything this large is refused before decoding.
MAX_ID_TOKEN_CHARS = 16 * 1024
#: Subjects longer than this are not a real IdP's (Entra's `oid` is 36, Okta's 20).
MAX_SUBJECT_CHARS = 255


class IdTokenRejected(BastionError):
    """The IdP's ID token failed a check (the reason is for logs, not for the client)."""


async def verified_subject(
    id_token: Any,
    provider: IdentityProviderConfig,
    client_id: str,
    nonce: str,
    keys: RemoteKeySet,
    now: float,
) -> str:
    """The ``sub`` of a valid ID token for this login, or :class:`IdTokenRejected`."""
    if not isinstance(id_token, str) or len(id_token) > MAX_ID_TOKEN_CHARS or id_token.count(".") != 2:
        raise IdTokenRejected("the IdP returned no usable ID token")
    header = _segment(id_token.split(".", 1)[0])
    alg, kid = header.get("alg"), header.get("kid")
    # RFC 8725 §3.1: the configured allow-list decides, never the header.
    if not isinstance(alg, str) or alg not in provider.algorithms or "crit" in header:
        raise IdTokenRejected("ID token algorithm is not allowed")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenRejected("ID token key id is malformed")
    key = await keys.key_for(kid, alg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            signed = jws.deserialize_compact(id_token, key, registry=JWSRegistry(algorithms=[alg]))
        claims = orjson.loads(signed.payload)
    except (JoseError, ValueError, TypeError):
        raise IdTokenRejected("ID token signature is invalid") from None
    if not isinstance(claims, dict):
        raise IdTokenRejected("ID token payload is not a JSON object")
    _check_claims(claims, provider, client_id, nonce, now)
    return str(claims["sub"])


def _segment(segment: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise IdTokenRejected("ID token header is not base64url JSON") from None
    if not isinstance(value, dict):
        raise IdTokenRejected("ID token header is not a JSON object")
    return value


def _check_claims(
    claims: dict[str, Any], provider: IdentityProviderConfig, client_id: str, nonce: str, now: float
) -> None:
    if claims.get("iss") != provider.issuer:
        raise IdTokenRejected("ID token issuer is not the configured IdP")  # mix-up
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise IdTokenRejected("ID token audience is not the facade's client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenRejected("ID token azp is not the facade's client")  # OIDC Core §3.1.3.7 (5)
    leeway = provider.leeway_seconds
    expires, issued = claims.get("exp"), claims.get("iat")
    if not _number(expires) or now > expires + leeway:
        raise IdTokenRejected("ID token is expired or has no exp")
    if not _number(issued) or issued > now + leeway:
        raise IdTokenRejected("ID token iat is missing or in the future")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise IdTokenRejected("ID token nonce does not match this sign-in")  # replayed ID token
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise IdTokenRejected("ID token has no usable sub")


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
