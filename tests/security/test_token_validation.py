"""Catalog section A (TV): hostile access tokens against the real gateway over loopback.

One gateway serves the whole module, with a JWKS holding the IdP's ES256 key plus the keys
the attacks need (an RSA key, a second P-256 key, and keys that must be ignored). The key
refetch cooldown is 0, so a token that reached key lookup with an unknown `kid` would cost a
JWKS fetch: "no JWKS fetch" assertions can fail. Every refusal is checked for the exact
challenge, and for the upstream seeing nothing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from .support import (
    Stack,
    b64url,
    connection_counter,
    es256_header,
    forge,
    issuer_signer,
    read_response,
    request_head,
    rpc,
    stack,
    standard_claims,
)

RSA_PRIVATE = rsa.generate_private_key(65537, 2048)
WEAK_RSA_PRIVATE = rsa.generate_private_key(65537, 1024)  # noqa: S505  (TV-18: must be refused)
P384_PRIVATE = ec.generate_private_key(ec.SECP384R1())
EC2_PRIVATE = ec.generate_private_key(ec.SECP256R1())
ENC_PRIVATE = ec.generate_private_key(ec.SECP256R1())
ATTACKER = ec.generate_private_key(ec.SECP256R1())


def _int(value: int, size: int | None = None) -> str:
    return b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e), "kid": kid, **extra}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str | None, **extra: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    crv = {256: "P-256", 384: "P-384"}[key.curve.key_size]
    jwk = {"kty": "EC", "crv": crv, "x": _int(numbers.x, size), "y": _int(numbers.y, size), **extra}
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def rsa_signer(key: rsa.RSAPrivateKey, alg: str) -> Callable[[bytes], bytes]:
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        if alg.startswith("PS")
        else padding.PKCS1v15()
    )
    return lambda data: key.sign(data, pad, digest)


def ec_signer(key: ec.EllipticCurvePrivateKey, *, der: bool = False) -> Callable[[bytes], bytes]:
    size = (key.curve.key_size + 7) // 8

    def signer(data: bytes) -> bytes:
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))  # SHA-256 whatever the curve (TV-18)
        if der:
            return signature
        r, s = decode_dss_signature(signature)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return signer


OCT_JWK = {"kty": "oct", "k": b64url(b"s" * 32), "kid": "oct-1"}


def _extra_keys() -> list[dict[str, Any]]:
    return [
        rsa_jwk(RSA_PRIVATE, "rsa-1", alg="RS256", use="sig"),
        ec_jwk(EC2_PRIVATE, "ec-2", alg="ES256", use="sig"),
        rsa_jwk(WEAK_RSA_PRIVATE, "weak-rsa", use="sig"),
        ec_jwk(P384_PRIVATE, "p384", use="sig"),
        OCT_JWK,
        ec_jwk(ENC_PRIVATE, "enc-1", use="enc"),
    ]


@pytest.fixture(scope="module")
def tv() -> Iterator[Stack]:
    with stack(
        idp={"jwks_refetch_cooldown_seconds": 0},
        before_start=lambda idp: idp.keys.extra_keys.extend(_extra_keys()),
    ) as s:
        assert s.post(rpc("ping"), token=s.token()).status_code == 200  # keys loaded
        yield s


def send(s: Stack, token: str | None, body: object = None) -> httpx.Response:
    return s.post(body or rpc("tools/call", {"name": "read_thing", "arguments": {}}), token=token)


def assert_refused(s: Stack, response: httpx.Response, mark: int, *, error: str = "invalid_token") -> None:
    """401 with the RFC 6750/9728 challenge, and nothing reached the upstream."""
    assert response.status_code == 401, response.text
    www = response.headers["www-authenticate"]
    assert www.startswith("Bearer ")
    if error:
        assert f'error="{error}"' in www
    else:
        assert "error=" not in www
    assert f'resource_metadata="{s.prm_url}"' in www
    assert s.since(mark) == []


def refused_without_fetch(s: Stack, token: str) -> None:
    mark, fetches = s.mark(), s.idp.jwks_requests
    assert_refused(s, send(s, token), mark)
    assert s.idp.jwks_requests == fetches, "the token made the gateway fetch keys"


def accepted(s: Stack, token: str) -> None:
    response = send(s, token)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["content"][0]["text"] == "called read_thing"


# --- TV-01 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "signature"),
    [("none", b""), ("None", b""), ("NONE", b""), ("none", b"\x00" * 64), ("ES256", b"")],
)
def test_tv01_alg_none_rejected(tv: Stack, alg: str, signature: bytes) -> None:
    head = es256_header(tv.idp, alg=alg, kid="never-seen-" + uuid.uuid4().hex)
    claims = standard_claims(tv)
    token = forge(head, claims, signature=signature)
    if not signature:
        assert token.endswith(".")  # the empty-signature form, "header.payload."
    refused_without_fetch(tv, token)


# --- TV-02 ---------------------------------------------------------------------------------


def _certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _public_key_forms() -> dict[str, bytes]:
    public = RSA_PRIVATE.public_key()
    served = json.dumps(rsa_jwk(RSA_PRIVATE, "rsa-1", alg="RS256", use="sig"))
    return {
        "pem-spki": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pem-pkcs1": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": served.encode(),
        "openssh": public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        "x509-pem": _certificate(RSA_PRIVATE).public_bytes(serialization.Encoding.PEM),
        "ec-pem": EC2_PRIVATE.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("form", list(_public_key_forms()))
def test_tv02_hs256_with_public_key_refused(tv: Stack, form: str, alg: str) -> None:
    secret = _public_key_forms()[form]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    kid = "ec-2" if form == "ec-pem" else "rsa-1"
    head = {"alg": alg, "typ": "at+jwt", "kid": kid}
    token = forge(head, standard_claims(tv), signer=lambda data: hmac.new(secret, data, digest).digest())
    refused_without_fetch(tv, token)
    # The same key does verify what it is for: the refusal is the algorithm's, not the key's.
    control = (
        forge({**head, "alg": "ES256"}, standard_claims(tv), signer=ec_signer(EC2_PRIVATE))
        if form == "ec-pem"
        else forge({**head, "alg": "RS256"}, standard_claims(tv), signer=rsa_signer(RSA_PRIVATE, "RS256"))
    )
    accepted(tv, control)


# --- TV-03 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "kid", "signer"),
    [
        ("RS512", "rsa-1", rsa_signer(RSA_PRIVATE, "RS512")),  # not on the allow-list
        ("RS384", "rsa-1", rsa_signer(RSA_PRIVATE, "RS384")),
        ("PS256", "rsa-1", rsa_signer(RSA_PRIVATE, "PS256")),  # allowed alg, but the JWK says RS256
        ("ES256", "rsa-1", ec_signer(EC2_PRIVATE)),  # an EC signature against an RSA key
        ("RS256", "ec-2", rsa_signer(RSA_PRIVATE, "RS256")),  # an RSA signature against an EC key
        ("EdDSA", "rsa-1", rsa_signer(RSA_PRIVATE, "RS256")),
    ],
)
def test_tv03_algorithm_must_match_the_key(
    tv: Stack, alg: str, kid: str, signer: Callable[[bytes], bytes]
) -> None:
    mark = tv.mark()
    assert_refused(
        tv,
        send(tv, forge({"alg": alg, "typ": "at+jwt", "kid": kid}, standard_claims(tv), signer=signer)),
        mark,
    )


def test_tv03_control_rs256_with_the_rsa_key_passes(tv: Stack) -> None:
    head = {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}
    accepted(tv, forge(head, standard_claims(tv), signer=rsa_signer(RSA_PRIVATE, "RS256")))


# --- TV-04 ---------------------------------------------------------------------------------


def _tamper(signature: bytes, how: str) -> bytes:
    if how == "flip-first-bit":
        return bytes([signature[0] ^ 0x80]) + signature[1:]
    if how == "flip-last-bit":
        return signature[:-1] + bytes([signature[-1] ^ 0x01])
    if how == "truncated":
        return signature[:-1]
    if how == "half":
        return signature[:32]
    assert how == "over-long"
    return signature + b"\x00"


@pytest.mark.parametrize("how", ["flip-first-bit", "flip-last-bit", "truncated", "half", "over-long"])
def test_tv04_tampered_signature_rejected(tv: Stack, how: str) -> None:
    head, claims = es256_header(tv.idp), standard_claims(tv)
    good = forge(head, claims, signer=issuer_signer(tv.idp))
    signature = base64.urlsafe_b64decode(good.rsplit(".", 1)[1] + "==")
    mark = tv.mark()
    assert_refused(tv, send(tv, forge(head, claims, signature=_tamper(signature, how))), mark)
    accepted(tv, good)


# --- TV-05 ---------------------------------------------------------------------------------

LEEWAY = 30  # the default, which the module's gateway uses


@pytest.mark.parametrize(
    ("claims", "ok"),
    [
        (lambda now: {"exp": now - (LEEWAY + 1)}, False),
        (lambda now: {"exp": now - 3600}, False),
        (lambda now: {"nbf": now + LEEWAY + 10}, False),
        (lambda now: {"iat": now + LEEWAY + 10}, False),
        (lambda now: {"exp": now - LEEWAY + 10}, True),  # expired, but just inside the leeway
        (lambda now: {"nbf": now + LEEWAY - 10, "iat": now + LEEWAY - 10}, True),
    ],
)
def test_tv05_time_claims_and_leeway(tv: Stack, claims: Callable[[int], dict[str, int]], ok: bool) -> None:
    now = tv.now()
    token = forge(es256_header(tv.idp), standard_claims(tv, **claims(now)), signer=issuer_signer(tv.idp))
    if ok:
        accepted(tv, token)
    else:
        mark = tv.mark()
        assert_refused(tv, send(tv, token), mark)


def test_tv05_leeway_is_capped() -> None:
    from mcp_bastion.config import parse_config
    from mcp_bastion.errors import ConfigError

    base = {
        "public_base_url": "https://gw.example",
        "servers": [{"name": "a", "upstream": "https://up.example"}],
    }
    idp = {"name": "i", "issuer": "https://idp.example"}
    parse_config({**base, "identity_providers": [{**idp, "leeway_seconds": 300}]})
    with pytest.raises(ConfigError, match="leeway_seconds"):
        parse_config({**base, "identity_providers": [{**idp, "leeway_seconds": 301}]})


# --- TV-06 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        lambda now: {"exp": ...},
        lambda now: {"exp": 10**23},
        lambda now: {"exp": 1e23},
        lambda now: {"exp": now + 86_400 + LEEWAY + 60},  # beyond max_token_lifetime_seconds
        lambda now: {"exp": now + 86_400 + LEEWAY + 60, "iat": ...},  # no iat: counted from now
        lambda now: {"exp": "9999999999"},
        lambda now: {"exp": True},
        lambda now: {"exp": None},
    ],
)
def test_tv06_lifetime_is_bounded(tv: Stack, claims: Callable[[int], dict[str, Any]]) -> None:
    body = standard_claims(tv, **claims(tv.now()))
    mark = tv.mark()
    assert_refused(tv, send(tv, forge(es256_header(tv.idp), body, signer=issuer_signer(tv.idp))), mark)


def test_tv06_control_a_day_long_token_passes(tv: Stack) -> None:
    now = tv.now()
    accepted(
        tv, forge(es256_header(tv.idp), standard_claims(tv, exp=now + 86_000), signer=issuer_signer(tv.idp))
    )


# --- TV-08 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        lambda iss: "https://evil.example",
        lambda iss: ...,
        lambda iss: iss + "/",
        lambda iss: iss[:-1],  # a prefix of the issuer
        lambda iss: iss.upper(),
        lambda iss: "urn:",
        lambda iss: [iss],
        lambda iss: None,
        lambda iss: "",
    ],
)
def test_tv08_wrong_issuer_rejected_before_any_key_fetch(tv: Stack, issuer: Callable[[str], Any]) -> None:
    # An unknown kid: if the issuer were checked after key lookup, the gateway would fetch keys.
    head = es256_header(tv.idp, kid="unknown-" + uuid.uuid4().hex)
    claims = standard_claims(tv, iss=issuer(tv.idp.issuer))
    refused_without_fetch(tv, forge(head, claims, signer=issuer_signer(tv.idp)))


# --- TV-09 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "audience",
    [
        lambda url: url.replace("/rec/mcp", "/other/mcp"),
        lambda url: ...,
        lambda url: "",
        lambda url: [],
        lambda url: [""],
        lambda url: url + "/",
        lambda url: url.upper(),
        lambda url: [url.replace("/rec/", "/other/"), "https://api.example"],
        lambda url: {"aud": url},
        lambda url: [url, 5],
    ],
)
def test_tv09_audience_must_name_this_resource(tv: Stack, audience: Callable[[str], Any]) -> None:
    token = forge(
        es256_header(tv.idp), standard_claims(tv, aud=audience(tv.url)), signer=issuer_signer(tv.idp)
    )
    mark = tv.mark()
    assert_refused(tv, send(tv, token), mark)


def test_tv09_control_audience_list_naming_this_resource_passes(tv: Stack) -> None:
    claims = standard_claims(tv, aud=["https://api.example", tv.url])
    accepted(tv, forge(es256_header(tv.idp), claims, signer=issuer_signer(tv.idp)))


# --- an unverified token's claims stay unsaid (issue 9) -------------------------------------


@pytest.mark.parametrize(
    ("claims", "said"),
    [
        (lambda now: {"exp": 0}, "expired"),
        (lambda now: {"aud": "https://gw.example/other/mcp"}, "audience"),
        (lambda now: {"nbf": now + 3600}, "not valid yet"),
        (lambda now: {"exp": now + 10**7}, "lifetime"),
    ],
    ids=["exp-0", "other-aud", "future-nbf", "huge-lifetime"],
)
def test_a_forged_token_is_answered_without_a_word_about_its_claims(
    tv: Stack, claims: Callable[[int], dict[str, Any]], said: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A forger must not learn which claim a real token would have failed on: not from the
    challenge, the body, the audit reason or an INFO log line."""
    body = standard_claims(tv, **claims(tv.now()))
    feed = tv.gateway.audit
    seen = len(feed.events)
    mark = tv.mark()
    with caplog.at_level(logging.INFO):
        response = send(tv, forge(es256_header(tv.idp), body, signer=ec_signer(ATTACKER)))
        feed.wait_for(lambda _: len(feed.events) > seen)
    assert_refused(tv, response, mark)
    assert 'error_description="token signature is invalid"' in response.headers["www-authenticate"]
    assert said not in response.headers["www-authenticate"] + response.text
    assert [e.reason for e in feed.events[seen:]] == ["token signature is invalid"]
    assert not [r for r in caplog.records if said in r.getMessage()]
    # Control: the same claims under the issuer's signature are named, so `said` is the right word.
    signed = send(tv, forge(es256_header(tv.idp), body, signer=issuer_signer(tv.idp)))
    assert said in signed.headers["www-authenticate"]


