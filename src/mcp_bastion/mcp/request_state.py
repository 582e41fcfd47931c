"""Sealed `requestState`: an upstream's multi round-trip state, made safe to hand to a client.

In the 2026-07-28 era an upstream may answer `tools/call`, `resources/read` or `prompts/get`
with an `InputRequiredResult` carrying `requestState`, an opaque string the client echoes
back on its retry (basic/patterns/mrtr.mdx). The spec makes it attacker-controlled input that
servers must integrity-protect, bind to the principal, expire and bind to the originating
request; many servers will not. So the gateway does it for them: before a client sees the
state it is sealed (AES-256-GCM under a key derived from `sessions.key`, so any replica opens
it) together with the caller's subject digest and the time; the server name, method and
target are the associated data. On the retry the gateway opens it, refuses a tampered,
expired, foreign or mismatched one (-32602), and the upstream receives its own value back.

The sealed form is base64url with a prefix: no JSON escaping ever applies to it, so the
request body can carry it verbatim and the gateway swaps it for the original bytes without
re-serializing the body.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ProtocolError, UpstreamError
from .jsonrpc import INVALID_PARAMS
from .sessions import open_box

__all__ = ["MRTR_METHODS", "PREFIX", "RequestStateSealer", "bind"]

PREFIX: Final = "mcpb1."
MRTR_METHODS: Final = frozenset(
    {"tools/call", "resources/read", "prompts/get"}
)  # mrtr.mdx, "Supported Requests"
MAX_STATE_BYTES: Final = 65_536  # an upstream's state beyond this is refused, not sealed
MAX_SEALED_CHARS: Final = len(PREFIX) + (MAX_STATE_BYTES + 64) * 4 // 3 + 8
_NONCE_BYTES: Final = 12
_HEADER: Final = struct.Struct(">Q16s")  # issued-at seconds, subject digest
_B64URL: Final = re.compile(r"^[A-Za-z0-9_-]+\Z")
_INFO: Final = b"mcp-bastion requestState v1"


class RequestStateSealer:
    def __init__(self, sessions_key: bytes, *, ttl_seconds: int, previous: tuple[bytes, ...] = ()) -> None:
        # A key of its own (HKDF from the sessions key): a session id and a request state can
        # never be taken for each other, whatever their contents.
        self._aead = AESGCM(_derive(sessions_key))
        # States sealed with a previous sessions key (a rotation in progress) still open.
        self._openers = (self._aead, *(AESGCM(_derive(old)) for old in previous))
        self._ttl = ttl_seconds

    def seal(self, state: str, subject: bytes, binding: bytes, now: float) -> str:
        """`binding`: `bind(server, method, target)` of the request the state answers."""
        raw = state.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_STATE_BYTES:
            raise UpstreamError("upstream sent a requestState larger than the gateway carries")
        nonce = os.urandom(_NONCE_BYTES)
        box = self._aead.encrypt(nonce, _HEADER.pack(int(now), subject) + raw, binding)
        return PREFIX + base64.urlsafe_b64encode(nonce + box).rstrip(b"=").decode("ascii")

    def unseal(self, sealed: str, subject: bytes, binding: bytes, now: float) -> str:
        """The upstream's original state, or -32602 for anything not sealed by us for this
        caller and this request within the TTL (one message for all: a prober learns nothing)."""
        state = self._open(sealed, binding)
        if state is None or state[1] != subject or not 0 <= now - state[0] <= self._ttl:
            raise ProtocolError(
                "Invalid params: requestState is not valid for this request", code=INVALID_PARAMS
            )
        return state[2]

    def _open(self, sealed: str, binding: bytes) -> tuple[int, bytes, str] | None:
        if len(sealed) > MAX_SEALED_CHARS or not sealed.startswith(PREFIX):
            return None
        body = sealed[len(PREFIX) :]
        if not _B64URL.match(body):
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < _NONCE_BYTES + 16:
            return None
        plain = open_box(self._openers, raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], binding)
        if plain is None:
            return None
        issued_at, subject = _HEADER.unpack_from(plain)
        return issued_at, subject, plain[_HEADER.size :].decode("utf-8", "surrogatepass")


def _derive(sessions_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(sessions_key)


def bind(server: str, method: str, target: str | None) -> bytes:
    """The associated data: which server, method and target the state belongs to."""
    return "\x00".join((server, method, target or "")).encode("utf-8", "surrogatepass")
