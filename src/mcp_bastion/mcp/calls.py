"""From a JSON-RPC message to what it asks for: the method and the named target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import ProtocolError
from .jsonrpc import INVALID_PARAMS, Message

__all__ = ["NAMED_METHODS", "Call", "call_of"]

# Methods whose target is named in params (and, in 2026-07-28, mirrored in Mcp-Name).
NAMED_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
MAX_NAME_CHARS = 4096


class Call(NamedTuple):
    """One message's intent: `method` ("" for a client's JSON-RPC response), its target, and
    its params as parsed (for policies that look at arguments; never forwarded from here)."""

    method: str
    name: str | None
    id: str | int | None
    params: Mapping[str, Any] | None = None


def call_of(message: Message) -> Call:
    field = NAMED_METHODS.get(message.method)
    if field is None:
        return Call(message.method, None, message.id, message.params)
    value = (message.params or {}).get(field)
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise ProtocolError(
            f'Invalid params: {message.method} needs a non-empty string "{field}"',
            code=INVALID_PARAMS,
            request_id=message.id,
        )
    return Call(message.method, value, message.id, message.params)