# --- TV-11 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "aud"),
    [
        ("JWT", "test-client"),  # an ID token: typ JWT, aud = the client
        ("JWT", None),  # typ JWT even with the right audience
        ("dpop+jwt", None),
        ("logout+jwt", None),
        ("secevent+jwt", None),
        (..., None),  # no typ
        ("", None),
        ("at+jwt+x", None),
    ],
)
def test_tv11_only_access_tokens_accepted(tv: Stack, typ: Any, aud: str | None) -> None:
    claims = standard_claims(tv, **({"aud": aud, "nonce": "n-1", "azp": "test-client"} if aud else {}))
    token = forge(es256_header(tv.idp, typ=typ), claims, signer=issuer_signer(tv.idp))
    mark = tv.mark()
    assert_refused(tv, send(tv, token), mark)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_tv11_control_at_jwt_forms_pass(tv: Stack, typ: str) -> None:
    accepted(tv, forge(es256_header(tv.idp, typ=typ), standard_claims(tv), signer=issuer_signer(tv.idp)))


# --- TV-12 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["x-unknown"], "x-unknown": 1},
        {"crit": []},
        {"crit": "x-unknown"},
        {"crit": None},
        {"crit": ["b64"], "b64": False},
        {"b64": False},
        {"crit": ["exp"]},
    ],
)
def test_tv12_critical_header_extensions_rejected(tv: Stack, extra: dict[str, Any]) -> None:
    token = forge(es256_header(tv.idp, **extra), standard_claims(tv), signer=issuer_signer(tv.idp))
    mark = tv.mark()
    assert_refused(tv, send(tv, token), mark)


