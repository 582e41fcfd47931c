"""Real keys and hand-built JWS tokens for the verifier tests.

Tokens are assembled byte by byte (header, payload, signature) so a test can put anything in
a header that a well-behaved library would refuse to produce: `alg: none`, `crit`, `b64`,
embedded keys, integer `kid`s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from mcp_bastion.auth.keys import PublicKey, RemoteKeySet
from mcp_bastion.config.model import IdentityProviderConfig

ISSUER = "https://idp.example"
RESOURCE = "https://gw.example/demo/mcp"
NOW = 1_700_000_000.0

RSA_KEY = RSAKey.generate_key(2048)
EC_KEY = ECKey.generate_key("P-256")
ED_KEY = OKPKey.generate_key("Ed25519")
ATTACKER_EC_KEY = ECKey.generate_key("P-256")
KEY_OF_ALG: dict[str, PublicKey] = {"RS256": RSA_KEY, "PS256": RSA_KEY, "ES256": EC_KEY, "EdDSA": ED_KEY}
KID_OF_ALG = {"RS256": "rsa-1", "PS256": "rsa-1", "ES256": "ec-1", "EdDSA": "ed-1"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_int(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(key: PublicKey, kid: str | None, **extra: Any) -> dict[str, Any]:
    jwk = dict(key.as_dict(private=False))
    if kid is not None:
        jwk["kid"] = kid
    jwk.update(extra)
    return jwk


def standard_jwks() -> dict[str, Any]:
    """One key per algorithm family, each declaring its `alg` as IdPs usually do."""
    return {
        "keys": [
            public_jwk(RSA_KEY, "rsa-1", use="sig"),
            public_jwk(EC_KEY, "ec-1", use="sig", alg="ES256"),
            public_jwk(ED_KEY, "ed-1", use="sig", alg="EdDSA"),
        ]
    }


def sign(alg: str, key: Any, signing_input: bytes) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # EdDSA is "deprecated" in joserfc 1.8
        return JWSRegistry(algorithms=[alg]).get_alg(alg).sign(signing_input, key)


def claims(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "jti": "jti-1",
        "client_id": "client-1",
        "scope": "tools.read tools.write",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def header(alg: str = "ES256", /, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": KID_OF_ALG.get(alg, "ec-1")}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def token(
    head: dict[str, Any] | None = None,
    body: dict[str, Any] | bytes | None = None,
    *,
    key: Any = None,
    signature: bytes | None = None,
) -> str:
    """A compact JWS. `...` as a claim or header value removes that member."""
    head = header() if head is None else head
    payload = orjson.dumps(claims() if body is None else body) if not isinstance(body, bytes) else body
    signing_input = f"{b64url(orjson.dumps(head))}.{b64url(payload)}"
    if signature is None:
        alg = head["alg"]
        signature = sign(alg, key if key is not None else KEY_OF_ALG[alg], signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def hmac_token(secret: bytes, alg: str = "HS256", **head: Any) -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    h = header(alg, **{"kid": "rsa-1", **head})
    signing_input = f"{b64url(orjson.dumps(h))}.{b64url(orjson.dumps(claims()))}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), digest).digest())}"


def weak_rsa_jwk_and_signer(bits: int = 1024) -> tuple[dict[str, Any], Callable[[bytes], bytes]]:
    """An RSA key below the minimum, built with cryptography (joserfc refuses to make one quietly)."""
    private = rsa.generate_private_key(65537, bits)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64url_int(numbers.n), "e": b64url_int(numbers.e)}
    return jwk, lambda data: private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def p384_jwk_and_signer() -> tuple[dict[str, Any], Callable[[bytes], bytes]]:
    private = ec.generate_private_key(ec.SECP384R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-384",
        "x": b64url(numbers.x.to_bytes(48, "big")),
        "y": b64url(numbers.y.to_bytes(48, "big")),
    }

    def signer(data: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(48, "big") + s.to_bytes(48, "big")

    return jwk, signer


def signed_with(
    signer: Callable[[bytes], bytes], head: dict[str, Any], body: dict[str, Any] | None = None
) -> str:
    signing_input = f"{b64url(orjson.dumps(head))}.{b64url(orjson.dumps(body or claims()))}"
    return f"{signing_input}.{b64url(signer(signing_input.encode()))}"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Loader:
    """An in-process JWKS source: counts loads, can fail, can be swapped."""

    document: Any = field(default_factory=standard_jwks)
    calls: int = 0
    fail_with: Exception | None = None
    gate: Callable[[], Awaitable[None]] | None = None

    async def __call__(self) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate()
        if self.fail_with is not None:
            raise self.fail_with
        return self.document


def idp_config(**overrides: Any) -> IdentityProviderConfig:
    values: dict[str, Any] = {
        "name": "idp",
        "issuer": ISSUER,
        "discovery": False,
        "jwks_uri": f"{ISSUER}/jwks",
    }
    values.update(overrides)
    return IdentityProviderConfig(**values)


def key_set(loader: Loader, clock: Clock, *, ttl: float = 300, cooldown: float = 30) -> RemoteKeySet:
    return RemoteKeySet(loader, clock=clock, ttl=ttl, cooldown=cooldown)
