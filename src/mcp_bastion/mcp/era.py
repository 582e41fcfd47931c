"""Protocol eras and the header rules of Streamable HTTP.

Session era (2025-03-26 … 2025-11-25): `initialize`, `Mcp-Session-Id`, GET stream, DELETE.
Stateless era (2026-07-28): every POST carries `MCP-Protocol-Version`, `Mcp-Method` and,
for named methods, `Mcp-Name`; an intermediary that decides on the body MUST reject a
header that disagrees with it (streamable-http §Server Validation), which is what lets
us authorize on the body while load balancers route on the headers.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Final, Literal, NoReturn

from ..errors import ProtocolError
from .calls import NAMED_METHODS
from .jsonrpc import Message

__all__ = [
    "HEADER_MISMATCH",
    "KNOWN_VERSIONS",
    "MODERN_VERSIONS",
    "UNSUPPORTED_VERSION",
    "Era",
    "check_modern_headers",
    "decode_header_value",
    "era_of",
]

HEADER_MISMATCH: Final = -32020
UNSUPPORTED_VERSION: Final = -32022
MODERN_VERSIONS: Final = ("2026-07-28",)
LEGACY_VERSIONS: Final = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
KNOWN_VERSIONS: Final = MODERN_VERSIONS + LEGACY_VERSIONS
META_VERSION: Final = "io.modelcontextprotocol/protocolVersion"
_SENTINEL_HEAD, _SENTINEL_TAIL = "=?base64?", "?="
_PLAIN_VALUE = re.compile(r"^[\x20-\x7e\t]*\Z")


@dataclass(frozen=True, slots=True)
class Era:
    name: Literal["legacy", "modern"]
    version: str  # the header's value, or "2025-03-26" when absent (transports §Protocol Version Header)

    @property
    def allows_batch(self) -> bool:
        return self.version == "2025-03-26"


def era_of(version_header: str | None) -> Era:
    """The era a request's `MCP-Protocol-Version` header selects; -32022 when unknown."""
    era = _ERAS.get(version_header)
    if era is not None:
        return era
    raise ProtocolError(
        "Unsupported protocol version",
        code=UNSUPPORTED_VERSION,
        # Only the header-negotiated (modern) versions: legacy versions are negotiated by
        # `initialize`, and a client retrying with one of these must find it in the upstream's
        # server/discover `supportedVersions` too (conformance sep-2575).
        data={"supported": list(MODERN_VERSIONS), "requested": str(version_header)[:64]},
    )


_ERAS: Final[dict[str | None, Era]] = {
    None: Era("legacy", "2025-03-26"),
    **{version: Era("modern", version) for version in MODERN_VERSIONS},
    **{version: Era("legacy", version) for version in LEGACY_VERSIONS},
}


def check_modern_headers(
    era: Era, message: Message, method_header: str | None, name_header: str | None
) -> None:
    """Reject a message whose mirrored headers disagree with its body (-32020)."""
    body_version = _meta_version(message)
    if era.name == "legacy":
        if body_version in MODERN_VERSIONS:
            # A modern body without the modern header would dodge header validation entirely.
            _mismatch(message, "MCP-Protocol-Version header is required for protocol " + str(body_version))
        return
    if message.kind == "response":
        _mismatch(message, "clients must not send JSON-RPC responses in protocol " + era.version)
    if body_version != era.version:
        _mismatch(message, "MCP-Protocol-Version header does not match _meta protocolVersion")
    if method_header is None:
        if message.kind == "request":
            _mismatch(message, "Mcp-Method header is required")
    elif method_header != message.method:
        _mismatch(message, "Mcp-Method header does not match the body method")
    field = NAMED_METHODS.get(message.method)
    if field is None or message.kind != "request":
        return
    if name_header is None:
        _mismatch(message, "Mcp-Name header is required for " + message.method)
    body_value = (message.params or {}).get(field)
    if decode_header_value(name_header, message) != body_value:
        _mismatch(message, f"Mcp-Name header does not match params.{field}")


def decode_header_value(value: str, message: Message) -> str:
    """Undo the `=?base64?…?=` sentinel encoding of Mcp-Name / Mcp-Param-* values."""
    # "=?base64?=" starts with the head and ends with the tail, which overlap: a plain value.
    sentinel = len(value) >= len(_SENTINEL_HEAD) + len(_SENTINEL_TAIL)
    if not (sentinel and value.startswith(_SENTINEL_HEAD) and value.endswith(_SENTINEL_TAIL)):
        if not _PLAIN_VALUE.match(value):
            # Non-ASCII or control characters must arrive base64-encoded (value encoding rules).
            _mismatch(message, "Mcp-Name header has characters that must be base64-encoded")
        return value
    encoded = value[len(_SENTINEL_HEAD) : -len(_SENTINEL_TAIL)]
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text (latin-1 header bytes)
        _mismatch(message, "Mcp-Name header has an invalid base64 value")


def _meta_version(message: Message) -> object:
    meta = (message.params or {}).get("_meta")
    return meta.get(META_VERSION) if isinstance(meta, dict) else None


def _mismatch(message: Message, text: str) -> NoReturn:
    raise ProtocolError("Header mismatch: " + text, code=HEADER_MISMATCH, request_id=message.id)