# --- TV-13 ---------------------------------------------------------------------------------


def _attacker_certificate() -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ATTACKER.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ATTACKER, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize(
    "header",
    [
        lambda url: {"jwk": ec_jwk(ATTACKER, None)},
        lambda url: {"jwk": ec_jwk(ATTACKER, None), "kid": ...},
        lambda url: {"jku": url},
        lambda url: {"jku": "http://169.254.169.254/latest/meta-data/jwks"},
        lambda url: {"x5u": url},
        lambda url: {"x5u": "http://169.254.169.254/latest/meta-data/cert"},
        lambda url: {"x5c": [_attacker_certificate()]},
        lambda url: {"jku": url, "kid": ...},
    ],
)
def test_tv13_header_keys_and_key_urls_ignored(tv: Stack, header: Callable[[str], dict[str, Any]]) -> None:
    with connection_counter() as attacker:
        attacker_url = f"http://127.0.0.1:{attacker.port}/jwks"
        # The real kid (or none: two P-256 keys make a kid-less token ambiguous), so nothing
        # legitimately needs a fetch; the signature is the attacker's.
        head = es256_header(tv.idp, **header(attacker_url))
        token = forge(head, standard_claims(tv), signer=ec_signer(ATTACKER))
        refused_without_fetch(tv, token)
    assert attacker.accepted == 0, "the gateway connected to a URL named in the token header"


