"""Properties of the Authorization header and JWT parser: a Principal only for a token that is valid
by every rule, InvalidToken / MissingToken for anything else, whatever the bytes.

The verifier gets its keys from an in-process loader (tests/auth/tokens.py), so a property can
sign arbitrary headers and claims with the real keys and check that acceptance implies the policy.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
from hypothesis import event, example, given
from hypothesis import strategies as st

from mcp_bastion.auth.bearer import bearer_token
from mcp_bastion.auth.jwt import MAX_HEADER_CHARS, IssuerPolicy, JwtVerifier
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config.model import SUPPORTED_ALGORITHMS
from mcp_bastion.errors import AuthenticationError, InvalidToken, MissingToken

from ..auth.tokens import (
    ATTACKER_EC_KEY,
    ISSUER,
    KEY_OF_ALG,
    KID_OF_ALG,
    NOW,
    RESOURCE,
    Clock,
    Loader,
    b64url,
    claims,
    header,
    idp_config,
    key_set,
    sign,
    token,
)
from .strategies import budget, hostile_text, json_values, latin1_text, outcome

MAX_TOKEN = 8192  # limits.max_token_bytes default
LEEWAY = 30.0
MAX_LIFETIME = 86_400
_B64TOKEN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")


def _verifier() -> JwtVerifier:
    policy = IssuerPolicy(idp_config(), key_set(Loader(), Clock()))
    return JwtVerifier({ISSUER: policy}, clock=Clock(), max_token_bytes=MAX_TOKEN)


def _verify(tok: str, verifier: JwtVerifier | None = None) -> Principal | InvalidToken:
    verifier = verifier or _verifier()

    async def run() -> Principal:
        return await verifier.verify(tok, RESOURCE, frozenset({ISSUER}))

    return outcome(InvalidToken, asyncio.run, run())


# --- the Authorization header --------------------------------------------------------------------

b64tokens = st.text(alphabet=sorted(_B64TOKEN - {"="}), min_size=1, max_size=60).flatmap(
    lambda t: st.integers(0, 2).map(lambda n: t + "=" * n)
)
schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR", "Basic", "Bearer-xyz", "DPoP", ""])


@given(
    value=st.one_of(
        st.none(),
        latin1_text,
        st.builds(
            lambda s, sp, t, tail: f"{s}{sp}{t}{tail}",
            schemes,
            st.sampled_from([" ", "  ", "\t", ""]),
            st.one_of(b64tokens, latin1_text),
            st.sampled_from(["", " ", "\n", "\r\n", "\x00", ","]),
        ),
    )
)
@example(value="Bearer abc\n")
@budget(500)
def test_bearer_token_returns_the_b64token_or_refuses(value: str | None) -> None:
    result = outcome(AuthenticationError, bearer_token, value)
    if isinstance(result, AuthenticationError):
        assert isinstance(result, (MissingToken, InvalidToken))
        # A malformed *Bearer* credential is invalid_token; anything else is simply no token.
        assert isinstance(result, InvalidToken) == (value is not None and value[:7].lower() == "bearer ")
        return
    assert value is not None
    # RFC 6750 §2.1: exactly "Bearer" (any case), spaces, one b64token, nothing else but spaces.
    assert value[:6].lower() == "bearer"
    assert value[6:].strip(" ") == result
    assert set(result) <= _B64TOKEN
    assert "=" not in result.rstrip("=")


@given(scheme=st.sampled_from(["Bearer", "bearer", "BEARER"]), spaces=st.integers(1, 3), tok=b64tokens)
@budget(200)
def test_any_b64token_round_trips_through_the_header(scheme: str, spaces: int, tok: str) -> None:
    assert bearer_token(f"{scheme}{' ' * spaces}{tok}") == tok


# --- JWT: arbitrary strings ------------------------------------------------------------------------

segment = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=40),
    json_values(6).map(lambda v: b64url(orjson.dumps(v))),
    st.binary(max_size=40).map(b64url),
    hostile_text,
)


@given(
    tok=st.one_of(
        st.text(max_size=200),
        st.lists(segment, min_size=1, max_size=6).map(".".join),
    )
)
@budget(400)
def test_arbitrary_strings_are_invalid_tokens(tok: str) -> None:
    assert isinstance(_verify(tok), InvalidToken)


# --- JWT: real signatures over arbitrary headers and claims ----------------------------------------

ALGS = [*SUPPORTED_ALGORITHMS, "none", "None", "HS256", "RS512", "ES384", "ES256K"]
times = st.one_of(
    st.none(),
    st.floats(NOW - 2 * MAX_LIFETIME, NOW + 2 * MAX_LIFETIME),
    st.integers(int(NOW) - 400, int(NOW) + 400),
    st.sampled_from([0, -1, 1e23, 1e308, True, "1700000300", [NOW]]),  # TV-06: exp = 10^23
)


HEADER_MEMBERS = ["typ", "kid", "crit", "b64", "jwk", "jku", "x5u", "x5c", "cty"]
HEADER_VALUES = ["at+jwt", "application/at+jwt", "JWT", "dpop+jwt", "rsa-1", "ec-1", "ed-1", ""]
CLAIMS = ["iss", "aud", "sub", "exp", "nbf", "iat", "scope", "client_id"]


@st.composite
def jose_headers(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid headers with up to two members changed: enough of them pass to compare."""
    alg = draw(st.one_of(st.sampled_from(SUPPORTED_ALGORITHMS), st.sampled_from(ALGS)))
    head = header(alg) if alg in KID_OF_ALG else {"alg": alg, "typ": "at+jwt", "kid": "ec-1"}
    for name in draw(st.sets(st.sampled_from(HEADER_MEMBERS), max_size=2)):
        head[name] = draw(st.one_of(st.sampled_from(HEADER_VALUES), json_values(3)))
    if not draw(st.integers(0, 5)):
        head.pop(draw(st.sampled_from(["alg", "typ", "kid"])), None)
    return head


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    body = claims()
    for name in draw(st.sets(st.sampled_from(CLAIMS), max_size=3)):
        if name in ("exp", "nbf", "iat"):
            body[name] = draw(times)
        elif name == "iss":
            body[name] = draw(st.sampled_from([ISSUER, ISSUER + "/", "urn:", ISSUER.upper(), None, 1]))
        elif name == "aud":
            body[name] = draw(
                st.sampled_from([RESOURCE, [RESOURCE], ["x", RESOURCE], "", [], None, RESOURCE + "/", [1]])
            )
        else:
            body[name] = draw(json_values(3))
    return {k: v for k, v in body.items() if v is not None}


