"""JSON-RPC 2.0 parsing of untrusted request bodies, with the caps an intermediary needs.

orjson is strict where CPython's json is lax (JR-06): it refuses invalid UTF-8, lone
surrogates, NaN/Infinity, a UTF-16 BOM and integers beyond 64 bits (JR-05), and it never
raises RecursionError. The depth cap is ours and cheaper than orjson's 1024.
"""

from __future__ import annotations

from typing import Any, Final, Literal, NamedTuple

import orjson

from ..errors import ProtocolError

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "Message",
    "ParsedBody",
    "error_body",
    "parse_body",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
MAX_ID_CHARS: Final = 256  # an id is a correlation handle, not a payload

Kind = Literal["request", "notification", "response"]


class Message(NamedTuple):
    kind: Kind
    id: str | int | None
    method: str  # "" for responses
    params: dict[str, Any] | None


class ParsedBody(NamedTuple):
    messages: tuple[Message, ...]
    is_batch: bool


def parse_body(body: bytes, *, max_depth: int, max_batch: int, allow_batch: bool) -> ParsedBody:
    """Parse a POST body into JSON-RPC messages or raise ProtocolError (-32700 / -32600)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError("Parse error: the body is not valid UTF-8 JSON", code=PARSE_ERROR) from None
    # Nesting cannot exceed the number of openers: two C-speed counts settle typical bodies.
    if body.count(b"{") + body.count(b"[") > max_depth and _too_deep(doc, max_depth):
        raise ProtocolError(f"Parse error: JSON nested deeper than {max_depth}", code=PARSE_ERROR)
    if isinstance(doc, list):
        if not allow_batch:
            raise ProtocolError(
                "Invalid Request: batches are not allowed in this protocol version", code=INVALID_REQUEST
            )
        if not doc:
            raise ProtocolError("Invalid Request: empty batch", code=INVALID_REQUEST)
        if len(doc) > max_batch:
            raise ProtocolError(f"Invalid Request: batch larger than {max_batch}", code=INVALID_REQUEST)
        return ParsedBody(tuple(_message(item) for item in doc), True)
    return ParsedBody((_message(doc),), False)


def _message(doc: Any) -> Message:
    if not isinstance(doc, dict):
        raise ProtocolError("Invalid Request: a message must be a JSON object", code=INVALID_REQUEST)
    raw_id = doc.get("id")
    if doc.get("jsonrpc") != "2.0":
        raise ProtocolError(
            'Invalid Request: "jsonrpc" must be "2.0"', code=INVALID_REQUEST, request_id=_safe_id(raw_id)
        )
    if "method" in doc:
        return _request(doc, raw_id)
    if "result" in doc or "error" in doc:
        # Legacy-era clients answer server requests (sampling, elicitation) with responses.
        return Message("response", _checked_id(raw_id, required=True), "", None)
    raise ProtocolError(
        "Invalid Request: neither a request nor a response", code=INVALID_REQUEST, request_id=_safe_id(raw_id)
    )


def _request(doc: dict[str, Any], raw_id: Any) -> Message:
    method = doc["method"]
    if not isinstance(method, str) or not method or len(method) > 128:
        raise ProtocolError(
            'Invalid Request: "method" must be a short string',
            code=INVALID_REQUEST,
            request_id=_safe_id(raw_id),
        )
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        # MCP params are always objects (JR-09: scalar params).
        raise ProtocolError(
            'Invalid params: "params" must be an object', code=INVALID_PARAMS, request_id=_safe_id(raw_id)
        )
    if "id" not in doc:
        return Message("notification", None, method, params)
    return Message("request", _checked_id(raw_id, required=True), method, params)


def _checked_id(raw_id: Any, *, required: bool) -> str | int:
    # MCP basic: ids are strings or integers and MUST NOT be null; bool is an int in Python.
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise ProtocolError('Invalid Request: "id" must be a string or an integer', code=INVALID_REQUEST)
    if isinstance(raw_id, str) and len(raw_id) > MAX_ID_CHARS:
        raise ProtocolError('Invalid Request: "id" is too long', code=INVALID_REQUEST)
    return raw_id


def _safe_id(raw_id: Any) -> str | int | None:
    """The id to echo in an error, only when it is itself well-formed."""
    try:
        return _checked_id(raw_id, required=False)
    except ProtocolError:
        return None


def _too_deep(doc: Any, limit: int) -> bool:
    # Iterative walk over containers only: cost follows the number of objects/arrays, not bytes.
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return False


def error_body(request_id: str | int | None, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})