# --- TV-14 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    [
        "unknown-kid",
        "../../dev/null",
        "' OR '1'='1",
        0,
        1,
        None,
        ["test-key-1"],
        {"kid": "test-key-1"},
        "test-key-1\x00",
        "TEST-KEY-1",
        "k" * 10_000,
        ...,  # no kid, and two P-256 keys in the set: ambiguous
    ],
)
def test_tv14_kid_is_only_a_lookup_key(tv: Stack, kid: Any) -> None:
    # Signed with the real key: only the kid can make this fail.
    token = forge(es256_header(tv.idp, kid=kid), standard_claims(tv), signer=issuer_signer(tv.idp))
    mark = tv.mark()
    assert_refused(tv, send(tv, token), mark)


def test_tv14_unknown_kid_costs_at_most_one_fetch(tv: Stack) -> None:
    fetches = tv.idp.jwks_requests
    token = forge(
        es256_header(tv.idp, kid="unknown-" + uuid.uuid4().hex),
        standard_claims(tv),
        signer=issuer_signer(tv.idp),
    )
    mark = tv.mark()
    assert_refused(tv, send(tv, token), mark)
    assert tv.idp.jwks_requests == fetches + 1  # cooldown 0 here: one refetch, then 401


# --- TV-15 ---------------------------------------------------------------------------------


