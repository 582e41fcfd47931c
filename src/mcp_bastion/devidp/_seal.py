"""Sealing a value with the secret that names it, so a store holds nothing usable.

A waiting sign-in is stored under the digest of its ``state`` and sealed (AES-256-GCM) with a
key derived from the ``state`` itself; an IdP access token passed through (the facade's
``issue: idp_when_audience_fits``) is sealed with the consent's CSRF token and then with the
code. Whoever reads the store (a Redis dump, a replica's operator) has neither the key nor
the PKCE verifier or the token inside. The secrets sealed with are
256-bit random values from the CSPRNG, so one SHA-256 (domain-separated) is a sound KDF.
"""

from __future__ import annotations

import hashlib
import os

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._login import UpstreamToken

_NONCE_BYTES = 12


def _key(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"mcp-bastion facade seal\0{purpose}\0{secret}".encode()).digest()


def seal(secret: str, purpose: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(_key(secret, purpose)).encrypt(nonce, plaintext, purpose.encode())


def unseal(secret: str, purpose: str, sealed: bytes) -> bytes | None:
    """The plaintext, or ``None`` if ``sealed`` was not sealed with this secret (or was altered)."""
    if len(sealed) <= _NONCE_BYTES:
        return None
    try:
        return AESGCM(_key(secret, purpose)).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], purpose.encode()
        )
    except InvalidTag:
        return None


def seal_upstream(secret: str, token: UpstreamToken) -> bytes:
    document = {"t": token.access_token, "s": token.scopes, "e": token.expires_at}
    return seal(secret, _UPSTREAM, orjson.dumps(document))


def unseal_upstream(secret: str, sealed: bytes) -> UpstreamToken | None:
    opened = unseal(secret, _UPSTREAM, sealed)
    if opened is None:
        return None
    document = orjson.loads(opened)
    scopes = document["s"]
    return UpstreamToken(document["t"], None if scopes is None else tuple(scopes), float(document["e"]))


_UPSTREAM = "upstream access token"
