"""DPoP (RFC 9449): proofs that the holder of a token also holds its private key.

When an authorization server lists ``dpop_signing_alg_values_supported`` with ES256,
connect signs a proof JWT for every token request and every request to the MCP server
with one EC P-256 key, kept with the tokens (so a refreshed token stays bound to the same
key) and never sent anywhere: only its public half travels, in the proof's ``jwk`` header.
A stolen DPoP-bound token is useless without that key (§1, §7.1).

Servers may demand a nonce (§8 at the token endpoint, §9 at the resource): the answer
carries ``DPoP-Nonce``, and the request is signed again with it, once. A nonce that is not
the RFC's ``1*NQCHAR`` or is over :data:`MAX_NONCE_CHARS` is ignored, so a hostile server
can neither inject into a signed claim nor bloat every later request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

__all__ = [
    "ALGORITHM",
    "MAX_NONCE_CHARS",
    "DpopKey",
    "Prover",
    "access_token_hash",
    "build_proof",
    "proof_target",
    "valid_nonce",
]

ALGORITHM: Final = "ES256"  # the one algorithm we sign with (RFC 7518 §3.4; P-256)
PROOF_TYPE: Final = "dpop+jwt"  # RFC 9449 §4.2: explicit typing
# A nonce is an opaque server value; real ones are tens of characters. Bigger is a server
# trying to make every later request (and proof) huge.
MAX_NONCE_CHARS: Final = 512
MAX_NONCE_ENDPOINTS: Final = 16
_NONCE: Final = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+\Z")  # RFC 9449 §8.1: 1*NQCHAR


class DpopKey:
    """The client's EC P-256 key pair; its private half stays in the token store."""

    def __init__(self, key: ECKey) -> None:
        self._key = key
        self.public_jwk: dict[str, Any] = dict(key.as_dict(private=False))

    @classmethod
    def generate(cls) -> DpopKey:
        return cls(ECKey.generate_key("P-256", private=True))

    @classmethod
    def from_jwk(cls, value: object) -> DpopKey | None:
        """The stored key, or None when the stored value is not an EC P-256 private key."""
        if not isinstance(value, dict) or value.get("kty") != "EC" or value.get("crv") != "P-256":
            return None
        try:
            key = ECKey.import_key(value)
        except (JoseError, ValueError, TypeError):
            return None
        return cls(key) if key.is_private else None

    def private_jwk(self) -> dict[str, Any]:
        return dict(self._key.as_dict(private=True))

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint: what an authorization server puts in ``cnf.jkt``."""
        return str(self._key.thumbprint())

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": PROOF_TYPE, "alg": ALGORITHM, "jwk": self.public_jwk}
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        return jws.serialize_compact(header, payload, self._key, algorithms=[ALGORITHM])


def proof_target(url: str) -> str:
    """``htu``: the request URI without query and fragment (RFC 9449 §4.2)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(the ASCII access token)), unpadded (RFC 9449 §4.2)."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_nonce(value: str | None) -> str | None:
    """A server's ``DPoP-Nonce`` if it is one we will sign, else None."""
    if value is None or len(value) > MAX_NONCE_CHARS or not _NONCE.match(value):
        return None
    return value


def build_proof(
    key: DpopKey,
    method: str,
    url: str,
    *,
    now: float,
    jti: str,
    access_token: str | None = None,
    nonce: str | None = None,
) -> str:
    """One DPoP proof JWT for one HTTP request (RFC 9449 §4.2)."""
    claims: dict[str, Any] = {"jti": jti, "htm": method.upper(), "htu": proof_target(url), "iat": int(now)}
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)  # §7.1: binds the proof to the token
    if nonce is not None:
        claims["nonce"] = nonce
    return key.sign(claims)


class Prover:
    """Signs proofs with one key and remembers the last nonce each endpoint gave.

    Nonces are kept per ``htu`` (the token endpoint, the MCP endpoint), not per origin: an
    authorization server and a resource on one host never receive each other's nonce.
    """

    def __init__(
        self,
        key: DpopKey,
        *,
        clock: Callable[[], float] = time.time,
        new_jti: Callable[[], str] = lambda: secrets.token_urlsafe(18),  # 144 random bits
    ) -> None:
        self.key = key
        self._clock = clock
        self._new_jti = new_jti
        self._nonces: dict[str, str] = {}
        self.entry: tuple[str, str] | None = None  # the store entry (issuer, resource) of the key

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A fresh proof (new ``jti``, current ``iat``) with the server's latest nonce, if any."""
        return build_proof(
            self.key,
            method,
            url,
            now=self._clock(),
            jti=self._new_jti(),
            access_token=access_token,
            nonce=self._nonces.get(proof_target(url)),
        )

    def note_nonce(self, url: str, headers: Mapping[str, str]) -> bool:
        """Remember the ``DPoP-Nonce`` of a response from ``url``; whether it is a new, valid one."""
        nonce = valid_nonce(headers.get("dpop-nonce"))
        endpoint = proof_target(url)
        if nonce is None or self._nonces.get(endpoint) == nonce:
            return False
        if endpoint not in self._nonces and len(self._nonces) >= MAX_NONCE_ENDPOINTS:
            self._nonces.pop(next(iter(self._nonces)))
        self._nonces[endpoint] = nonce
        return True
