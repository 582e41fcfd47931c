"""The ID-JAG check (Enterprise-Managed Authorization), with real ES256 keys: one vector per rule."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from mcp_bastion.auth import RemoteKeySet
from mcp_bastion.config.model import IdentityProviderConfig
from mcp_bastion.errors import OAuthError
from mcp_bastion.facade._id_jag import IdJagVerifier

ISSUER = "https://login.example.com/tenant"
FACADE = "https://gw.example.com/oauth/entra"
CLIENT = "https://client.example.com/mcp.json"
RESOURCE = "https://gw.example.com/notes/mcp"
NOW = 1_800_000_000.0
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
PROVIDER = IdentityProviderConfig(name="entra", issuer=ISSUER, jwks_uri=f"{ISSUER}/keys")


def _verifier() -> IdJagVerifier:
    async def load() -> Any:
        return {"keys": [KEY.as_dict(private=False)]}

    keys = RemoteKeySet(load, clock=lambda: NOW, ttl=300, cooldown=30)
    return IdJagVerifier(PROVIDER, FACADE, keys, lambda: NOW)


def _assertion(key: ECKey = KEY, typ: str = "oauth-id-jag+jwt", jti: str = "j-1", **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": FACADE,
        "client_id": CLIENT,
        "resource": RESOURCE,
        "scope": "tools.read",
        "jti": jti,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
    }
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "ES256", "kid": "k1", "typ": typ}, claims, key, algorithms=["ES256"])


async def test_a_valid_assertion_grants_its_subject_and_scopes() -> None:
    granted = await _verifier().verify(_assertion(), CLIENT, RESOURCE)
    assert granted.subject == "user-1"
    assert granted.scopes == ("tools.read",)
    # A list of resources naming the requested one is fine; no scope claim restricts nothing.
    wider = await _verifier().verify(_assertion(resource=["x", RESOURCE], scope=None), CLIENT, RESOURCE)
    assert wider.scopes is None


@pytest.mark.parametrize(
    "assertion",
    [
        _assertion(aud="https://other-as.example.com"),  # meant for another authorization server
        _assertion(aud=[FACADE, "https://other-as.example.com"]),
        _assertion(client_id="https://evil.example.com/client.json"),  # stolen from another client
        _assertion(resource="https://gw.example.com/other/mcp"),
        _assertion(resource=None),  # the IdP must bind the grant to a resource
        _assertion(iss="https://evil.example.com"),
        _assertion(typ="at+jwt"),  # an access token is not an ID-JAG (RFC 8725 §3.11)
        _assertion(typ="JWT"),  # nor is an ID token
        _assertion(exp=int(NOW) - 31),
        _assertion(iat=int(NOW) + 60),
        _assertion(iat=int(NOW) - 100_000, exp=int(NOW) + 10),  # past the lifetime cap
        _assertion(jti=""),
        _assertion(jti="x" * 257),
        _assertion(sub=None),
        _assertion(scope=["tools.read"]),
        _assertion(key=OTHER_KEY),
        "not-a-jwt",
    ],
)
async def test_refused_assertions_are_invalid_grant(assertion: str) -> None:
    with pytest.raises(OAuthError) as refused:
        await _verifier().verify(assertion, CLIENT, RESOURCE)
    assert refused.value.error == "invalid_grant"
    assert refused.value.message == "the identity assertion was not accepted"  # no detail to the client


async def test_a_replayed_assertion_is_refused() -> None:
    verifier = _verifier()
    assertion = _assertion(jti="once")
    await verifier.verify(assertion, CLIENT, RESOURCE)
    with pytest.raises(OAuthError):
        await verifier.verify(assertion, CLIENT, RESOURCE)
    # Another jti from the same IdP is still fine: the replay record is per assertion.
    await verifier.verify(_assertion(jti="twice"), CLIENT, RESOURCE)
