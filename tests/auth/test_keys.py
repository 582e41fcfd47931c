"""The remote key set: TTL, cooldown, coalescing, keeping the last good keys (DM-01..DM-04, TV-18)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from mcp_bastion.auth import IssuerPolicy, JwtVerifier
from mcp_bastion.auth.keys import RemoteKeySet, compatible, import_public_keys
from mcp_bastion.errors import InvalidToken, KeySourceError

from .tokens import (
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
    idp_config,
    p384_jwk_and_signer,
    public_jwk,
    standard_jwks,
    token,
    weak_rsa_jwk_and_signer,
)

TTL = 300.0
COOLDOWN = 30.0
MAX_KEYS = 64  # keys of one JWKS document looked at; the rest are ignored (DM-03)
NEW_EC_KEY = ECKey.generate_key("P-256")


def _key_set(loader: Loader, clock: Clock, *, ttl: float = TTL, cooldown: float = COOLDOWN) -> RemoteKeySet:
    return RemoteKeySet(loader, clock=clock, ttl=ttl, cooldown=cooldown)


def _same(key: Any, expected: Any) -> bool:
    return bool(key.thumbprint() == expected.thumbprint())


async def _no_key(keys: RemoteKeySet, kid: str | None, alg: str = "ES256") -> None:
    with pytest.raises(InvalidToken, match="no usable key for this token") as caught:
        await keys.key_for(kid, alg)
    assert caught.value.status == 401


# --- TTL ----------------------------------------------------------------------------------


async def test_keys_load_once_and_refresh_after_the_ttl() -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)
    assert loader.calls == 1
    clock.now = NOW + TTL  # not yet stale
    await keys.key_for("ec-1", "ES256")
    await keys.key_for("rsa-1", "RS256")
    assert loader.calls == 1
    clock.now = NOW + TTL + 1
    await keys.key_for("ec-1", "ES256")  # stale keys still serve; the refresh runs behind
    await keys.settled()
    assert loader.calls == 2
    clock.now = NOW + TTL + 2
    await keys.key_for("ec-1", "ES256")
    await keys.settled()
    assert loader.calls == 2


async def test_warm_loads_immediately() -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    assert loader.calls == 1
    await keys.key_for("ed-1", "EdDSA")
    assert loader.calls == 1


# --- DM-01: unknown kids ------------------------------------------------------------------


async def test_unknown_kid_refetches_once_per_cooldown() -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    # Right after a load, an unknown kid is not worth another one.
    await _no_key(keys, "nope")
    assert loader.calls == 1
    clock.now = NOW + COOLDOWN + 1
    await _no_key(keys, "nope-1")
    assert loader.calls == 2
    for i in range(100):
        await _no_key(keys, f"random-{i}")
    assert loader.calls == 2
    # The cooldown, not the one-second retry of a forced refresh, spaces unknown-kid refetches.
    clock.now = NOW + COOLDOWN + 3
    await _no_key(keys, "nope-3")
    assert loader.calls == 2
    clock.now = NOW + 2 * COOLDOWN + 2
    await _no_key(keys, "nope-2")
    assert loader.calls == 3


async def test_known_kid_with_an_incompatible_alg_does_not_refetch() -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    clock.now = NOW + COOLDOWN + 1
    await _no_key(keys, "ec-1", "RS256")
    assert loader.calls == 1


async def test_kidless_miss_does_not_refetch() -> None:
    loader = Loader({"keys": [public_jwk(EC_KEY, "a"), public_jwk(NEW_EC_KEY, "b")]})
    clock = Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    clock.now = NOW + COOLDOWN + 1
    await _no_key(keys, None)
    assert loader.calls == 1


def _verifier(loader: Loader, clock: Clock) -> JwtVerifier:
    keys = _key_set(loader, clock)
    return JwtVerifier({ISSUER: IssuerPolicy(idp_config(), keys)}, clock=clock, max_token_bytes=8192)


class Gate:
    """Holds every load until the test opens it; tells the test when the first load began."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.open = asyncio.Event()

    async def __call__(self) -> None:
        self.started.set()
        await self.open.wait()


