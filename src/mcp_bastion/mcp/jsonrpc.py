"""JSON-RPC 2.0 parsing of untrusted request bodies, with the caps an intermediary needs.

orjson is strict where CPython's json is lax (JR-06): it refuses invalid UTF-8, lone
surrogates, NaN/Infinity, a UTF-16 BOM and integers beyond 64 bits (JR-05), and it never
raises RecursionError. The depth cap is ours and cheaper than orjson's 1024.

The gateway authorizes what it parsed and forwards the bytes it received, so every parser
downstream must read the same message from them. Three ways to make two parsers disagree are
refused rather than re-serialized (re-encoding would rewrite numbers and strings the upstream
may read more precisely than a double):

- a member JSON-RPC 2.0 does not define (-32600): `"Method"` beside `"method"`, or "params"
  ending in a long s (U+017F, which folds to "s"), is what an upstream whose decoder folds
  case (the Go SDK before CVE-2026-27896) reads as the real one. A request or notification has
  exactly jsonrpc, method, params? and id (requests); a client response jsonrpc, id, and one
  of result or error. A subset test on the dict's keys.
- a params member that folds to one the gateway reads (`"Name"`, `"URI"`, `"_Meta"`, …) beside
  or instead of it (-32602): the same decoders fill a struct's `Name` from it.
- a repeated member name the gateway reads (-32600): orjson keeps the last of
  `{"method":"a","method":"b"}`, parsers that keep the first exist, and `"name"` repeated in
  tools/call params decides which tool is authorized. The rule covers those names
  (`READ_NAMES`) in every object of the body, not only where they are read, so that a cheap
  pre-check can rule it out: unless a name's quoted form occurs twice in the bytes, or the
  bytes hold a `\\u` or `\\/` escape (the only ways to spell these names differently), no
  object can repeat it; and a body that is byte for byte orjson's own compact writing of what
  it read (what the SDKs send) cannot have lost a member. Otherwise CPython's json re-reads
  the body with a hook that sees each object's members in order (a few microseconds for a
  typical call).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Literal, NamedTuple, NoReturn

import orjson

from ..errors import ProtocolError

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "READ_NAMES",
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

_REQUEST_MEMBERS: Final = frozenset(("jsonrpc", "id", "method", "params"))
_RESPONSE_MEMBERS: Final = frozenset(("jsonrpc", "id", "result", "error"))
# The params members the gateway decides on (mcp/calls.py NAMED_METHODS, mcp/era.py _meta).
# requestState: the gateway swaps its sealed form for the upstream's own (mcp/request_state.py).
_READ_PARAMS: Final = frozenset(("name", "uri", "_meta", "requestState"))
_READ_PARAMS_FOLDED: Final = frozenset(name.casefold() for name in _READ_PARAMS)
_PROTOCOL_VERSION_KEY: Final = "io.modelcontextprotocol/protocolVersion"
# Every member name the gateway reads in a client's body; none may be repeated in any object.
READ_NAMES: Final = _REQUEST_MEMBERS | _RESPONSE_MEMBERS | _READ_PARAMS | {_PROTOCOL_VERSION_KEY}
_QUOTED_NAMES: Final = tuple(b'"' + name.encode() + b'"' for name in sorted(READ_NAMES))
# orjson's writer peaks at ~50 bytes per output byte on a hostile body (a megabyte of `[],`):
# the byte-for-byte shortcut is for ordinary calls; larger bodies go by counting.
_SHORTCUT_MAX_BYTES: Final = 65_536

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
    if body.count(b"{") + body.count(b"[") > max_depth and nested_deeper(body, max_depth):
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
    if _may_repeat_a_name(body, doc):
        _refuse_repeated_names(body, doc)
    if isinstance(doc, list):
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
        if not doc.keys() <= _REQUEST_MEMBERS:
            _invalid("a request may carry only jsonrpc, id, method and params", raw_id)
        return _request(doc, raw_id)
    if "result" in doc or "error" in doc:
        # Legacy-era clients answer server requests (sampling, elicitation) with responses.
        if not doc.keys() <= _RESPONSE_MEMBERS or ("result" in doc and "error" in doc):
            _invalid("a response carries jsonrpc, id, and either result or error", raw_id)
        return Message("response", _checked_id(raw_id), "", None)
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
    if params and not params.keys() <= _READ_PARAMS and _folds_to_a_read_param(params):
        raise ProtocolError(
            'Invalid params: a member differs from "name", "uri", "_meta" or "requestState" only in case',
            code=INVALID_PARAMS,
            request_id=_safe_id(raw_id),
        )
    if "id" not in doc:
        return Message("notification", None, method, params)
    return Message("request", _checked_id(raw_id), method, params)


def _invalid(what: str, raw_id: Any) -> NoReturn:
    raise ProtocolError("Invalid Request: " + what, code=INVALID_REQUEST, request_id=_safe_id(raw_id))


def _folds_to_a_read_param(params: dict[str, Any]) -> bool:
    # casefold() maps U+017F to "s" and U+212A (Kelvin) to "k", as Go's case-insensitive
    # matching does; it folds more than Go does, which can only refuse more.
    return any(key not in _READ_PARAMS and key.casefold() in _READ_PARAMS_FOLDED for key in params)


def _may_repeat_a_name(body: bytes, doc: Any) -> bool:
    """False only when no object in ``body`` can repeat a name of READ_NAMES.

    A body that is exactly orjson's compact writing of what it read (as the SDKs' clients send
    them) holds nothing orjson dropped. Otherwise: without a `\\u` or `\\/` escape, a member
    named N appears in the bytes as `"N"` verbatim (none of these names holds a quote, a
    backslash or a control character), so a repeated N means at least two occurrences.
    Counting also finds N as a string value: that only costs the careful check.
    """
    if len(body) <= _SHORTCUT_MAX_BYTES:
        try:
            if orjson.dumps(doc) == body:
                return False
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (255): no shortcut
            pass
    if b"\\u" in body or b"\\/" in body:
        return True
    return any(body.count(quoted) > 1 for quoted in _QUOTED_NAMES)


def _refuse_repeated_names(body: bytes, doc: Any) -> None:
    """Raise -32600 when any object of ``body`` repeats a name of READ_NAMES."""
    try:
        json.loads(body, object_pairs_hook=_check_members)
    except _Repeated as repeated:
        # The id is echoed only when it is not itself the repeated name: which one would it be?
        keep_id = isinstance(doc, dict) and repeated.name != "id"
        raise ProtocolError(
            f'Invalid Request: the member "{repeated.name}" appears twice in one object',
            code=INVALID_REQUEST,
            request_id=_safe_id(doc.get("id")) if keep_id else None,
        ) from None
    except ValueError:
        # CPython's json refusing what orjson read would be a third reading: fail closed.
        raise ProtocolError("Parse error: the body is not valid UTF-8 JSON", code=PARSE_ERROR) from None


class _Repeated(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _check_members(pairs: list[tuple[str, Any]]) -> None:
    # Returns None: this second reading only checks, so it builds no second set of dicts.
    if len(pairs) > 1:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen and name in READ_NAMES:
                raise _Repeated(name)
            seen.add(name)


def _checked_id(raw_id: Any) -> str | int:
    # MCP basic: ids are strings or integers and MUST NOT be null; bool is an int in Python.
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise ProtocolError('Invalid Request: "id" must be a string or an integer', code=INVALID_REQUEST)
    if isinstance(raw_id, str) and len(raw_id) > MAX_ID_CHARS:
        raise ProtocolError('Invalid Request: "id" is too long', code=INVALID_REQUEST)
    return raw_id


def _safe_id(raw_id: Any) -> str | int | None:
    """The id to echo in an error, only when it is itself well-formed."""
    try:
        return _checked_id(raw_id)
    except ProtocolError:
        return None


# Strings of a body orjson accepted (so well formed): their brackets are not structure.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_ONE_KIND: Final = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_RUNS: Final = re.compile(rb"\[+|\]+")
_PASSES: Final = 8


def nested_deeper(body: bytes, limit: int) -> bool:
    """Whether a valid JSON body nests deeper than `limit`, read from its bytes. Walking the
    parsed document costs per container (a 1 MiB `[[],[],…]` is 350k of them, ~0.5 s
    interpreted); this costs a few passes at C speed: strings removed, both bracket kinds made
    one, then each `replace` removes every innermost pair (one level everywhere), and what
    survives is measured run by run (~30 ms for the worst 1 MiB shapes found)."""
    brackets = _STRING.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKETS)
    passes = min(_PASSES, limit)
    for _ in range(passes):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")  # non-overlapping: one level per pass
    depth = passes  # each container left had `passes` levels below it removed
    for run in _RUNS.findall(brackets):
        if run[0] == 0x5B:  # "["
            depth += len(run)
            if depth > limit:
                return True
        else:
            depth -= len(run)
    return False


def error_body(request_id: str | int | None, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})