def _malformed(s: Stack) -> dict[str, str]:
    good = forge(es256_header(s.idp), standard_claims(s), signer=issuer_signer(s.idp))
    h, p, sig = good.split(".")
    claims = json.dumps(standard_claims(s)).encode()
    overlong = claims.replace(b'"alice"', b'"al\xc0\xafice"')
    surrogate = claims.replace(b'"alice"', b'"al\\ud800ice"')
    return {
        "a.b": "a.b",
        "two-segments": f"{h}.{p}",
        "four-segments": f"{h}.{p}.{sig}.{sig}",
        "jwe-five-segments": f"{h}.{p}.{sig}.{sig}.{sig}",
        "padding": f"{h}=.{p}.{sig}",
        "padding-end": f"{h}.{p}.{sig}==",
        "plus-slash": f"{h}.{p}.{sig[:-2]}+/",
        "empty-header": f".{p}.{sig}",
        "header-not-json": f"{b64url(b'not json')}.{p}.{sig}",
        "header-array": f"{b64url(b'[1,2]')}.{p}.{sig}",
        "payload-array": forge(es256_header(s.idp), b"[1,2]", signer=issuer_signer(s.idp)),
        "payload-string": forge(es256_header(s.idp), b'"alice"', signer=issuer_signer(s.idp)),
        "payload-overlong-utf8": forge(es256_header(s.idp), overlong, signer=issuer_signer(s.idp)),
        "payload-lone-surrogate": forge(es256_header(s.idp), surrogate, signer=issuer_signer(s.idp)),
        "payload-nan": forge(
            es256_header(s.idp), claims.replace(b'"exp": ', b'"exp": NaN, "x": '), signer=issuer_signer(s.idp)
        ),
        "dots": "...",
        "bang": f"{h}!.{p}.{sig}",
    }


