"""DPoP proofs (RFC 9449 §4.2): header, claims, freshness, the token hash, nonces."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey

from mcp_bastion.connect.dpop import (
    MAX_NONCE_CHARS,
    DpopKey,
    Prover,
    access_token_hash,
    build_proof,
    proof_target,
    valid_nonce,
)
from mcp_bastion.connect.tokens import DPOP, StoredTokens, TokenStore

ISSUER = "https://idp.example.com"
RESOURCE = "https://gw.example.com/notes/mcp"


def _verified(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, after checking the signature with the key the header carries."""
    header = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
    key = ECKey.import_key(header["jwk"])
    token = jws.deserialize_compact(proof, key, algorithms=["ES256"])
    return dict(token.headers()), json.loads(token.payload)


def test_a_proof_is_an_es256_dpop_jwt_signed_by_the_public_key_it_carries() -> None:
    key = DpopKey.generate()
    proof = build_proof(key, "post", "https://as.example.com/token", now=1700000000.7, jti="j1")
    header, claims = _verified(proof)
    assert header["typ"] == "dpop+jwt"  # §4.2: explicit typing
    assert header["alg"] == "ES256"
    assert "d" not in header["jwk"]  # the private key never leaves the store
    assert ECKey.import_key(header["jwk"]).thumbprint() == key.thumbprint()
    assert claims == {"jti": "j1", "htm": "POST", "htu": "https://as.example.com/token", "iat": 1700000000}


def test_htu_carries_neither_query_nor_fragment() -> None:
    # §4.2: htu is the request URI "without query and fragment parts".
    proof = build_proof(DpopKey.generate(), "GET", "https://gw.example.com/mcp?x=1&y=2#frag", now=0, jti="j")
    assert _verified(proof)[1]["htu"] == "https://gw.example.com/mcp"
    assert proof_target("https://gw.example.com/a/b?q") == "https://gw.example.com/a/b"


def test_ath_is_the_unpadded_base64url_sha256_of_the_token() -> None:
    token = "eyJhbGciOi.the-access-token"
    expected = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    assert access_token_hash(token) == expected
    assert "=" not in expected
    proof = build_proof(DpopKey.generate(), "POST", RESOURCE, now=0, jti="j", access_token=token)
    assert _verified(proof)[1]["ath"] == expected
    # A token request's proof has no token to bind.
    assert "ath" not in _verified(build_proof(DpopKey.generate(), "POST", RESOURCE, now=0, jti="j"))[1]


def test_every_proof_has_a_fresh_jti_and_the_current_iat() -> None:
    # §11.1: a server rejects a replayed jti; each request needs its own proof.
    clock = iter([100.0, 200.0])
    prover = Prover(DpopKey.generate(), clock=lambda: next(clock))
    first, second = (_verified(prover.proof("POST", RESOURCE, "t"))[1] for _ in range(2))
    assert first["jti"] != second["jti"]
    assert len(first["jti"]) >= 22  # at least 128 random bits
    assert (first["iat"], second["iat"]) == (100, 200)


def test_the_servers_nonce_goes_into_the_next_proof_for_that_endpoint_only() -> None:
    prover = Prover(DpopKey.generate())
    assert "nonce" not in _verified(prover.proof("POST", RESOURCE))[1]
    assert prover.note_nonce(RESOURCE + "?ignored", {"dpop-nonce": "n-1"})
    assert not prover.note_nonce(RESOURCE, {"dpop-nonce": "n-1"})  # not new: no retry
    assert _verified(prover.proof("POST", RESOURCE, "t"))[1]["nonce"] == "n-1"
    # The authorization server on the same host never gets the resource's nonce.
    assert "nonce" not in _verified(prover.proof("POST", "https://gw.example.com/token"))[1]


def test_a_garbage_or_huge_nonce_is_never_signed() -> None:
    # RFC 9449 §8.1: nonce = 1*NQCHAR. A quote, backslash, space, control or non-ASCII
    # character is not one; over MAX_NONCE_CHARS is a server bloating every later request.
    for bad in ['a"b', "a\\b", "a b", "a\x00b", "ñ", "", "x" * (MAX_NONCE_CHARS + 1)]:
        assert valid_nonce(bad) is None, bad
        prover = Prover(DpopKey.generate())
        assert not prover.note_nonce(RESOURCE, {"dpop-nonce": bad})
        assert "nonce" not in _verified(prover.proof("POST", RESOURCE))[1]
    assert valid_nonce("x" * MAX_NONCE_CHARS) is not None


def test_a_stored_key_must_be_an_ec_p256_private_key() -> None:
    key = DpopKey.generate()
    restored = DpopKey.from_jwk(key.private_jwk())
    assert restored is not None
    assert restored.thumbprint() == key.thumbprint()
    assert DpopKey.from_jwk(key.public_jwk) is None  # cannot sign
    rsa_like = {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
    for bad in (
        None,
        "text",
        {},
        rsa_like,
        {**key.private_jwk(), "crv": "P-384"},
        {**key.private_jwk(), "x": "!"},
    ):
        assert DpopKey.from_jwk(bad) is None


def test_the_key_is_kept_with_the_tokens_in_the_0600_store(tmp_path: Path) -> None:
    # The same key across runs: a refreshed token stays bound to the key of the first one.
    store = TokenStore(tmp_path / "tokens.json")
    key = DpopKey.generate()
    store.save(ISSUER, RESOURCE, tokens=StoredTokens("at", token_type=DPOP), dpop_key=key)
    again = TokenStore(tmp_path / "tokens.json")
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600
    stored = again.dpop_key(ISSUER, RESOURCE)
    assert stored is not None
    assert stored.thumbprint() == key.thumbprint()
    assert again.tokens(ISSUER, RESOURCE) == StoredTokens("at", token_type=DPOP)
    assert again.dpop_key(ISSUER, "https://gw.example.com/other/mcp") is None  # one key per entry