def _signed(head: dict[str, Any], body: dict[str, Any], attacker: bool) -> str:
    alg = head.get("alg")
    key = ATTACKER_EC_KEY if attacker else KEY_OF_ALG.get(alg) if isinstance(alg, str) else None
    if key is None or (attacker and alg != "ES256"):
        return token(head, body, signature=b"\x00" * 64)
    return token(head, body, key=key)


def _policy_holds(head: dict[str, Any], body: dict[str, Any]) -> bool:
    """Independent statement of what a valid token is, to compare the verifier against."""
    alg, typ = head.get("alg"), head.get("typ")
    times_ok = all(
        body.get(n) is None or (type(body[n]) in (int, float)) for n in ("exp", "nbf", "iat")
    ) and isinstance(body.get("exp"), (int, float))
    if not times_ok:
        return False
    exp, nbf, iat = body["exp"], body.get("nbf"), body.get("iat")
    aud = body.get("aud")
    return (
        alg in SUPPORTED_ALGORITHMS
        and "crit" not in head
        and "b64" not in head
        and isinstance(typ, str)
        and typ.lower() in ("at+jwt", "application/at+jwt")
        and body.get("iss") == ISSUER
        and (aud == RESOURCE or (isinstance(aud, list) and RESOURCE in aud))
        and exp + LEEWAY >= NOW
        and (nbf is None or nbf <= NOW + LEEWAY)
        and (iat is None or iat <= NOW + LEEWAY)
        and exp - (iat if iat is not None else NOW) <= MAX_LIFETIME + LEEWAY
        and isinstance(body.get("sub"), str)
        and 0 < len(body["sub"]) <= 1024
    )


_CLAIM_WORDS = ("expir", "audience", "valid yet", "future", "lifetime", "subject", "`exp`", "`nbf`", "`iat`")


