"""The facade's ID token check (OIDC Core §3.1.3.7), with real ES256 keys: one vector per rule."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_bastion.auth import RemoteKeySet
from mcp_bastion.config.model import IdentityProviderConfig
from mcp_bastion.facade._id_token import IdTokenRejected, verified_subject

ISSUER = "https://login.example.com/tenant"
CLIENT = "bastion-facade"
NONCE = "n-0123456789"
NOW = 1_800_000_000.0
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
PROVIDER = IdentityProviderConfig(name="op", issuer=ISSUER, jwks_uri=f"{ISSUER}/keys")


def _keys() -> RemoteKeySet:
    async def load() -> Any:
        return {"keys": [KEY.as_dict(private=False)]}

    return RemoteKeySet(load, clock=lambda: NOW, ttl=300, cooldown=30)


def _token(key: ECKey = KEY, alg: str = "ES256", **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "nonce": NONCE,
    }
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])


async def _subject(token: Any) -> str:
    return await verified_subject(token, PROVIDER, CLIENT, NONCE, _keys(), NOW)


async def test_a_valid_id_token_gives_its_subject() -> None:
    assert await _subject(_token()) == "user-1"
    # Several audiences are fine when azp names the facade (OIDC Core §3.1.3.7 (4)-(5)).
    assert await _subject(_token(aud=[CLIENT, "other"], azp=CLIENT)) == "user-1"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (_token(iss="https://evil.example"), "issuer"),  # mix-up: another IdP's token
        (_token(aud="another-client"), "audience"),  # issued to another client at the IdP
        (_token(aud=[CLIENT, "other"]), "azp"),
        (_token(aud=[CLIENT, "other"], azp="other"), "azp"),
        (_token(exp=int(NOW) - 31), "expired"),  # beyond the 30 s leeway
        (_token(exp=None), "expired"),
        (_token(iat=int(NOW) + 60), "iat"),
        (_token(nonce="another-login"), "nonce"),  # an ID token from another sign-in, replayed
        (_token(nonce=None), "nonce"),
        (_token(sub=None), "sub"),
        (_token(sub=""), "sub"),
        (_token(sub="x" * 256), "sub"),
        (_token(key=OTHER_KEY), "signature"),  # same kid, wrong key
        ("a.b", "usable"),
        (None, "usable"),
        ("x" * 20_000 + ".a.b", "usable"),
    ],
)
async def test_id_token_refusals(token: Any, why: str) -> None:
    with pytest.raises(IdTokenRejected, match=why):
        await _subject(token)


async def test_an_algorithm_outside_the_allow_list_is_refused_before_any_key_lookup() -> None:
    provider = PROVIDER.model_copy(update={"algorithms": ("RS256",)})
    with pytest.raises(IdTokenRejected, match="algorithm"):
        await verified_subject(_token(), provider, CLIENT, NONCE, _keys(), NOW)
