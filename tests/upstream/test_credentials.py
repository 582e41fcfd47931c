"""Upstream credentials: minted tokens bound to one upstream and one caller, or a static header."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from mcp_bastion.auth import IssuerPolicy, JwtVerifier, Principal, RemoteKeySet
from mcp_bastion.config.model import IdentityProviderConfig
from mcp_bastion.credentials import (
    MintedCredential,
    NoCredential,
    StaticCredential,
    TokenMinter,
)
from mcp_bastion.credentials.minted import published_jwk
from mcp_bastion.errors import InvalidToken

GATEWAY = "https://gw.example"
UPSTREAM = "http://127.0.0.1:9001/mcp"
NOW = 1_700_000_000.0
TTL = 60
ALICE = Principal(
    subject="alice",
    issuer="https://idp.example",
    client_id="client-1",
    scopes=frozenset({"tools.read", "tools.write", "admin"}),
    token_hash="ab" * 16,
    expires_at=NOW + 3600,
    jti="client-token-jti",
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _decode(minter: TokenMinter, token: str, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = KeySet.import_key_set(minter.jwks())  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc 1.8 flags EdDSA as deprecated
        decoded = jwt.decode(token, keys, algorithms=[alg])
    return dict(decoded.header), dict(decoded.claims)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_minted_token_verifies_with_the_published_keys(alg: str) -> None:
    clock = Clock()
    minter = TokenMinter.generate(alg, GATEWAY, clock)
    token = minter.mint(ALICE, UPSTREAM, ("tools.read",), TTL)
    header, claims = _decode(minter, token, alg)
    assert header == {"alg": alg, "typ": "at+jwt", "kid": minter.jwks()["keys"][0]["kid"]}
    assert claims["iss"] == GATEWAY
    assert claims["aud"] == UPSTREAM
    assert claims["sub"] == "alice"
    assert claims["act"] == {"sub": GATEWAY}
    assert claims["scope"] == "tools.read"
    assert claims["client_id"] == "client-1"
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + TTL
    assert claims["exp"] <= NOW + TTL
    assert set(claims) == {"iss", "aud", "sub", "act", "scope", "client_id", "iat", "exp", "jti"}
    # The caller's own token never travels: not its hash, not its jti.
    assert ALICE.token_hash not in token
    assert claims["jti"] != ALICE.jti


@pytest.mark.parametrize("scopes", [(), ("tools.read",), ("tools.write", "notes.edit")])
def test_scope_is_exactly_what_was_asked_for(scopes: tuple[str, ...]) -> None:
    minter = TokenMinter.generate("ES256", GATEWAY, Clock())
    _, claims = _decode(minter, minter.mint(ALICE, UPSTREAM, scopes, TTL), "ES256")
    assert claims["scope"] == " ".join(scopes)
    assert "admin" not in claims["scope"].split()


def test_no_client_id_claim_without_a_client() -> None:
    minter = TokenMinter.generate("ES256", GATEWAY, Clock())
    anonymous_client = Principal("bob", "https://idp.example", None, frozenset(), "", NOW + 60)
    _, claims = _decode(minter, minter.mint(anonymous_client, UPSTREAM, (), TTL), "ES256")
    assert "client_id" not in claims
    assert claims["sub"] == "bob"


def test_published_jwks_holds_only_the_public_key() -> None:
    minter = TokenMinter.generate("ES256", GATEWAY, Clock())
    (key,) = minter.jwks()["keys"]
    assert "d" not in key
    assert (key["use"], key["alg"], key["kty"], key["crv"]) == ("sig", "ES256", "EC", "P-256")


@pytest.mark.parametrize(
    ("elapsed", "reused"), [(0, True), (29, True), (29.9, True), (30, False), (45, False)]
)
def test_cache_reuse_within_half_the_ttl(elapsed: float, reused: bool) -> None:
    clock = Clock()
    minter = TokenMinter.generate("ES256", GATEWAY, clock)
    first = minter.mint(ALICE, UPSTREAM, ("tools.read",), TTL)
    clock.now = NOW + elapsed
    second = minter.mint(ALICE, UPSTREAM, ("tools.read",), TTL)
    assert (second == first) is reused
    if not reused:
        _, claims = _decode(minter, second, "ES256")
        assert claims["exp"] == int(NOW + elapsed) + TTL


@pytest.mark.parametrize(
    ("principal", "audience", "scopes"),
    [
        (Principal("bob", ALICE.issuer, ALICE.client_id, ALICE.scopes, "", NOW), UPSTREAM, ("tools.read",)),
        (
            Principal("alice", "https://other-idp.example", "client-1", ALICE.scopes, "", NOW),
            UPSTREAM,
            ("tools.read",),
        ),
        (Principal("alice", ALICE.issuer, "client-2", ALICE.scopes, "", NOW), UPSTREAM, ("tools.read",)),
        (ALICE, "http://127.0.0.1:9002/mcp", ("tools.read",)),
        (ALICE, UPSTREAM, ("tools.write",)),
        (ALICE, UPSTREAM, ("tools.read", "tools.write")),
    ],
)
def test_cache_never_crosses_callers_audiences_or_scopes(
    principal: Principal, audience: str, scopes: tuple[str, ...]
) -> None:
    minter = TokenMinter.generate("ES256", GATEWAY, Clock())
    first = minter.mint(ALICE, UPSTREAM, ("tools.read",), TTL)
    other = minter.mint(principal, audience, scopes, TTL)
    assert other != first
    _, claims = _decode(minter, other, "ES256")
    assert (claims["sub"], claims["aud"], claims["scope"]) == (principal.subject, audience, " ".join(scopes))


def _upstream_verifier(minter: TokenMinter, clock: Clock) -> JwtVerifier:
    async def load() -> Any:
        return minter.jwks()

    config = IdentityProviderConfig(
        name="gateway", issuer=GATEWAY, discovery=False, jwks_uri=f"{GATEWAY}/jwks"
    )
    keys = RemoteKeySet(load, clock=clock, ttl=300, cooldown=30)
    return JwtVerifier({GATEWAY: IssuerPolicy(config, keys)}, clock=clock, max_token_bytes=8192)


async def test_tp10_tp11_minted_token_passes_its_upstream_only() -> None:
    clock = Clock()
    minter = TokenMinter.generate("ES256", GATEWAY, clock)
    verifier = _upstream_verifier(minter, clock)
    token = minter.mint(ALICE, UPSTREAM, ("tools.read",), TTL)
    principal = await verifier.verify(token, UPSTREAM, frozenset({GATEWAY}))
    assert (principal.subject, principal.scopes, principal.client_id) == (
        "alice",
        frozenset({"tools.read"}),
        "client-1",
    )
    # Replayed at another upstream or at the gateway itself: wrong audience.
    for resource in ("http://127.0.0.1:9002/mcp", f"{GATEWAY}/demo/mcp"):
        with pytest.raises(InvalidToken, match="audience is not this resource"):
            await verifier.verify(token, resource, frozenset({GATEWAY}))
    clock.now = NOW + TTL + 31  # past exp plus the default 30 s leeway
    with pytest.raises(InvalidToken, match="token has expired"):
        await verifier.verify(token, UPSTREAM, frozenset({GATEWAY}))


async def test_minted_credential_header() -> None:
    minter = TokenMinter.generate("ES256", GATEWAY, Clock())
    credential = MintedCredential(minter, UPSTREAM, TTL)
    header = await credential.header(ALICE, ("tools.read",))
    assert header is not None
    name, value = header
    assert name == b"authorization"
    assert value.startswith(b"Bearer ")
    _, claims = _decode(minter, value.removeprefix(b"Bearer ").decode(), "ES256")
    assert (claims["aud"], claims["scope"]) == (UPSTREAM, "tools.read")


async def test_static_credential_header_is_the_configured_one() -> None:
    credential = StaticCredential("X-Api-Key", "s3cret")
    assert await credential.header(ALICE, ("tools.read",)) == (b"x-api-key", b"s3cret")
    other = Principal("bob", "https://idp.example", None, frozenset(), "", NOW)
    assert await credential.header(other, ()) == (b"x-api-key", b"s3cret")


async def test_no_credential_sends_nothing() -> None:
    assert await NoCredential().header(ALICE, ("tools.read",)) is None


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (ECKey.generate_key("P-256"), "ES256"),
        (RSAKey.generate_key(2048), "RS256"),
        (OKPKey.generate_key("Ed25519"), "EdDSA"),
    ],
)
def test_minter_from_a_private_jwk(key: Any, alg: str) -> None:
    minter = TokenMinter.from_jwk(json.dumps(key.as_dict(private=True)), alg, GATEWAY, Clock())
    _, claims = _decode(minter, minter.mint(ALICE, UPSTREAM, (), TTL), alg)
    assert claims["aud"] == UPSTREAM
    assert minter.jwks()["keys"][0]["kid"] == key.thumbprint()


@pytest.mark.parametrize(
    ("text", "alg", "fragment"),
    [
        (
            json.dumps(ECKey.generate_key("P-256").as_dict(private=False)),
            "ES256",
            "must be a private RSA, EC or OKP JWK",
        ),
        (
            json.dumps({"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}),
            "ES256",
            "must be a private RSA, EC or OKP JWK",
        ),
        ("not json", "ES256", "must be a private RSA, EC or OKP JWK"),
        ("[1, 2]", "ES256", "must be a private RSA, EC or OKP JWK"),
        ('{"kty": "EC"}', "ES256", "must be a private RSA, EC or OKP JWK"),
        ("", "ES256", "must be a private RSA, EC or OKP JWK"),
        (json.dumps(RSAKey.generate_key(2048).as_dict(private=True)), "ES256", "cannot sign ES256"),
        (json.dumps(ECKey.generate_key("P-256").as_dict(private=True)), "EdDSA", "cannot sign EdDSA"),
        (json.dumps(ECKey.generate_key("P-384").as_dict(private=True)), "ES256", "cannot sign ES256"),
        (
            json.dumps(dict(RSAKey.generate_key(2048).as_dict(private=True), alg="RS256")),
            "PS256",
            "cannot sign PS256",
        ),
    ],
)
def test_minter_refuses_unusable_signing_keys(text: str, alg: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        TokenMinter.from_jwk(text, alg, GATEWAY, Clock())


def test_previous_signing_keys_are_published_never_used_and_never_private() -> None:
    clock = Clock()
    old, current = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    published = (published_jwk(json.dumps(old.as_dict(private=True)), "ES256"),)
    minter = TokenMinter.from_jwk(
        json.dumps(current.as_dict(private=True)), "ES256", GATEWAY, clock, published
    )
    keys = minter.jwks()["keys"]
    assert [k["kid"] for k in keys] == [current.thumbprint(), old.thumbprint()]
    assert all("d" not in k for k in keys)  # a private previous key is published as its public half
    token = minter.mint(Principal("alice", "https://idp", "c", frozenset(), "h", 0.0), "https://up", (), 60)
    assert jwt.decode(token, current, algorithms=["ES256"]).header["kid"] == current.thumbprint()
    # Tokens the old key signed before the rotation still verify against the published set.
    before = TokenMinter.from_jwk(json.dumps(old.as_dict(private=True)), "ES256", GATEWAY, clock)
    old_token = before.mint(Principal("bob", "https://idp", "c", frozenset(), "h", 0.0), "https://up", (), 60)
    jwt.decode(old_token, KeySet.import_key_set({"keys": keys}), algorithms=["ES256"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (json.dumps({"kty": "oct", "k": "c2VjcmV0"}), "ES256"),  # symmetric: anyone verifying could forge
        (json.dumps(RSAKey.generate_key(2048).as_dict(private=False)), "ES256"),  # cannot sign ES256
        ("not json", "ES256"),
    ],
)
def test_a_previous_key_that_cannot_be_a_signing_key_is_refused(key: str, alg: str) -> None:
    with pytest.raises(ValueError, match="previous signing key"):
        published_jwk(key, alg)