@given(head=jose_headers(), body=claim_sets(), attacker=st.integers(0, 4).map(lambda n: n == 0))
@budget(300, deadline_ms=2000)
def test_a_signed_token_is_accepted_only_when_every_rule_holds(
    head: dict[str, Any], body: dict[str, Any], attacker: bool
) -> None:
    result = _verify(_signed(head, body, attacker))
    event("accepted" if isinstance(result, Principal) else "refused")
    if isinstance(result, InvalidToken):
        if attacker:
            # Until the signature verifies only the form, the header and the issuer may be
            # judged aloud: nothing may say which other claim a real token would fail on.
            assert not any(word in result.message for word in _CLAIM_WORDS), result.message
        return
    # Accepted: signed by the IdP's key for the header's algorithm, and the policy holds.
    assert not attacker
    assert _policy_holds(head, body), (head, body)
    assert result.subject == body["sub"]
    assert result.issuer == ISSUER
    assert result.expires_at == float(body["exp"])


@given(
    alg=st.sampled_from(SUPPORTED_ALGORITHMS),
    sub=st.text(min_size=1, max_size=100),
    scope=st.lists(st.sampled_from(["tools.read", "tools.write", "admin", "x:y"]), unique=True),
)
@budget(60, deadline_ms=2000)
def test_valid_tokens_round_trip_to_their_principal(alg: str, sub: str, scope: list[str]) -> None:
    tok = token(header(alg), claims(sub=sub, scope=" ".join(scope)))
    verifier = _verifier()
    principal = _verify(tok, verifier)
    assert isinstance(principal, Principal)
    assert (principal.subject, principal.issuer, principal.client_id) == (sub, ISSUER, "client-1")
    assert principal.scopes == frozenset(scope)
    assert principal.token_hash not in tok  # a hash prefix, never the token
    assert _verify(tok, verifier) == principal  # the cached verdict is the same verdict


@given(
    position=st.integers(min_value=0),
    replacement=st.sampled_from("Aa0-_.=+/ \x00é"),
    alg=st.sampled_from(SUPPORTED_ALGORITHMS),
)
@budget(300, deadline_ms=2000)
def test_a_changed_character_breaks_the_token(position: int, replacement: str, alg: str) -> None:
    tok = token(header(alg), claims())
    position %= len(tok)
    forged = tok[:position] + replacement + tok[position + 1 :]
    result = _verify(forged)
    if forged == tok:
        assert isinstance(result, Principal)
    else:
        assert isinstance(result, InvalidToken)


@given(extra=st.integers(1, 3 * MAX_TOKEN), where=st.sampled_from(["header", "payload", "signature"]))
@budget(60)
def test_oversized_tokens_and_headers_are_refused_before_decoding(extra: int, where: str) -> None:
    h, p, s = token().split(".")
    padded = {
        "header": (b64url(b'{"alg":"ES256","x":"' + b"a" * (MAX_HEADER_CHARS + extra) + b'"}'), p, s),
        "payload": (h, p + "A" * (MAX_TOKEN + extra), s),
        "signature": (h, p, s + "A" * (MAX_TOKEN + extra)),
    }[where]
    refused = _verify(".".join(padded))
    assert isinstance(refused, InvalidToken)
    assert "too large" in refused.message  # the size check, not a failed decode


def test_a_token_signed_with_the_right_key_but_the_signature_segment_re_encoded_is_refused() -> None:
    # base64url has spare bits in a last character; a decoder that ignores them would accept
    # many spellings of one signature, each with a different token hash in the audit feed.
    tok = token()
    h, p, s = tok.split(".")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twins = [
        s[:-1] + c
        for c in alphabet
        if c != s[-1] and base64.urlsafe_b64decode(s[:-1] + c + "=" * (-len(s) % 4)) == raw
    ]
    assert twins  # an ES256 signature (64 bytes) has spare bits in its last character
    assert isinstance(_verify(tok), Principal)
    for twin in twins:
        assert isinstance(_verify(f"{h}.{p}.{twin}"), InvalidToken)


def test_a_signature_over_the_same_claims_by_another_key_is_refused() -> None:
    signing_input = f"{b64url(orjson.dumps(header()))}.{b64url(orjson.dumps(claims()))}"
    forged = f"{signing_input}.{b64url(sign('ES256', ATTACKER_EC_KEY, signing_input.encode()))}"
    assert isinstance(_verify(forged), InvalidToken)
