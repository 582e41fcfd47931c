"""JWT access-token verification against real keys: the TV-* rows of SECURITY-CASES.md."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from mcp_bastion.auth import IssuerPolicy, JwtVerifier, Principal, RemoteKeySet
from mcp_bastion.auth.keys import PublicKey
from mcp_bastion.errors import InvalidToken

from .tokens import (
    ATTACKER_EC_KEY,
    EC_KEY,
    ED_KEY,
    ISSUER,
    NOW,
    RESOURCE,
    RSA_KEY,
    Clock,
    Loader,
    b64url,
    claims,
    header,
    hmac_token,
    idp_config,
    p384_jwk_and_signer,
    public_jwk,
    signed_with,
    token,
    weak_rsa_jwk_and_signer,
)

ALLOWED = frozenset({ISSUER})


class CountingKeySet(RemoteKeySet):
    lookups = 0

    async def key_for(self, kid: str | None, alg: str) -> PublicKey:
        self.lookups += 1
        return await super().key_for(kid, alg)


@dataclass
class Harness:
    verifier: JwtVerifier
    loader: Loader
    clock: Clock
    keys: CountingKeySet

    async def verify(
        self, tok: str, resource: str = RESOURCE, allowed: frozenset[str] = ALLOWED
    ) -> Principal:
        return await self.verifier.verify(tok, resource, allowed)

    async def reject(
        self, tok: str, fragment: str, resource: str = RESOURCE, allowed: frozenset[str] = ALLOWED
    ) -> InvalidToken:
        with pytest.raises(InvalidToken) as caught:
            await self.verifier.verify(tok, resource, allowed)
        error = caught.value
        assert (error.status, error.error) == (401, "invalid_token")
        assert fragment in error.message, error.message
        return error


def make(
    document: Any = None,
    *,
    ttl: float = 300,
    cooldown: float = 30,
    max_token_bytes: int = 8192,
    **config: Any,
) -> Harness:
    loader = Loader() if document is None else Loader(document)
    clock = Clock()
    keys = CountingKeySet(loader, clock=clock, ttl=ttl, cooldown=cooldown)
    verifier = JwtVerifier(
        {ISSUER: IssuerPolicy(idp_config(**config), keys)}, clock=clock, max_token_bytes=max_token_bytes
    )
    return Harness(verifier, loader, clock, keys)


# --- valid tokens -------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_valid_token_of_each_algorithm(alg: str) -> None:
    h = make()
    tok = token(header(alg))
    principal = await h.verify(tok)
    assert principal == Principal(
        subject="alice",
        issuer=ISSUER,
        client_id="client-1",
        scopes=frozenset({"tools.read", "tools.write"}),
        token_hash=hashlib.sha256(tok.encode()).hexdigest()[:32],
        expires_at=NOW + 300,
        jti="jti-1",
    )
    assert h.loader.calls == 1


async def test_principal_never_holds_the_token() -> None:
    h = make()
    tok = token()
    principal = await h.verify(tok)
    text = repr(principal)
    assert all(segment not in text for segment in tok.split("."))


# --- TV-01: alg none ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
async def test_tv01_alg_none_rejected_without_key_fetch(alg: str) -> None:
    h = make()
    await h.reject(token(header(alg), signature=b"sig"), "algorithm is not allowed")
    assert h.loader.calls == 0


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_tv01_alg_none_with_empty_signature_rejected_without_key_fetch(alg: str) -> None:
    h = make()
    await h.reject(token(header(alg), signature=b""), "segment is not unpadded base64url")
    assert h.loader.calls == 0


@pytest.mark.parametrize("alg", [..., None, 256, ["ES256"], {"alg": "ES256"}, "es256", "ES256 "])
async def test_tv01_missing_or_odd_alg_rejected(alg: Any) -> None:
    h = make()
    await h.reject(token(header("ES256", alg=alg), signature=b"x"), "algorithm is not allowed")
    assert h.loader.calls == 0


# --- TV-02: HMAC with the public key ------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        RSA_KEY.as_pem(private=False),
        orjson.dumps(RSA_KEY.as_dict(private=False)),
        RSA_KEY.as_dict(private=False)["n"].encode(),
        EC_KEY.as_pem(private=False),
    ],
    ids=["pem", "jwk-json", "modulus", "ec-pem"],
)
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_tv02_hmac_signed_with_the_public_key_rejected(secret: bytes, alg: str) -> None:
    h = make()
    await h.reject(hmac_token(secret, alg), "algorithm is not allowed")
    assert h.loader.calls == 0


# --- TV-03: algorithm and key must agree --------------------------------------------------


@pytest.mark.parametrize("alg", ["RS512", "RS384", "PS512", "ES384", "ES512", "ES256K", "Ed25519", "HS256"])
async def test_tv03_algorithms_off_the_allow_list(alg: str) -> None:
    h = make()
    await h.reject(token(header(alg, kid="rsa-1"), signature=b"x" * 64), "algorithm is not allowed")
    assert h.loader.calls == 0


async def test_tv03_rs512_token_from_the_real_rsa_key_rejected() -> None:
    h = make()
    await h.reject(token(header("RS512", kid="rsa-1"), key=RSA_KEY), "algorithm is not allowed")


async def test_tv03_configured_allow_list_narrows_the_default() -> None:
    h = make(algorithms=("ES256",))
    await h.reject(token(header("RS256")), "algorithm is not allowed")
    assert (await h.verify(token(header("ES256")))).subject == "alice"


@pytest.mark.parametrize(
    ("jwk_alg", "token_alg"),
    [("RS256", "PS256"), ("PS256", "RS256"), ("RS512", "RS256")],
)
async def test_tv03_jwk_alg_must_equal_token_alg(jwk_alg: str, token_alg: str) -> None:
    h = make({"keys": [public_jwk(RSA_KEY, "rsa-1", alg=jwk_alg)]})
    await h.reject(token(header(token_alg, kid="rsa-1"), key=RSA_KEY), "no usable key")


async def test_tv03_rsa_key_without_alg_verifies_both_rsa_algorithms() -> None:
    h = make({"keys": [public_jwk(RSA_KEY, "rsa-1")]})
    for alg in ("RS256", "PS256"):
        assert (await h.verify(token(header(alg, kid="rsa-1"), claims(jti=alg)))).subject == "alice"


@pytest.mark.parametrize(
    ("alg", "kid", "key"),
    [
        ("ES256", "rsa-1", EC_KEY),  # the kid names an RSA key
        ("RS256", "ec-1", RSA_KEY),  # the kid names an EC key
        ("EdDSA", "ec-1", ED_KEY),
        ("ES256", "ed-1", EC_KEY),
        ("PS256", "ec-1", RSA_KEY),
    ],
)
async def test_tv03_key_type_fixes_the_algorithm(alg: str, kid: str, key: Any) -> None:
    h = make()
    await h.reject(token(header(alg, kid=kid), key=key), "no usable key")


# --- TV-04: signatures --------------------------------------------------------------------


def _with_signature(tok: str, signature: bytes) -> str:
    head, body, _ = tok.split(".")
    return f"{head}.{body}.{b64url(signature)}"


def _signature(tok: str) -> bytes:
    seg = tok.split(".")[2]
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
@pytest.mark.parametrize("index", [0, -1, 17])
async def test_tv04_flipped_signature_bit_rejected(alg: str, index: int) -> None:
    h = make()
    tok = token(header(alg))
    sig = bytearray(_signature(tok))
    sig[index] ^= 0x01
    await h.reject(_with_signature(tok, bytes(sig)), "signature is invalid")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
@pytest.mark.parametrize("change", ["truncated", "extended", "empty-ish", "zeros"])
async def test_tv04_wrong_length_signatures_rejected(alg: str, change: str) -> None:
    h = make()
    tok = token(header(alg))
    sig = _signature(tok)
    forged = {
        "truncated": sig[:-1],
        "extended": sig + b"\x00",
        "empty-ish": b"\x00",
        "zeros": bytes(len(sig)),
    }[change]
    await h.reject(_with_signature(tok, forged), "signature is invalid")


async def test_tv04_changed_payload_rejected() -> None:
    h = make()
    tok = token()
    _, _, sig = tok.split(".")
    forged_body = b64url(orjson.dumps(claims(scope="admin")))
    await h.reject(f"{tok.split('.')[0]}.{forged_body}.{sig}", "signature is invalid")


async def test_tv18_es256_der_signature_rejected() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    h = make()
    tok = token(header("ES256"))
    raw = _signature(tok)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    await h.reject(_with_signature(tok, der), "signature is invalid")


async def test_tv18_es256_zero_r_and_s_rejected() -> None:
    h = make()
    await h.reject(token(header("ES256"), signature=bytes(64)), "signature is invalid")


# --- TV-05: time claims and leeway (30 s by default) --------------------------------------

T = int(NOW)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"exp": T - 31}, "token has expired"),
        ({"exp": T - 30}, None),
        ({"exp": T - 29}, None),
        ({"exp": T - 30.5}, "token has expired"),
        ({"nbf": T + 31}, "token is not valid yet"),
        ({"nbf": T + 30}, None),
        ({"nbf": T - 1000}, None),
        ({"iat": T + 31}, "token was issued in the future"),
        ({"iat": T + 30}, None),
        ({"iat": ...}, None),
        ({"nbf": "0"}, "`nbf` is not a number"),
        ({"iat": True}, "`iat` is not a number"),
        ({"exp": str(T + 60)}, "`exp` is not a number"),
        ({"exp": None}, "token has no expiry"),
        ({"exp": False}, "`exp` is not a number"),
        ({"exp": [T + 60]}, "`exp` is not a number"),
    ],
)
async def test_tv05_time_claims_with_default_leeway(overrides: dict[str, Any], fragment: str | None) -> None:
    h = make()
    tok = token(body=claims(**overrides))
    if fragment is None:
        assert (await h.verify(tok)).subject == "alice"
    else:
        await h.reject(tok, fragment)


@pytest.mark.parametrize(
    ("leeway", "exp_offset", "ok"), [(0, 0, True), (0, -1, False), (300, -300, True), (300, -301, False)]
)
async def test_tv05_configured_leeway(leeway: float, exp_offset: int, ok: bool) -> None:
    h = make(leeway_seconds=leeway)
    tok = token(body=claims(exp=T + exp_offset, iat=T - 400))
    if ok:
        assert (await h.verify(tok)).expires_at == T + exp_offset
    else:
        await h.reject(tok, "token has expired")


# --- TV-06: lifetime ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"exp": ...}, "token has no expiry"),
        ({"exp": 1e23}, "lifetime exceeds the allowed maximum"),
        ({"exp": 2**63 - 1}, "lifetime exceeds the allowed maximum"),
        ({"exp": T + 86_400 + 31}, "lifetime exceeds the allowed maximum"),
        ({"exp": T + 86_400 + 30}, None),
        # Without iat, lifetime counts from now.
        ({"iat": ..., "exp": T + 86_400 + 31}, "lifetime exceeds the allowed maximum"),
        ({"iat": ..., "exp": T + 86_400}, None),
        # An old iat cannot stretch a token: lifetime is exp - iat.
        ({"iat": T - 86_400, "exp": T + 60}, "lifetime exceeds the allowed maximum"),
    ],
)
async def test_tv06_lifetime_is_bounded(overrides: dict[str, Any], fragment: str | None) -> None:
    h = make()
    tok = token(body=claims(**overrides))
    if fragment is None:
        assert (await h.verify(tok)).subject == "alice"
    else:
        await h.reject(tok, fragment)


async def test_tv06_exp_10_to_the_23_rejected() -> None:
    # orjson cannot write 10**23 as an integer; the IdP's JSON can.
    h = make()
    body = orjson.dumps(claims(exp=0)).replace(b'"exp":0', b'"exp":100000000000000000000000')
    await h.reject(token(body=body), "lifetime exceeds the allowed maximum")


async def test_tv06_exp_beyond_a_double_is_rejected_as_malformed() -> None:
    h = make()
    body = orjson.dumps(claims(exp=0)).replace(b'"exp":0', b'"exp":1' + b"0" * 400)
    await h.reject(token(body=body), "payload is not base64url JSON")


async def test_tv06_configured_max_lifetime() -> None:
    h = make(max_token_lifetime_seconds=600)
    await h.reject(token(body=claims(exp=T + 631)), "lifetime exceeds the allowed maximum")
    assert (await h.verify(token(body=claims(exp=T + 630)))).subject == "alice"


# --- TV-08: issuer before any key fetch ---------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        ...,
        None,
        "",
        "https://evil.example",
        ISSUER + "/",
        ISSUER + "/tenant",
        "https://idp.example.evil.example",
        "https://IDP.example",
        "HTTPS://idp.example",
        "http://idp.example",
        "https://idp.exampl",
        " " + ISSUER,
        [ISSUER],
        {"iss": ISSUER},
        1,
    ],
)
async def test_tv08_wrong_issuer_rejected_with_zero_key_loads(iss: Any) -> None:
    h = make()
    await h.reject(token(body=claims(iss=iss)), "issuer is not trusted")
    assert h.loader.calls == 0
    assert h.keys.lookups == 0


async def test_tv08_prefix_issuer_urn() -> None:
    loader = Loader()
    clock = Clock()
    keys = RemoteKeySet(loader, clock=clock, ttl=300, cooldown=30)
    config = idp_config()
    verifier = JwtVerifier({"urn:expected": IssuerPolicy(config, keys)}, clock=clock, max_token_bytes=8192)
    with pytest.raises(InvalidToken, match="issuer is not trusted"):
        await verifier.verify(token(body=claims(iss="urn:")), RESOURCE, frozenset({"urn:expected"}))
    assert loader.calls == 0


async def test_tv08_known_issuer_not_trusted_for_this_resource() -> None:
    h = make()
    await h.reject(token(), "issuer is not trusted", allowed=frozenset({"https://other-idp.example"}))
    await h.reject(token(), "issuer is not trusted", allowed=frozenset())
    assert h.loader.calls == 0


# --- TV-09: audience ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aud", "ok"),
    [
        (RESOURCE, True),
        ([RESOURCE], True),
        (["https://other.example/mcp", RESOURCE], True),
        ("https://gw.example/notes/mcp", False),
        (RESOURCE + "/", False),
        ("https://gw.example/demo", False),
        ("https://GW.example/demo/mcp", False),
        ("client-1", False),
        (..., False),
        (None, False),
        ("", False),
        ([], False),
        ([""], False),
        (["https://other.example/mcp"], False),
        ([RESOURCE, 1], False),
        ([[RESOURCE]], False),
        ({"aud": RESOURCE}, False),
        (1, False),
    ],
)
async def test_tv09_audience(aud: Any, ok: bool) -> None:
    h = make()
    tok = token(body=claims(aud=aud))
    if ok:
        assert (await h.verify(tok)).subject == "alice"
    else:
        await h.reject(tok, "audience is not this resource")


# --- TV-11: explicit typing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "ok"),
    [
        ("at+jwt", True),
        ("AT+JWT", True),
        ("application/at+jwt", True),
        ("Application/AT+JWT", True),
        ("JWT", False),
        ("jwt", False),
        ("dpop+jwt", False),
        ("logout+jwt", False),
        ("oauth-id-jag+jwt", False),
        ("at+jwt ", False),
        ("", False),
        (..., False),
        (None, False),
        (["at+jwt"], False),
    ],
)
async def test_tv11_typ_must_be_at_jwt(typ: Any, ok: bool) -> None:
    h = make()
    tok = token(header("ES256", typ=typ))
    if ok:
        assert (await h.verify(tok)).subject == "alice"
    else:
        await h.reject(tok, "token type must be at+jwt")
        assert h.loader.calls == 0


async def test_tv11_id_token_shaped_token_rejected() -> None:
    h = make()
    id_token = token(header("ES256", typ="JWT"), claims(aud="client-1", nonce="n"))
    await h.reject(id_token, "token type must be at+jwt")


@pytest.mark.parametrize("typ", ["JWT", ..., "dpop+jwt"])
async def test_tv11_typ_not_required_when_configured_off(typ: Any) -> None:
    h = make(require_typ=None)
    assert (await h.verify(token(header("ES256", typ=typ)))).subject == "alice"


async def test_tv11_custom_required_typ() -> None:
    h = make(require_typ="JWT")
    assert (await h.verify(token(header("ES256", typ="jwt")))).subject == "alice"
    await h.reject(token(header("ES256", typ="at+jwt")), "token type must be JWT")


# --- TV-12: crit and b64 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["x-unknown"], "x-unknown": 1},
        {"crit": ["x-unknown"]},
        {"crit": []},
        {"crit": "x-unknown"},
        {"crit": None},
        {"crit": ["exp"], "exp": T + 60},
        {"b64": False, "crit": ["b64"]},
        {"b64": False},
        {"b64": True},
    ],
)
async def test_tv12_critical_extensions_rejected(extra: dict[str, Any]) -> None:
    h = make()
    await h.reject(token(header("ES256", **extra)), "critical header extensions")
    assert h.loader.calls == 0


# --- TV-13: keys and key URLs in the header are never used --------------------------------


ATTACKER_JWK = public_jwk(ATTACKER_EC_KEY, "ec-1", alg="ES256")


@pytest.mark.parametrize(
    "extra",
    [
        {"jwk": ATTACKER_JWK},
        {"jku": "https://evil.example/jwks"},
        {"jku": "http://169.254.169.254/latest/meta-data/"},
        {"x5u": "https://evil.example/cert.pem"},
        {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]},
        {"jwk": ATTACKER_JWK, "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c"},
    ],
    ids=["jwk", "jku", "jku-metadata", "x5u", "x5c", "all"],
)
async def test_tv13_header_keys_ignored(extra: dict[str, Any]) -> None:
    h = make()
    assert (await h.verify(token(header("ES256"), claims(jti="warm")))).subject == "alice"
    assert h.loader.calls == 1
    # Signed by the attacker's key, which the header offers: refused, and nothing more is loaded.
    await h.reject(token(header("ES256", **extra), key=ATTACKER_EC_KEY), "signature is invalid")
    # The same header on a genuine token changes nothing: only the configured keys are used.
    assert (await h.verify(token(header("ES256", **extra), claims(jti="genuine")))).subject == "alice"
    assert h.loader.calls == 1


# --- TV-14: kid ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid", ["unknown", "../../dev/null", "' OR '1'='1", "ec-1 ", "EC-1", "*", "rsa-1/../ec-1"]
)
async def test_tv14_unknown_kid_refetches_once_then_cools_down(kid: str) -> None:
    h = make(cooldown=30)
    h.clock.now = NOW
    await h.keys.warm()
    h.clock.now = NOW + 31  # past the cooldown: one refetch is allowed
    tok = token(header("ES256", kid=kid), claims(iat=T + 31, exp=T + 331))
    await h.reject(tok, "no usable key")
    assert h.loader.calls == 2
    # Within the cooldown, more unknown kids load nothing.
    for i in range(20):
        other = token(header("ES256", kid=f"{kid}-{i}"), claims(iat=T + 31, exp=T + 331))
        await h.reject(other, "no usable key")
    assert h.loader.calls == 2


@pytest.mark.parametrize(
    ("kid", "fragment"),
    [
        (0, "key id is malformed"),
        (1, "key id is malformed"),
        (True, "key id is malformed"),
        ("", "key id is malformed"),
        (["ec-1"], "key id is malformed"),
        ({"kid": "ec-1"}, "key id is malformed"),
        ("k" * 257, "key id is malformed"),
        ("k" * 10_240, "token header too large"),
    ],
)
async def test_tv14_malformed_kid_rejected_before_any_load(kid: Any, fragment: str) -> None:
    h = make(max_token_bytes=65_536)
    await h.reject(token(header("ES256", kid=kid), signature=b"x" * 64), fragment)
    assert h.loader.calls == 0


async def test_tv14_kid_is_only_a_lookup_key() -> None:
    h = make()
    # A kid naming another algorithm family's key never makes that key verify this alg.
    await h.reject(token(header("ES256", kid="ed-1")), "no usable key")
    assert (await h.verify(token(header("ES256", kid="ec-1")))).subject == "alice"


async def test_tv14_no_kid_with_several_candidate_keys_rejected() -> None:
    second = ATTACKER_EC_KEY
    h = make({"keys": [public_jwk(EC_KEY, "ec-1"), public_jwk(second, "ec-2")]})
    await h.reject(token(header("ES256", kid=...)), "no usable key")
    assert h.loader.calls == 1


async def test_tv14_no_kid_with_one_candidate_key_accepted() -> None:
    # One EC key among keys of other types: the key type leaves exactly one candidate.
    h = make()
    assert (await h.verify(token(header("ES256", kid=...)))).subject == "alice"
    h2 = make({"keys": [public_jwk(EC_KEY, None)]})
    assert (await h2.verify(token(header("ES256", kid=...)))).subject == "alice"


async def test_tv14_kid_less_key_is_not_found_by_kid() -> None:
    h = make({"keys": [public_jwk(EC_KEY, None)]})
    await h.reject(token(header("ES256", kid="ec-1")), "no usable key")


# --- TV-15: malformed tokens --------------------------------------------------------------


def _seg(value: bytes) -> str:
    return b64url(value)


GOOD = token()
H, P, S = GOOD.split(".")
NAN_HEADER = _seg(b'{"alg":NaN}')
OVERLONG_UTF8 = _seg(b'{"sub":"\xc0\xaf"}')
LONE_SURROGATE = _seg(b'{"sub":"\\ud800"}')


@pytest.mark.parametrize(
    ("tok", "fragment"),
    [
        ("", "three segments"),
        ("a", "three segments"),
        ("a.b", "three segments"),
        ("a.b.c.d", "three segments"),
        (f"{H}.{P}.{S}.x.y", "three segments"),
        (f"{H}..{S}", "unpadded base64url"),
        (f"{H}.{P}.", "unpadded base64url"),
        (f".{P}.{S}", "unpadded base64url"),
        (f"{H}=.{P}.{S}", "unpadded base64url"),
        (f"{H}.{P}=.{S}", "unpadded base64url"),
        (f"{H}.{P}.{S}==", "unpadded base64url"),
        (f"{H}!.{P}.{S}", "unpadded base64url"),
        (H[:5] + "\n" + H[5:] + f".{P}.{S}", "unpadded base64url"),
        (f"{H}." + P[:5] + "\r\n" + P[5:] + f".{S}", "unpadded base64url"),
        (f"{H}.{P}.{S[:5]} {S[5:]}", "unpadded base64url"),
        (f"{H}+.{P}.{S}", "unpadded base64url"),
        (f"{H}.{P}.{S}/", "unpadded base64url"),
        (f"{_seg(b'not json')}.{P}.{S}", "header is not base64url JSON"),
        (f"{H}x.{P}.{S}", "header is not base64url JSON"),
        (f"{_seg(b'[1,2]')}.{P}.{S}", "header is not a JSON object"),
        (f"{_seg(b'null')}.{P}.{S}", "header is not a JSON object"),
        (f"{NAN_HEADER}.{P}.{S}", "header is not base64url JSON"),
        (f"{H}.{_seg(b'[]')}.{S}", "payload is not a JSON object"),
        (f"{H}.{_seg(b'1')}.{S}", "payload is not a JSON object"),
        (f"{H}.{_seg(b'{}garbage')}.{S}", "payload is not base64url JSON"),
        (f"{H}.{OVERLONG_UTF8}.{S}", "payload is not base64url JSON"),
        (f"{H}.{LONE_SURROGATE}.{S}", "payload is not base64url JSON"),
        # Five segments: a JWE.
        ("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "three segments"),
    ],
)
async def test_tv15_malformed_tokens_rejected(tok: str, fragment: str) -> None:
    h = make()
    await h.reject(tok, fragment)
    assert h.loader.calls == 0


async def test_tv15_one_character_segment_is_not_a_crash() -> None:
    h = make()
    await h.reject("a.b.c", "header is not base64url JSON")


# --- TV-16: sizes -------------------------------------------------------------------------


async def test_tv16_oversized_token_rejected_before_decoding() -> None:
    h = make(max_token_bytes=1024)
    tok = token(body=claims(pad="x" * 2000))
    await h.reject(tok, "token too large")
    assert h.loader.calls == 0


@pytest.mark.parametrize("size", [10_240, 1_048_576])
async def test_tv16_huge_tokens_rejected(size: int) -> None:
    h = make()
    await h.reject("a" * size, "token too large")


async def test_tv16_thousand_member_header_rejected() -> None:
    h = make(max_token_bytes=65_536)
    head = header("ES256", **{f"x{i}": i for i in range(1000)})
    await h.reject(token(head, signature=b"x" * 64), "token header too large")
    assert h.loader.calls == 0


async def test_unknown_header_parameters_are_ignored() -> None:
    # RFC 7515 §4: parameters not understood (and not `crit`) are ignored, not fatal.
    h = make()
    tok = token(header("ES256", nonce="n-1", **{"x-tenant": "t1"}))
    assert (await h.verify(tok)).subject == "alice"


@pytest.mark.parametrize(("pad", "ok"), [(1000, True), (1450, True), (1600, False)])
async def test_tv16_header_cap_is_2048_characters(pad: int, ok: bool) -> None:
    h = make()
    tok = token(header("ES256", **{"x-pad": "p" * pad}))
    head_chars = len(tok.split(".")[0])
    assert (head_chars <= 2048) is ok
    if ok:
        assert (await h.verify(tok)).subject == "alice"
    else:
        await h.reject(tok, "token header too large")


async def test_tv16_token_at_the_size_limit_is_verified() -> None:
    tok = token()
    h = make(max_token_bytes=len(tok))
    assert (await h.verify(tok)).subject == "alice"
    h2 = make(max_token_bytes=len(tok) - 1)
    await h2.reject(tok, "token too large")


# --- TV-18: unusable keys in the JWKS -----------------------------------------------------


async def test_tv18_rsa_1024_key_ignored() -> None:
    weak_jwk, signer = weak_rsa_jwk_and_signer(1024)
    h = make({"keys": [dict(weak_jwk, kid="weak"), public_jwk(EC_KEY, "ec-1")]})
    tok = signed_with(signer, header("RS256", kid="weak"))
    await h.reject(tok, "no usable key")
    assert (await h.verify(token(header("ES256")))).subject == "alice"


async def test_tv18_only_weak_keys_means_no_keys() -> None:
    weak_jwk, signer = weak_rsa_jwk_and_signer(1024)
    h = make({"keys": [dict(weak_jwk, kid="weak")]})
    await h.reject(signed_with(signer, header("RS256", kid="weak")), "no usable key")


async def test_tv18_p384_key_never_verifies_es256() -> None:
    jwk, signer = p384_jwk_and_signer()
    h = make({"keys": [dict(jwk, kid="p384")]})
    await h.reject(signed_with(signer, header("ES256", kid="p384")), "no usable key")
    h2 = make({"keys": [jwk]})
    await h2.reject(signed_with(signer, header("ES256", kid=...)), "no usable key")


async def test_tv18_oct_key_in_the_set_is_ignored() -> None:
    secret = b"0123456789abcdef0123456789abcdef"
    oct_jwk = {"kty": "oct", "k": b64url(secret), "kid": "sym", "alg": "HS256"}
    h = make({"keys": [oct_jwk, public_jwk(EC_KEY, "ec-1")]})
    await h.reject(hmac_token(secret, kid="sym"), "algorithm is not allowed")
    await h.reject(token(header("ES256", kid="sym")), "no usable key")


async def test_tv18_encryption_key_never_verifies() -> None:
    h = make({"keys": [public_jwk(EC_KEY, "ec-1", use="enc")]})
    await h.reject(token(header("ES256")), "no usable key")


# --- the verdict cache --------------------------------------------------------------------


async def test_same_token_twice_is_verified_once() -> None:
    h = make()
    tok = token()
    first = await h.verify(tok)
    second = await h.verify(tok)
    assert first == second
    assert h.keys.lookups == 1
    assert h.loader.calls == 1


async def test_cached_verdict_rechecks_audience_and_issuer() -> None:
    h = make()
    tok = token()
    await h.verify(tok)
    await h.reject(tok, "audience is not this resource", resource="https://gw.example/notes/mcp")
    await h.reject(tok, "issuer is not trusted", allowed=frozenset({"https://other-idp.example"}))
    assert h.keys.lookups == 1


async def test_cached_verdict_for_a_multi_audience_token() -> None:
    h = make()
    other = "https://gw.example/notes/mcp"
    tok = token(body=claims(aud=[RESOURCE, other]))
    await h.verify(tok)
    assert (await h.verify(tok, resource=other)).subject == "alice"
    await h.reject(tok, "audience is not this resource", resource="https://gw.example/x/mcp")
    assert h.keys.lookups == 1


async def test_cached_verdict_does_not_outlive_expiry() -> None:
    h = make()  # leeway 30 s
    tok = token(body=claims(exp=T + 10))
    await h.verify(tok)
    h.clock.now = NOW + 39  # within exp + leeway: the cached verdict stands
    assert (await h.verify(tok)).subject == "alice"
    assert h.keys.lookups == 1
    h.clock.now = NOW + 41
    await h.reject(tok, "token has expired")


async def test_cached_verdict_is_reverified_after_a_minute() -> None:
    h = make()
    tok = token(body=claims(exp=T + 3600))
    await h.verify(tok)
    h.clock.now = NOW + 59
    await h.verify(tok)
    assert h.keys.lookups == 1
    h.clock.now = NOW + 61
    await h.verify(tok)
    assert h.keys.lookups == 2


async def test_a_remembered_bearer_value_skips_parsing_but_not_the_audience_or_issuer_check() -> None:
    h = make()
    tok = token()
    assert h.verifier.remembered(f"Bearer {tok}", RESOURCE, ALLOWED) is None  # never verified yet
    principal = await h.verify(tok)
    for spelling in ("Bearer ", "bearer ", "BEARER "):
        assert h.verifier.remembered(spelling + tok, RESOURCE, ALLOWED) == principal
    with pytest.raises(InvalidToken, match="audience is not this resource"):
        h.verifier.remembered(f"Bearer {tok}", "https://gw.example/notes/mcp", ALLOWED)
    with pytest.raises(InvalidToken, match="issuer is not trusted"):
        h.verifier.remembered(f"Bearer {tok}", RESOURCE, frozenset({"https://other-idp.example"}))
    assert h.keys.lookups == 1


@pytest.mark.parametrize(
    "spelled",
    ["Bearer  {t}", "Bearer {t} ", "BeArEr {t}", "Basic {t}", "Bearer {t}x", "Bearer\t{t}"],
)
async def test_any_other_spelling_of_a_remembered_token_is_a_miss(spelled: str) -> None:
    """A miss falls back to full parsing, which decides; a hit needs the exact bytes verified."""
    h = make()
    tok = token()
    await h.verify(tok)
    assert h.verifier.remembered(spelled.format(t=tok), RESOURCE, ALLOWED) is None


async def test_a_remembered_verdict_expires_like_the_cached_one() -> None:
    h = make()  # leeway 30 s
    tok = token(body=claims(exp=T + 10))
    await h.verify(tok)
    h.clock.now = NOW + 39
    assert h.verifier.remembered(f"Bearer {tok}", RESOURCE, ALLOWED) is not None
    h.clock.now = NOW + 41
    assert h.verifier.remembered(f"Bearer {tok}", RESOURCE, ALLOWED) is None


async def test_rejections_are_not_cached() -> None:
    h = make()
    tok = token(header("ES256", kid="ec-1"), key=ATTACKER_EC_KEY)
    await h.reject(tok, "signature is invalid")
    await h.reject(tok, "signature is invalid")
    assert h.keys.lookups == 2


# --- claims mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "scopes"),
    [
        ({"scope": "a b  c"}, {"a", "b", "c"}),
        ({"scope": ""}, set()),
        ({"scope": ..., "scp": ["a", "b"]}, {"a", "b"}),
        ({"scope": ..., "scp": "a b"}, {"a", "b"}),
        ({"scope": ..., "scp": ["a", 1, None, "b"]}, {"a", "b"}),
        ({"scope": 5, "scp": ["x"]}, {"x"}),
        ({"scope": "s", "scp": ["x"]}, {"s"}),
        ({"scope": ...}, set()),
        ({"scope": {"a": 1}}, set()),
    ],
)
async def test_scope_claims(overrides: dict[str, Any], scopes: set[str]) -> None:
    h = make()
    assert (await h.verify(token(body=claims(**overrides)))).scopes == frozenset(scopes)


@pytest.mark.parametrize(
    ("overrides", "client_id"),
    [
        ({}, "client-1"),
        ({"client_id": ..., "azp": "azp-client"}, "azp-client"),
        ({"client_id": ..., "appid": "entra-app"}, "entra-app"),
        ({"client_id": 5, "azp": "azp-client"}, "azp-client"),
        ({"client_id": "c", "azp": "a"}, "c"),
        ({"client_id": ...}, None),
    ],
)
async def test_client_id_claims(overrides: dict[str, Any], client_id: str | None) -> None:
    h = make()
    assert (await h.verify(token(body=claims(**overrides)))).client_id == client_id


async def test_configured_claim_names() -> None:
    from mcp_bastion.config.model import ClaimMapping

    h = make(claims=ClaimMapping(subject="oid", scopes=("roles",), client_id=("cid",)))
    body = claims(oid="object-1", roles=["r1"], cid="c9", sub="ignored")
    principal = await h.verify(token(body=body))
    assert (principal.subject, principal.scopes, principal.client_id) == ("object-1", frozenset({"r1"}), "c9")


@pytest.mark.parametrize("sub", [..., None, "", 5, ["alice"], "s" * 1025])
async def test_subject_required(sub: Any) -> None:
    h = make()
    await h.reject(token(body=claims(sub=sub)), "token has no subject")


@pytest.mark.parametrize(("jti", "kept"), [("j" * 256, "j" * 256), ("j" * 257, None), (5, None), (..., None)])
async def test_jti_kept_only_when_sane(jti: Any, kept: str | None) -> None:
    h = make()
    assert (await h.verify(token(body=claims(jti=jti)))).jti == kept


# --- signature check really runs ----------------------------------------------------------


async def test_token_signed_by_another_key_with_the_right_kid_rejected() -> None:
    h = make()
    await h.reject(token(header("ES256"), key=ATTACKER_EC_KEY), "signature is invalid")


async def test_signature_covers_the_header() -> None:
    h = make()
    tok = token(header("ES256"))
    _, body, sig = tok.split(".")
    other_head = b64url(orjson.dumps(header("ES256", typ="application/at+jwt")))
    await h.reject(f"{other_head}.{body}.{sig}", "signature is invalid")


# --- an unverified token's claims stay unsaid (issue 9) -----------------------------------
# Before the signature verifies, the claims are the sender's word: a refusal that named the
# failing claim would tell a forger what a real token must say. Only the issuer (it picks the
# key source, TV-08) is judged before the signature.

_CLAIM_FAILURES = [
    ({"exp": 0}, "token has expired"),
    ({"aud": "https://gw.example/other/mcp"}, "token audience is not this resource"),
    ({"aud": ...}, "token audience is not this resource"),
    ({"nbf": T + 3600}, "token is not valid yet"),
    ({"iat": T + 3600, "exp": T + 3700}, "token was issued in the future"),
    ({"exp": T + 10**7}, "token lifetime exceeds the allowed maximum"),
    ({"exp": ...}, "token has no expiry"),
    ({"exp": "soon"}, "token `exp` is not a number"),
    ({"sub": ...}, "token has no subject"),
]


@pytest.mark.parametrize(("overrides", "specific"), _CLAIM_FAILURES)
async def test_a_forged_token_is_refused_without_a_word_about_its_claims(
    overrides: dict[str, Any], specific: str
) -> None:
    h = make()
    forged = token(header("ES256"), body=claims(**overrides), key=ATTACKER_EC_KEY)
    error = await h.reject(forged, "token signature is invalid")
    assert error.message == "token signature is invalid"


@pytest.mark.parametrize(("overrides", "specific"), _CLAIM_FAILURES)
async def test_control_the_same_claims_signed_by_the_issuer_are_named(
    overrides: dict[str, Any], specific: str
) -> None:
    h = make()
    error = await h.reject(token(header("ES256"), body=claims(**overrides)), specific)
    assert error.message == specific


async def test_a_forged_token_with_a_bad_signature_encoding_says_only_that() -> None:
    # A signature of the wrong length for ES256 over an expired token: still nothing of `exp`.
    h = make()
    forged = token(header("ES256"), body=claims(exp=0), signature=b"\x01" * 10)
    error = await h.reject(forged, "token signature is invalid")
    assert "expired" not in error.message


async def test_a_forged_token_is_not_cached_and_a_real_one_still_is() -> None:
    h = make()
    forged = token(header("ES256"), body=claims(aud="https://gw.example/other/mcp"), key=ATTACKER_EC_KEY)
    await h.reject(forged, "token signature is invalid")
    await h.reject(forged, "token signature is invalid")  # a second time: verified again, not remembered
    assert h.verifier.remembered("Bearer " + forged, RESOURCE, ALLOWED) is None
    real = token()
    assert (await h.verify(real)).subject == "alice"
    remembered = h.verifier.remembered("Bearer " + real, RESOURCE, ALLOWED)
    assert remembered is not None
    assert remembered.subject == "alice"


# --- boundaries, stated as numbers rather than read back from the module ------------------


async def test_a_header_segment_of_2048_characters_is_read_and_one_more_is_too_large() -> None:
    h = make()
    # 1,536 bytes of header JSON are exactly 2,048 base64url characters.
    pad = 1536 - len(orjson.dumps(header("ES256", **{"x-pad": ""})))
    tok = token(header("ES256", **{"x-pad": "p" * pad}))
    assert len(tok.split(".")[0]) == 2048
    assert (await h.verify(tok)).subject == "alice"
    # 2,049 characters cannot even be base64url: the size, not the decoding, must refuse it.
    _, body, sig = tok.split(".")
    await h.reject(f"{'A' * 2049}.{body}.{sig}", "token header too large")


@pytest.mark.parametrize(("length", "ok"), [(256, True), (257, False)])
async def test_a_kid_of_256_characters_is_looked_up_and_one_more_is_refused(length: int, ok: bool) -> None:
    kid = "k" * length
    h = make({"keys": [public_jwk(EC_KEY, kid, alg="ES256")]})
    tok = token(header("ES256", kid=kid))
    if ok:
        assert (await h.verify(tok)).subject == "alice"
    else:
        await h.reject(tok, "token key id is malformed")
        assert h.loader.calls == 0


@pytest.mark.parametrize(("length", "ok"), [(1024, True), (1025, False)])
async def test_a_subject_of_1024_characters_is_kept_and_one_more_is_refused(length: int, ok: bool) -> None:
    h = make()
    tok = token(body=claims(sub="s" * length))
    if ok:
        assert (await h.verify(tok)).subject == "s" * length
    else:
        await h.reject(tok, "token has no subject")


async def test_a_token_of_exactly_the_size_cap_is_remembered() -> None:
    tok = token()
    h = make(max_token_bytes=len(tok))
    principal = await h.verify(tok)
    assert h.verifier.remembered(f"Bearer {tok}", RESOURCE, ALLOWED) == principal


async def test_a_cached_verdict_ends_at_its_cache_until_instant() -> None:
    # exp + leeway (40 s) comes before the minute: that instant ends the verdict, for both paths.
    h = make()
    tok = token(body=claims(exp=T + 10))
    await h.verify(tok)
    h.clock.now = NOW + 39.999
    assert h.verifier.remembered(f"Bearer {tok}", RESOURCE, ALLOWED) is not None
    h.clock.now = NOW + 40
    assert h.verifier.remembered(f"Bearer {tok}", RESOURCE, ALLOWED) is None
    assert (await h.verify(tok)).subject == "alice"  # exp + leeway itself is still valid
    assert h.keys.lookups == 2  # verified afresh, not answered from the cache