async def test_dm01_concurrent_cold_misses_share_one_load() -> None:
    gate = Gate()
    loader, clock = Loader(gate=gate), Clock()
    verifier = _verifier(loader, clock)
    tokens = [token(header("ES256"), claims(jti=f"t{i}")) for i in range(50)]
    batch = asyncio.gather(*(verifier.verify(t, RESOURCE, frozenset({ISSUER})) for t in tokens))
    await asyncio.wait_for(gate.started.wait(), 5)
    gate.open.set()
    principals = await asyncio.wait_for(batch, 5)
    assert [p.jti for p in principals] == [f"t{i}" for i in range(50)]
    assert loader.calls == 1


async def test_dm01_concurrent_unknown_kids_share_one_refetch() -> None:
    gate = Gate()
    loader, clock = Loader(), Clock()
    verifier = _verifier(loader, clock)
    assert (await verifier.verify(token(), RESOURCE, frozenset({ISSUER}))).subject == "alice"
    loader.gate = gate
    clock.now = NOW + COOLDOWN + 1
    body = claims(iat=int(NOW + COOLDOWN + 1), exp=int(NOW + 600))
    tokens = [token(header("ES256", kid=f"random-{i}"), body) for i in range(50)]
    batch = asyncio.gather(
        *(verifier.verify(t, RESOURCE, frozenset({ISSUER})) for t in tokens), return_exceptions=True
    )
    await asyncio.wait_for(gate.started.wait(), 5)
    gate.open.set()
    results = await asyncio.wait_for(batch, 5)
    assert all(isinstance(r, InvalidToken) and r.message == "no usable key for this token" for r in results)
    assert loader.calls == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_load() -> None:
    gate = Gate()
    loader, clock = Loader(gate=gate), Clock()
    keys = _key_set(loader, clock)
    first = asyncio.ensure_future(keys.key_for("ec-1", "ES256"))
    second = asyncio.ensure_future(keys.key_for("ec-1", "ES256"))
    await asyncio.wait_for(gate.started.wait(), 5)
    first.cancel()
    gate.open.set()
    key = await asyncio.wait_for(second, 5)
    assert _same(key, EC_KEY)
    assert first.cancelled()
    assert loader.calls == 1


# --- refreshes without stalls -------------------------------------------------------------


async def test_a_stale_set_serves_known_kids_while_its_refresh_is_held() -> None:
    # Before: every lookup past the TTL awaited the refresh, so a slow IdP stalled all requests.
    gate = Gate()
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.gate = gate
    clock.now = NOW + TTL + 1
    found = await asyncio.wait_for(asyncio.gather(*(keys.key_for("ec-1", "ES256") for _ in range(64))), 5)
    assert all(_same(key, EC_KEY) for key in found)
    await asyncio.wait_for(gate.started.wait(), 5)
    assert loader.calls == 2
    assert not gate.open.is_set()
    gate.open.set()
    await asyncio.wait_for(keys.settled(), 5)
    assert loader.calls == 2


async def test_an_unknown_kid_waits_for_the_refresh_in_flight_and_finds_the_new_key() -> None:
    gate = Gate()
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.gate = gate
    loader.document = {"keys": [public_jwk(EC_KEY, "ec-1"), public_jwk(NEW_EC_KEY, "rotated")]}
    clock.now = NOW + TTL + 1
    await keys.key_for("ec-1", "ES256")  # starts the refresh behind
    waiting = asyncio.ensure_future(keys.key_for("rotated", "ES256"))
    await asyncio.wait_for(gate.started.wait(), 5)
    assert not waiting.done()
    gate.open.set()
    assert _same(await asyncio.wait_for(waiting, 5), NEW_EC_KEY)
    assert loader.calls == 2  # it joined the refresh in flight, no second fetch


