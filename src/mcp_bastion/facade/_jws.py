"""A JWT signed by the upstream IdP, checked against its published keys. Shared by the ID token
(sign-in) and the ID-JAG (jwt-bearer grant) checks.

The header decides nothing: the algorithm must be one the provider is configured with (RFC
8725 §3.1), ``crit`` is refused (we understand no extensions), and the key is looked up by
``kid`` among the IdP's keys, never taken from the token.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from typing import Any, TypeGuard

import orjson
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jws import JWSRegistry

from ..auth.keys import RemoteKeySet
from ..config.model import IdentityProviderConfig
from ..errors import BastionError

#: An ID token or ID-JAG is a few hundred bytes; anything this large is refused before decoding.
MAX_JWT_CHARS = 16 * 1024


class JwtRejected(BastionError):
    """An upstream JWT failed a check (the reason is for logs, not for the client)."""


async def verified_claims(
    token: Any, provider: IdentityProviderConfig, keys: RemoteKeySet, *, what: str, typ: str | None = None
) -> dict[str, Any]:
    """The claims of ``token`` if the IdP signed it; ``typ`` (if given) must match, case-insensitively."""
    if not isinstance(token, str) or len(token) > MAX_JWT_CHARS or token.count(".") != 2:
        raise JwtRejected(f"no usable {what}")
    header = _segment(token.split(".", 1)[0], what)
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in provider.algorithms or "crit" in header:
        raise JwtRejected(f"{what} algorithm is not allowed")
    if kid is not None and not isinstance(kid, str):
        raise JwtRejected(f"{what} key id is malformed")
    if typ is not None:
        got = header.get("typ")
        # Explicit typing (RFC 8725 §3.11): an ID token or access token cannot pass as this.
        if not isinstance(got, str) or got.lower() not in (typ, f"application/{typ}"):
            raise JwtRejected(f"{what} typ must be {typ}")
    try:
        key = await keys.key_for(kid, alg)
    except BastionError:
        raise JwtRejected(f"no key of the IdP verifies this {what}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            signed = jws.deserialize_compact(token, key, registry=JWSRegistry(algorithms=[alg]))
        claims = orjson.loads(signed.payload)
    except (JoseError, ValueError, TypeError):
        raise JwtRejected(f"{what} signature is invalid") from None
    if not isinstance(claims, dict):
        raise JwtRejected(f"{what} payload is not a JSON object")
    if claims.get("iss") != provider.issuer:
        raise JwtRejected(f"{what} issuer is not the configured IdP")  # mix-up
    return claims


def is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _segment(segment: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise JwtRejected(f"{what} header is not base64url JSON") from None
    if not isinstance(value, dict):
        raise JwtRejected(f"{what} header is not a JSON object")
    return value
