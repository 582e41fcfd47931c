"""Passing the IdP's access token through (``issue: idp_when_audience_fits``).

At sign-in the facade asks the IdP for the requested resource (RFC 8707 ``resource``, and the
requested scopes), and gets an access token with the ID token. That token is handed to the
MCP client instead of one of the facade's own only when it is exactly the token the gateway
would accept for that server from this IdP: a JWT signed with the IdP's published keys and an
allowed algorithm, ``typ`` as the provider requires, ``iss`` the IdP's, ``aud`` the requested
resource and nothing else (byte for byte: a token for several audiences, or for a URL that
merely starts the same, is a token for someone else too), ``exp`` in the future within the
provider's lifetime cap, a Bearer token (not sender-constrained to the facade). Anything else
(an opaque token, another audience, a DPoP-bound token) falls back to the facade's own token.
"""

from __future__ import annotations

from typing import Any

from ..auth.keys import RemoteKeySet
from ..config.model import IdentityProviderConfig
from ..devidp._login import UpstreamToken
from ._id_token import check_times
from ._jws import JwtRejected, verified_claims

WHAT = "IdP access token"


def audience_fits(audience: Any, resource: str) -> bool:
    """``aud`` names exactly ``resource`` and nothing else (RFC 7519 §4.1.3; RFC 8707 §2)."""
    if isinstance(audience, str):
        return audience == resource
    return isinstance(audience, list) and audience == [resource]


def token_scopes(claims: dict[str, Any], provider: IdentityProviderConfig) -> tuple[str, ...] | None:
    """The token's scopes by the provider's claim mapping; ``None`` if it names none."""
    for name in provider.claims.scopes:
        value = claims.get(name)
        if isinstance(value, str):
            return tuple(value.split())
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        if value is not None:
            raise JwtRejected(f"{WHAT} scope claim is malformed")
    return None


async def fitting_token(
    body: dict[str, Any], resource: str, provider: IdentityProviderConfig, keys: RemoteKeySet, now: float
) -> UpstreamToken | None:
    """The IdP's token from a token response, if it fits ``resource``; else ``None`` (with why)."""
    token, token_type = body.get("access_token"), body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise JwtRejected(f"{WHAT} is not a Bearer token")
    typ = None if provider.require_typ is None else provider.require_typ.lower()
    claims = await verified_claims(token, provider, keys, what=WHAT, typ=typ)
    if not audience_fits(claims.get("aud"), resource):
        raise JwtRejected(f"{WHAT} audience is not the requested resource alone")
    expires = check_times(claims, provider, now, WHAT)
    if expires - float(claims["iat"]) > provider.max_token_lifetime_seconds:
        raise JwtRejected(f"{WHAT} lives longer than the provider's lifetime cap")
    assert isinstance(token, str)  # verified_claims accepted it
    return UpstreamToken(token, token_scopes(claims, provider), float(expires))