@pytest.mark.parametrize(
    "name",
    [
        "a.b",
        "two-segments",
        "four-segments",
        "jwe-five-segments",
        "padding",
        "padding-end",
        "plus-slash",
        "empty-header",
        "header-not-json",
        "header-array",
        "payload-array",
        "payload-string",
        "payload-overlong-utf8",
        "payload-lone-surrogate",
        "payload-nan",
        "dots",
        "bang",
    ],
)
def test_tv15_malformed_tokens_are_401_never_500(tv: Stack, name: str) -> None:
    mark = tv.mark()
    assert_refused(tv, send(tv, _malformed(tv)[name]), mark)


def test_tv15_empty_bearer_value_is_a_missing_token(tv: Stack) -> None:
    """`Authorization: Bearer ` (the empty token): surrounding whitespace is not part of a field
    value (RFC 9110 §5.5), which leaves a bare scheme: no credentials, so 401 without an error code."""
    mark = tv.mark()
    body = json.dumps(rpc("ping")).encode()
    with socket.create_connection((tv.host, tv.port), timeout=5) as conn:
        conn.sendall(request_head(tv, None, body_length=len(body)) + b"Authorization: Bearer \r\n\r\n" + body)
        status, headers, _ = read_response(conn)
    assert status == 401
    assert "error=" not in headers["www-authenticate"]
    assert f'resource_metadata="{tv.prm_url}"' in headers["www-authenticate"]
    assert tv.since(mark) == []


@pytest.mark.parametrize("bad", [b"abc\nxyz", b"abc\x00def", b"abc\rdef", b"abc\r\n def"])
def test_tv15_control_characters_in_the_header_never_reach_the_gateway(tv: Stack, bad: bytes) -> None:
    """A newline, NUL or CR inside the Authorization value is an HTTP framing error: the HTTP
    parser answers 400 and the request never reaches the gateway (nor the upstream)."""
    mark = tv.mark()
    body = json.dumps(rpc("ping")).encode()
    head = request_head(tv, None, body_length=len(body)) + b"Authorization: Bearer " + bad + b"\r\n\r\n"
    with socket.create_connection((tv.host, tv.port), timeout=5) as conn:
        conn.sendall(head + body)
        status, _, _ = read_response(conn)
    assert status == 400
    assert tv.since(mark) == []


# --- TV-16 ---------------------------------------------------------------------------------


# The 100 MB case (and other users' latency meanwhile) is in test_jr10_connection_limits.py.
@pytest.mark.parametrize(("size", "status"), [(10_000, 401), (1_000_000, 431), (10_000_000, 431)])
def test_tv16_oversized_authorization_header(tv: Stack, size: int, status: int) -> None:
    mark, fetches = tv.mark(), tv.idp.jwks_requests
    body = json.dumps(rpc("ping")).encode()
    token = ("eyJ" + "A" * size)[:size]
    started = time.monotonic()
    with socket.create_connection((tv.host, tv.port), timeout=30) as conn:
        # Past the header cap the gateway answers 431 and hangs up while we are still sending.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            conn.sendall(request_head(tv, token, body_length=len(body)) + b"\r\n" + body)
        got, headers, reply = read_response(conn, timeout=30)
    assert got == status
    if status == 401:
        assert 'error="invalid_token"' in headers["www-authenticate"]
        assert b"token too large" in reply
    assert tv.since(mark) == []
    assert tv.idp.jwks_requests == fetches
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("members", [200, 1000])
def test_tv16_many_member_jose_header_refused_before_decoding(tv: Stack, members: int) -> None:
    # 200 members already exceed the 2048-character header cap; 1,000 exceed the token cap.
    head = es256_header(tv.idp, **{str(i): 0 for i in range(members)})
    token = forge(head, standard_claims(tv), signer=issuer_signer(tv.idp))
    assert len(token) < 16_000  # under the header cap: this is the token check, not the 431
    mark, fetches = tv.mark(), tv.idp.jwks_requests
    response = send(tv, token)
    assert_refused(tv, response, mark)
    assert response.json()["error_description"] in ("token header too large", "token too large")
    assert tv.idp.jwks_requests == fetches


