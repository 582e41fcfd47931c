"""Sealed session ids: the session era's `Mcp-Session-Id`, made stateless and bound to a user.

The id a client sees is an AEAD box (AES-256-GCM) holding the upstream's session id, a
digest of the subject that created it and the time it was issued, with the server name as
associated data. Any replica holding the key can open it, so no session table is shared;
and since the subject is inside, a stolen id is refused with another user's token (MCP
security best practices, "Session Hijacking": sessions never authenticate).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import re
import struct
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..cache import BoundedCache
from ..errors import RequestRejected

__all__ = ["SessionSealer", "UnsealedSession", "open_box", "subject_digest"]

_VERSION: Final = b"\x01"
_NONCE_BYTES: Final = 12
_HEADER = struct.Struct(">Q16s")  # issued-at seconds, subject digest
MAX_SEALED_CHARS: Final = 1024
MAX_UPSTREAM_ID_CHARS: Final = 256
OPENED_CACHE_SIZE: Final = 4096
# Transports §Session Management: visible ASCII only. `\Z`, not `$`, which also accepts a final "\n".
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+\Z")


@functools.lru_cache(maxsize=4096)  # the same callers, request after request
def subject_digest(issuer: str, subject: str) -> bytes:
    return hashlib.sha256(f"{issuer}\x00{subject}".encode()).digest()[:16]


class UnsealedSession(NamedTuple):
    upstream_id: str
    subject: bytes
    issued_at: int


class SessionSealer:
    """Seals and opens session ids with one 32-byte key shared by all replicas; ids sealed
    with a `previous` key (a rotation in progress) still open."""

    def __init__(self, key: bytes, *, ttl_seconds: int, previous: tuple[bytes, ...] = ()) -> None:
        if len(key) != 32 or any(len(old) != 32 for old in previous):
            raise ValueError("session key must be 32 bytes")
        self._aead = AESGCM(key)
        self._openers = (self._aead, *(AESGCM(old) for old in previous))
        self._ttl = ttl_seconds
        # Ids opened before, by (sealed id, server): a client sends its id on every request, and
        # decrypting gives the same answer each time. Only authentic ids get here; the
        # subject and expiry checks run on every request all the same.
        self._opened: BoundedCache[tuple[str, str], UnsealedSession] = BoundedCache(OPENED_CACHE_SIZE)

    @staticmethod
    def decode_key(text: str) -> bytes:
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise ValueError(
                "the session key must be 32 random bytes, base64-encoded (openssl rand -base64 32)"
            )
        return key

    def seal(self, upstream_id: str, subject: bytes, server: str, now: float) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        plain = _HEADER.pack(int(now), subject) + upstream_id.encode("ascii")
        box = self._aead.encrypt(nonce, plain, server.encode())
        return base64.urlsafe_b64encode(_VERSION + nonce + box).rstrip(b"=").decode("ascii")

    def unseal(self, sealed: str, subject: bytes, server: str, now: float) -> UnsealedSession:
        """Open a client's session id; 400 if malformed, 404 if unknown, expired or not theirs."""
        opened = self._opened.get((sealed, server))  # ids opened before were well-formed
        if opened is None:
            if not sealed or len(sealed) > MAX_SEALED_CHARS or not _VISIBLE_ASCII.match(sealed):
                raise RequestRejected("Mcp-Session-Id is malformed", status=400)
            opened = self._open(sealed, server)
            if opened is not None:
                self._opened.put((sealed, server), opened)
        if opened is None or opened.subject != subject or now - opened.issued_at > self._ttl:
            # One answer for all three: a prober learns nothing about other users' sessions.
            raise RequestRejected("Session not found", status=404)
        return opened

    def _open(self, sealed: str, server: str) -> UnsealedSession | None:
        if not _B64URL.match(sealed):
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        except binascii.Error:
            return None  # a length of 4n+1 characters: no byte string encodes to it
        if len(raw) < 1 + _NONCE_BYTES + _HEADER.size + 16 or raw[:1] != _VERSION:
            return None
        plain = open_box(self._openers, raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :], server.encode())
        if plain is None:
            return None
        issued_at, subject = _HEADER.unpack_from(plain)
        return UnsealedSession(plain[_HEADER.size :].decode("ascii"), subject, issued_at)


def open_box(openers: tuple[AESGCM, ...], nonce: bytes, box: bytes, associated: bytes) -> bytes | None:
    """The plaintext under the first key that opens the box; None when none does."""
    for aead in openers:
        try:
            return aead.decrypt(nonce, box, associated)
        except InvalidTag:
            continue
    return None


def valid_upstream_session_id(value: str) -> bool:
    return 0 < len(value) <= MAX_UPSTREAM_ID_CHARS and bool(_VISIBLE_ASCII.match(value))
