"""Settings validation, signing keys, and issue_access_token."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from mcp_bastion.devidp import DevIdpSettings, StaticClient, build_devidp
from mcp_bastion.errors import ConfigError

ISSUER = "http://127.0.0.1:8000/idp"
RESOURCE = "http://127.0.0.1:8000/mcp"


def _settings(**overrides: Any) -> DevIdpSettings:
    values: dict[str, Any] = {"issuer": ISSUER, "resources": {RESOURCE: ("notes:read",)}, **overrides}
    return DevIdpSettings(**values)


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"issuer": "ftp://h/idp"}, "issuer"),
        ({"issuer": "idp"}, "issuer"),
        ({"issuer": "http://h/idp/"}, "issuer"),
        ({"issuer": "http://h/"}, "issuer"),
        ({"issuer": "http://h/idp?x=1"}, "issuer"),
        ({"issuer": "http://h/idp#x"}, "issuer"),
        ({"issuer": "http://u@h/idp"}, "issuer"),
        ({"resources": {}}, "resources"),
        ({"resources": {"/mcp": ()}}, "resources['/mcp']"),
        ({"resources": {f"{RESOURCE}#f": ()}}, f"resources['{RESOURCE}#f']"),
        ({"resources": {RESOURCE: ("two words",)}}, f"resources['{RESOURCE}']"),
        ({"users": {"bad name": ()}}, "users['bad name']"),
        ({"users": {"alice": ('q"',)}}, "users['alice']"),
        ({"auto_approve": "bob", "users": {"alice": ()}}, "auto_approve"),
        ({"auto_approve": "<b>"}, "auto_approve"),
        ({"access_token_ttl": 0}, "access_token_ttl"),
        ({"refresh_token_ttl": -1}, "refresh_token_ttl"),
        ({"code_ttl": True}, "code_ttl"),
        ({"registration_limit_per_minute": 0}, "registration_limit_per_minute"),
        ({"signing_alg": "HS256"}, "signing_alg"),
        ({"signing_alg": "none"}, "signing_alg"),
        ({"clients": (StaticClient("a", "s", (), ()), StaticClient("a", "s", (), ()))}, "clients[1]"),
        ({"clients": (StaticClient("https://x/c", "s", (), ()),)}, "clients[0]"),
        ({"clients": (StaticClient("a", "", (), ()),)}, "clients[0]"),
        ({"clients": (StaticClient("a", "s", (), ("http://other/mcp",)),)}, "clients[0]"),
        ({"clients": (StaticClient("a", "s", ("a b",), ()),)}, "clients[0]"),
    ],
)
def test_invalid_settings_name_the_key(overrides: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings(**overrides)
    assert raised.value.path == path
    assert raised.value.source == "devidp"


def test_settings_are_frozen_copies() -> None:
    resources = {RESOURCE: ["notes:read"]}
    settings = _settings(resources=resources)
    resources[RESOURCE].append("admin")
    resources["http://x/y"] = []
    assert dict(settings.resources) == {RESOURCE: ("notes:read",)}
    with pytest.raises(TypeError):
        settings.resources["x"] = ()  # type: ignore[index]


def test_issuer_without_path_is_valid() -> None:
    assert _settings(issuer="https://idp.example").issuer == "https://idp.example"


# -- signing keys -------------------------------------------------------------------


def _pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("ES256", ECKey.generate_key("P-256")),
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("ES256", _pem(ec.generate_private_key(ec.SECP256R1()))),
        ("RS256", rsa.generate_private_key(65537, 2048)),
        ("PS256", _pem(rsa.generate_private_key(65537, 3072))),
    ],
)
def test_supplied_signing_keys(alg: str, key: Any) -> None:
    idp = build_devidp(_settings(signing_alg=alg), signing_key=key)
    token = idp.issue_access_token(subject="alice", resource=RESOURCE, scopes=["notes:read"])
    decoded = jwt.decode(token, KeySet.import_key_set(idp.jwks()), algorithms=[alg])
    assert decoded.header["alg"] == alg


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("ES256", ec.generate_private_key(ec.SECP384R1())),
        ("ES256", rsa.generate_private_key(65537, 2048)),
        ("ES256", ECKey.generate_key("P-256", private=False)),
        ("RS256", rsa.generate_private_key(65537, 1024)),  # noqa: S505 -- must be refused
        ("EdDSA", ed448.Ed448PrivateKey.generate()),
        ("ES256", "not a key"),
        ("ES256", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
    ],
    ids=["p384", "rsa-for-es256", "public-only", "rsa-1024", "ed448", "garbage", "bad-pem"],
)
def test_unsuitable_signing_keys(alg: str, key: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        build_devidp(_settings(signing_alg=alg), signing_key=key)
    assert raised.value.path == "signing_key"


def test_kid_is_the_rfc7638_thumbprint() -> None:
    key = ECKey.generate_key("P-256")
    first = build_devidp(_settings(), signing_key=key)
    second = build_devidp(_settings(), signing_key=key)
    assert first.jwks() == second.jwks()
    assert first.jwks()["keys"][0]["kid"] == key.thumbprint()


# -- issue_access_token -------------------------------------------------------------


def test_issue_access_token_matches_the_token_endpoint_format() -> None:
    clock = [1_900_000_000.0]
    idp = build_devidp(_settings(), clock=lambda: clock[0])
    token = idp.issue_access_token(subject="bob", resource=RESOURCE, scopes=["notes:read", "x"])
    decoded = jwt.decode(token, KeySet.import_key_set(idp.jwks()), algorithms=["ES256"])
    assert decoded.header == {"alg": "ES256", "typ": "at+jwt", "kid": idp.jwks()["keys"][0]["kid"]}
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "bob"
    assert claims["aud"] == RESOURCE
    assert claims["client_id"] == "test-client"
    assert claims["scope"] == "notes:read x"
    assert (claims["iat"], claims["nbf"], claims["exp"]) == (1_900_000_000, 1_900_000_000, 1_900_000_300)
    assert len(claims["jti"]) >= 16


def test_issue_access_token_ttl_and_extra_claims() -> None:
    idp = build_devidp(_settings(), clock=lambda: 1000.0)
    token = idp.issue_access_token(
        subject="bob",
        resource="https://elsewhere.example/mcp",
        scopes=[],
        client_id="c",
        ttl=5,
        extra_claims={"tenant": "t1", "exp": 1},
    )
    claims = jwt.decode(token, KeySet.import_key_set(idp.jwks()), algorithms=["ES256"]).claims
    assert claims["aud"] == "https://elsewhere.example/mcp"
    assert claims["tenant"] == "t1"
    assert claims["exp"] == 1
    assert claims["client_id"] == "c"
    assert claims["scope"] == ""


def test_jti_is_unique() -> None:
    idp = build_devidp(_settings())
    tokens = {idp.issue_access_token(subject="a", resource=RESOURCE, scopes=()) for _ in range(20)}
    assert len(tokens) == 20