# --- TV-18 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "signer"),
    [
        ({"alg": "RS256", "kid": "weak-rsa"}, rsa_signer(WEAK_RSA_PRIVATE, "RS256")),  # RSA-1024
        ({"alg": "ES256", "kid": "p384"}, ec_signer(P384_PRIVATE)),  # a P-384 key used for ES256
        ({"alg": "ES256", "kid": "oct-1"}, ec_signer(EC2_PRIVATE)),  # kty oct in an asymmetric set
        ({"alg": "HS256", "kid": "oct-1"}, lambda d: hmac.new(b"s" * 32, d, hashlib.sha256).digest()),
        ({"alg": "ES256", "kid": "enc-1"}, ec_signer(ENC_PRIVATE)),  # use: enc
        ({"alg": "ES256", "kid": "ec-2"}, lambda d: b"\x00" * 64),  # r = s = 0 (CVE-2022-21449)
        ({"alg": "ES256", "kid": "ec-2"}, ec_signer(EC2_PRIVATE, der=True)),  # DER, not r||s
    ],
)
def test_tv18_unusable_keys_and_signatures_refused(
    tv: Stack, head: dict[str, str], signer: Callable[[bytes], bytes]
) -> None:
    mark = tv.mark()
    token = forge({**head, "typ": "at+jwt"}, standard_claims(tv), signer=signer)
    assert_refused(tv, send(tv, token), mark)


def test_tv18_control_second_p256_key_verifies(tv: Stack) -> None:
    accepted(
        tv,
        forge(
            {"alg": "ES256", "kid": "ec-2", "typ": "at+jwt"},
            standard_claims(tv),
            signer=ec_signer(EC2_PRIVATE),
        ),
    )


# --- TV-19 ---------------------------------------------------------------------------------


def test_tv19_token_only_in_the_authorization_header(tv: Stack) -> None:
    token = tv.token()
    body = json.dumps(rpc("ping")).encode()
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    mark = tv.mark()
    in_query = tv.http.post(tv.url, params={"access_token": token}, content=body, headers=headers)
    assert_refused(tv, in_query, mark, error="")
    in_cookie = tv.http.post(tv.url, content=body, headers={**headers, "cookie": f"access_token={token}"})
    assert_refused(tv, in_cookie, mark, error="")
    in_json = tv.http.post(
        tv.url, content=json.dumps({**rpc("ping"), "access_token": token}).encode(), headers=headers
    )
    assert_refused(tv, in_json, mark, error="")
    # A form body is not MCP: refused at the edge (415) before any token could be looked for.
    form = tv.http.post(
        tv.url,
        content=f"access_token={token}".encode(),
        headers={**headers, "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    assert tv.since(mark) == []


@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [
        ("Bearer-{t}", 401, ""),
        ("Bearer{t}", 401, ""),
        ("Token {t}", 401, ""),
        ("Basic {t}", 401, ""),
        ("{t}", 401, ""),
        ("Bearer  {t} x", 401, "invalid_token"),
        ("bearer {t}", 200, None),
        ("BEARER {t}", 200, None),
        ("Bearer {t}", 200, None),
    ],
)
def test_tv19_scheme_name(tv: Stack, authorization: str, status: int, error: str | None) -> None:
    mark = tv.mark()
    response = tv.post(rpc("ping"), headers={"authorization": authorization.format(t=tv.token())})
    if status == 200:
        assert response.status_code == 200
    else:
        assert_refused(tv, response, mark, error=error or "")