async def test_an_unknown_kid_waits_no_longer_than_the_wait_limit() -> None:
    # An IdP that never answers must not hold a request past the bound (the fetch has its own
    # timeout too; this bound holds whatever `load` does).
    gate = Gate()
    loader, clock = Loader(), Clock()
    keys = RemoteKeySet(loader, clock=clock, ttl=TTL, cooldown=COOLDOWN, wait_limit=0.05)
    await keys.warm()
    loader.gate = gate
    clock.now = NOW + COOLDOWN + 1
    await asyncio.wait_for(_no_key(keys, "unknown"), 5)
    assert loader.calls == 2
    assert not gate.open.is_set()
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)  # known kids were never held
    gate.open.set()
    await asyncio.wait_for(keys.settled(), 5)


async def test_an_unexpected_failure_of_a_background_refresh_is_logged_and_keeps_the_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.fail_with = RuntimeError("a bug in the loader")
    clock.now = NOW + TTL + 1
    with caplog.at_level(logging.ERROR, logger="mcp_bastion.auth"):
        assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)
        with pytest.raises(RuntimeError):
            await keys.settled()
    assert "key refresh failed unexpectedly" in caplog.text
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)


# --- DM-02 / DM-03: failures keep the last good keys --------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        KeySourceError("idp.example answered HTTP 500"),
        KeySourceError("cannot reach idp.example (ConnectError)"),
    ],
)
async def test_dm02_failed_refresh_keeps_last_good_keys(
    failure: KeySourceError, caplog: pytest.LogCaptureFixture
) -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.fail_with = failure
    clock.now = NOW + TTL + 1
    with caplog.at_level(logging.WARNING, logger="mcp_bastion.auth"):
        key = await keys.key_for("ec-1", "ES256")
        await keys.settled()
    assert _same(key, EC_KEY)
    assert loader.calls == 2
    assert "key refresh failed, keeping 3 cached keys" in caplog.text
    # Stale keys are retried at most once per cooldown, not once per request.
    clock.now = NOW + TTL + 2
    await keys.key_for("ec-1", "ES256")
    await keys.settled()
    assert loader.calls == 2
    clock.now = NOW + TTL + COOLDOWN + 2
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)
    await keys.settled()
    assert loader.calls == 3


