"""When the IdP's access token may be passed through (`issue: idp_when_audience_fits`): only a
Bearer JWT of the IdP whose `aud` is exactly the requested server, within its times. One
vector per rule, with real ES256 keys; and the core never hands out a token whose scopes
exceed what the user approved on the facade's consent page."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_bastion.auth import RemoteKeySet
from mcp_bastion.config.model import IdentityProviderConfig
from mcp_bastion.devidp._login import UpstreamToken
from mcp_bastion.devidp._seal import seal_upstream, unseal_upstream
from mcp_bastion.facade._jws import JwtRejected
from mcp_bastion.facade._passthrough import audience_fits, fitting_token

ISSUER = "https://login.example.com/tenant"
RESOURCE = "https://gw.example.com/notes/mcp"
NOW = 1_800_000_000.0
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
PROVIDER = IdentityProviderConfig(name="entra", issuer=ISSUER, jwks_uri=f"{ISSUER}/keys")


def _keys() -> RemoteKeySet:
    async def load() -> Any:
        return {"keys": [KEY.as_dict(private=False)]}

    return RemoteKeySet(load, clock=lambda: NOW, ttl=300, cooldown=30)


def _token(typ: str = "at+jwt", **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": RESOURCE,
        "scope": "notes.read",
        "iat": int(NOW),
        "exp": int(NOW) + 600,
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "ES256", "kid": "k1", "typ": typ}, claims, KEY, algorithms=["ES256"])


async def _fit(token: str, token_type: str = "Bearer") -> UpstreamToken | None:
    body = {"access_token": token, "token_type": token_type}
    return await fitting_token(body, RESOURCE, PROVIDER, _keys(), NOW)


async def test_a_token_for_exactly_the_server_fits() -> None:
    fitting = await _fit(_token())
    assert fitting is not None
    assert fitting.scopes == ("notes.read",)
    assert fitting.expires_at == int(NOW) + 600
    assert await _fit(_token(aud=[RESOURCE])) is not None  # a one-element list is the same audience


@pytest.mark.parametrize(
    ("audience", "why"),
    [
        (f"{RESOURCE}/", "a URL that merely starts the same"),
        ("https://gw.example.com/notes", "the server's prefix"),
        ([RESOURCE, "https://graph.example.com"], "several audiences: a token for someone else too"),
        ("https://graph.example.com", "another API"),
        (None, "no audience"),
    ],
)
async def test_any_other_audience_does_not_fit(audience: Any, why: str) -> None:
    with pytest.raises(JwtRejected, match="audience"):
        await _fit(_token(aud=audience))
    assert not audience_fits(audience, RESOURCE), why


async def test_a_sender_constrained_token_is_not_passed_through() -> None:
    # A DPoP-bound token (RFC 9449) is bound to the facade's key: the client could not use it.
    with pytest.raises(JwtRejected, match="Bearer"):
        await _fit(_token(), token_type="DPoP")


@pytest.mark.parametrize(
    ("token", "match"),
    [
        (_token(typ="JWT"), "typ"),  # an ID token or other JWT cannot pass as an access token
        (_token(iss="https://evil.example.com"), "issuer"),
        (_token(exp=int(NOW) - 3600), "expired"),
        (_token(exp=int(NOW) + 40 * 86_400), "lifetime"),
        ("opaque-token-value", "no usable"),
    ],
)
async def test_other_tokens_do_not_fit(token: str, match: str) -> None:
    with pytest.raises(JwtRejected, match=match):
        await _fit(token)


async def test_another_keys_signature_does_not_fit() -> None:
    forged = jwt.encode(
        {"alg": "ES256", "kid": "k1", "typ": "at+jwt"},
        {"iss": ISSUER, "sub": "u", "aud": RESOURCE, "iat": int(NOW), "exp": int(NOW) + 60},
        ECKey.generate_key("P-256"),
        algorithms=["ES256"],
    )
    with pytest.raises(JwtRejected, match="signature"):
        await _fit(forged)


def test_a_sealed_token_opens_only_with_its_secret() -> None:
    token = UpstreamToken("eyJ.secret.token", ("a",), NOW)
    sealed = seal_upstream("code-1", token)
    assert b"secret" not in sealed
    assert unseal_upstream("code-2", sealed) is None
    assert unseal_upstream("code-1", sealed) == token