BAD_DOCUMENTS: list[Any] = [
    None,
    {},
    {"keys": None},
    {"keys": "abc"},
    {"keys": {}},
    {"keys": []},
    {"keys": [None]},
    {"keys": [1, "x", []]},
    [],
    "<html>502 Bad Gateway</html>",
    {"keys": [{"kty": "RSA", "n": RSA_KEY.as_dict(private=False)["n"], "kid": "no-e"}]},
    {"keys": [{"kty": "EC", "crv": "P-256", "x": EC_KEY.as_dict(private=False)["x"], "kid": "no-y"}]},
    {"keys": [{"kty": "EC", "crv": "P-256", "x": 5, "y": 6}]},
    {"keys": [{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"}]},
    {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!"}]},
    {"keys": [{"kty": "RSA", "n": "!!!", "e": "AQAB"}]},
    {"keys": [{"kty": "RSA", "n": 12345, "e": "AQAB"}]},
    {"keys": [{"kty": "oct", "k": b64url(b"k" * 32)}]},
    {"keys": [{"kty": "unknown"}]},
    {"keys": [{"n": "AQAB"}]},
    {"keys": [dict(EC_KEY.as_dict(private=True), kid="private")]},
    {"keys": [public_jwk(EC_KEY, "enc", use="enc")]},
]


@pytest.mark.parametrize("document", BAD_DOCUMENTS)
def test_dm03_malformed_documents_are_rejected(document: Any) -> None:
    with pytest.raises(KeySourceError) as caught:
        import_public_keys(document)
    assert caught.value.message in (
        "JWKS document has no `keys` array",
        "JWKS document has no usable public keys",
    )


@pytest.mark.parametrize("document", BAD_DOCUMENTS)
async def test_dm03_malformed_refresh_keeps_last_good_keys(document: Any) -> None:
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.document = document
    clock.now = NOW + TTL + 1
    key = await keys.key_for("rsa-1", "RS256")
    await keys.settled()
    assert _same(key, RSA_KEY)
    assert loader.calls == 2
    assert _same(await keys.key_for("rsa-1", "RS256"), RSA_KEY)


async def test_first_load_failing_leaves_no_keys_and_retries_after_a_second() -> None:
    loader, clock = Loader(fail_with=KeySourceError("down")), Clock()
    keys = _key_set(loader, clock)
    await _no_key(keys, "ec-1")
    assert loader.calls == 1
    clock.now = NOW + 0.5
    await _no_key(keys, "ec-1")
    assert loader.calls == 1
    loader.fail_with = None
    clock.now = NOW + 1
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)
    assert loader.calls == 2


# --- DM-04: rotation ----------------------------------------------------------------------


async def test_dm04_rotation_new_kid_after_refetch_old_kid_gone_after_ttl() -> None:
    old = public_jwk(EC_KEY, "old", alg="ES256")
    new = public_jwk(NEW_EC_KEY, "new", alg="ES256")
    loader, clock = Loader({"keys": [old]}), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.document = {"keys": [old, new]}
    clock.now = NOW + COOLDOWN + 1
    assert _same(await keys.key_for("new", "ES256"), NEW_EC_KEY)
    assert loader.calls == 2
    loader.document = {"keys": [new]}
    await keys.key_for("old", "ES256")  # still cached until the TTL passes
    clock.now = NOW + COOLDOWN + 1 + TTL + 1
    await keys.key_for("old", "ES256")  # stale: still served while the refresh runs behind
    await keys.settled()
    assert loader.calls == 3
    await _no_key(keys, "old")
    await keys.key_for("new", "ES256")


# --- what import keeps (TV-18) ------------------------------------------------------------


def test_import_keeps_usable_keys_by_kid_and_kidless() -> None:
    document = standard_jwks()
    document["keys"].append(public_jwk(NEW_EC_KEY, None))
    by_kid, anonymous = import_public_keys(document)
    assert sorted(by_kid) == ["ec-1", "ed-1", "rsa-1"]
    assert isinstance(by_kid["rsa-1"], RSAKey)
    assert isinstance(by_kid["ec-1"], ECKey)
    assert isinstance(by_kid["ed-1"], OKPKey)
    assert [k.thumbprint() for k in anonymous] == [NEW_EC_KEY.thumbprint()]


def test_import_drops_unusable_keys_among_good_ones() -> None:
    weak, _ = weak_rsa_jwk_and_signer(1024)
    weak_2047, _ = weak_rsa_jwk_and_signer(2047)
    p384, _ = p384_jwk_and_signer()
    document = {
        "keys": [
            dict(weak, kid="weak"),
            dict(weak_2047, kid="weak-2047"),
            {"kty": "oct", "k": b64url(b"k" * 32), "kid": "sym"},
            public_jwk(NEW_EC_KEY, "enc", use="enc"),
            dict(EC_KEY.as_dict(private=True), kid="private"),
            {"kty": "RSA", "kid": "broken"},
            "not a key",
            dict(p384, kid="p384"),
            public_jwk(RSA_KEY, "good"),
            {1: "non-string member", **public_jwk(ED_KEY, "odd-members")},
        ]
    }
    by_kid, anonymous = import_public_keys(document)
    # P-384 is a valid key; only compatible() keeps it away from ES256.
    assert sorted(by_kid) == ["good", "odd-members", "p384"]
    assert anonymous == []
    assert not compatible(by_kid["p384"], "ES256")


def test_import_looks_at_no_more_than_max_keys() -> None:
    filler = [{"kty": "oct", "k": "AA"}] * MAX_KEYS
    with pytest.raises(KeySourceError, match="no usable public keys"):
        import_public_keys({"keys": [*filler, public_jwk(EC_KEY, "late")]})
    by_kid, _ = import_public_keys({"keys": [*filler[:-1], public_jwk(EC_KEY, "last")]})
    assert list(by_kid) == ["last"]


def test_rsa_2048_is_the_minimum() -> None:
    ok_2048, _ = weak_rsa_jwk_and_signer(2048)
    by_kid, _ = import_public_keys({"keys": [dict(ok_2048, kid="k")]})
    assert list(by_kid) == ["k"]


@pytest.mark.parametrize(
    ("key", "alg", "ok"),
    [
        (RSA_KEY, "RS256", True),
        (RSA_KEY, "PS256", True),
        (RSA_KEY, "ES256", False),
        (RSA_KEY, "EdDSA", False),
        (RSA_KEY, "RS512", False),
        (RSA_KEY, "HS256", False),
        (RSA_KEY, "none", False),
        (EC_KEY, "ES256", True),
        (EC_KEY, "RS256", False),
        (EC_KEY, "EdDSA", False),
        (ECKey.generate_key("P-384"), "ES256", False),
        (ECKey.generate_key("secp256k1"), "ES256", False),
        (ED_KEY, "EdDSA", True),
        (ED_KEY, "ES256", False),
        (OKPKey.generate_key("Ed448"), "EdDSA", True),
        (OKPKey.generate_key("X25519"), "EdDSA", False),
    ],
)
def test_compatible_key_type_fixes_the_algorithm(key: Any, alg: str, ok: bool) -> None:
    assert compatible(key, alg) is ok


@pytest.mark.parametrize(
    ("declared", "alg", "ok"), [("RS256", "RS256", True), ("RS256", "PS256", False), ("PS256", "PS256", True)]
)
def test_compatible_honours_the_jwk_alg(declared: str, alg: str, ok: bool) -> None:
    by_kid, _ = import_public_keys({"keys": [public_jwk(RSA_KEY, "k", alg=declared)]})
    assert compatible(by_kid["k"], alg) is ok


async def test_warming_a_set_without_keys_is_retried_once_a_second() -> None:
    # At start-up an IdP may be down: keys are tried again a second later, not a cooldown later.
    loader, clock = Loader(fail_with=KeySourceError("down")), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    await keys.warm()
    assert loader.calls == 1
    clock.now = NOW + 1.5
    loader.fail_with = None
    await keys.warm()
    assert loader.calls == 2
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)


@pytest.mark.parametrize("n", [12345, None, ["AQAB"], {"n": "AQAB"}, "\u00e9" * 342, "!"])
def test_an_rsa_modulus_that_is_not_base64url_text_drops_the_key(n: Any) -> None:
    # Hostile JWKS content: the key is unusable, the document is judged on its other keys.
    document = {"keys": [{"kty": "RSA", "kid": "bad", "n": n, "e": "AQAB"}, public_jwk(EC_KEY, "ok")]}
    by_kid, anonymous = import_public_keys(document)
    assert (list(by_kid), anonymous) == (["ok"], [])


@pytest.mark.parametrize(("bits", "usable"), [(2040, False), (2048, True), (2056, True), (2096, True)])
def test_rsa_moduli_of_every_length_from_2048_bits_are_usable(bits: int, usable: bool) -> None:
    # 2096 bits is 262 bytes, 350 base64url characters: the modulus needs its padding put back.
    jwk, _ = weak_rsa_jwk_and_signer(bits)
    document = {"keys": [dict(jwk, kid="rsa"), public_jwk(EC_KEY, "ec")]}
    by_kid, _ = import_public_keys(document)
    assert ("rsa" in by_kid) is usable


async def test_close_stops_a_refresh_in_flight_and_keeps_the_keys() -> None:
    # Shutdown: a background refresh must not outlive the HTTP client it fetches with.
    gate = Gate()
    loader, clock = Loader(), Clock()
    keys = _key_set(loader, clock)
    await keys.warm()
    loader.gate = gate
    clock.now = NOW + TTL + 1
    await keys.key_for("ec-1", "ES256")
    await asyncio.wait_for(gate.started.wait(), 5)
    await asyncio.wait_for(keys.close(), 5)
    await asyncio.wait_for(keys.settled(), 5)  # nothing in flight any more
    assert _same(await keys.key_for("ec-1", "ES256"), EC_KEY)
