"""Properties of the JSON-RPC / MCP parser: any bytes give messages or a ProtocolError, never more.

`parse_body`, `call_of`, `era_of`, `check_modern_headers` and `decode_header_value` read what a
client sends. For every input they either return a well-formed result or raise the documented
ProtocolError with a JSON-RPC code; the error's id is one the client sent, or null; and the
caps (depth, batch size, id, method and name lengths) always hold.
"""

from __future__ import annotations

import base64
import random
import tracemalloc
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_bastion.errors import ProtocolError
from mcp_bastion.mcp.calls import MAX_NAME_CHARS, NAMED_METHODS, Call, call_of
from mcp_bastion.mcp.era import (
    HEADER_MISMATCH,
    KNOWN_VERSIONS,
    META_VERSION,
    MODERN_VERSIONS,
    UNSUPPORTED_VERSION,
    check_modern_headers,
    decode_header_value,
    era_of,
)
from mcp_bastion.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_ID_CHARS,
    PARSE_ERROR,
    Message,
    ParsedBody,
    error_body,
    parse_body,
)

from .strategies import (
    budget,
    hostile_text,
    json_bytes,
    json_ish_bytes,
    json_values,
    latin1_text,
    outcome,
)

DEPTH, BATCH = 64, 64  # the LimitsConfig defaults
PARSE_CODES = {PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS}

# --- strategies -------------------------------------------------------------------------------

ids = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=MAX_ID_CHARS).filter(bool)
)
any_ids = st.one_of(ids, json_values(3), st.text(min_size=MAX_ID_CHARS + 1, max_size=MAX_ID_CHARS + 3))
methods = st.one_of(
    st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "resources/read", "prompts/get"]),
    st.text(min_size=1, max_size=128),
)
names = st.text(min_size=1, max_size=64)


@st.composite
def message_docs(draw: st.DrawFn) -> Any:
    """Objects shaped like JSON-RPC messages, each member possibly missing or of the wrong type."""
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        doc["jsonrpc"] = draw(st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2.0, None]))
    if draw(st.booleans()):
        doc["id"] = draw(any_ids)
    kind = draw(st.sampled_from(["request", "request", "response", "error", "neither"]))
    if kind == "request":
        doc["method"] = draw(st.one_of(methods, json_values(2), st.text(min_size=129, max_size=130)))
        if draw(st.booleans()):
            params: dict[str, Any] = draw(st.dictionaries(hostile_text, json_values(5), max_size=3))
            if draw(st.booleans()):
                params[draw(st.sampled_from(["name", "uri"]))] = draw(
                    st.one_of(names, json_values(2), st.just(""))
                )
            if draw(st.booleans()):
                params["_meta"] = {META_VERSION: draw(st.sampled_from([*KNOWN_VERSIONS, "2099-01-01"]))}
            doc["params"] = draw(st.one_of(st.just(params), json_values(3)))
    elif kind == "response":
        doc["result"] = draw(json_values(5))
    elif kind == "error":
        doc["error"] = {"code": draw(st.integers(-(2**31), 2**31)), "message": draw(hostile_text)}
    return doc


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.binary(max_size=300),
    json_ish_bytes,
    json_bytes(),
    message_docs().map(orjson.dumps),
    st.lists(message_docs(), max_size=BATCH + 2).map(orjson.dumps),
    st.integers(1, 3000).map(_nested),
)


def _parse(body: bytes, allow_batch: bool = True) -> ParsedBody | ProtocolError:
    return outcome(ProtocolError, parse_body, body, max_depth=DEPTH, max_batch=BATCH, allow_batch=allow_batch)


def _valid_id(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return False
    return not isinstance(value, str) or len(value) <= MAX_ID_CHARS


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# --- parse_body ----------------------------------------------------------------------------------


@given(body=bodies, allow_batch=st.booleans())
@budget(600)
def test_parse_body_answers_every_input_with_messages_or_a_jsonrpc_error(
    body: bytes, allow_batch: bool
) -> None:
    outcome = _parse(body, allow_batch)
    if isinstance(outcome, ProtocolError):
        assert outcome.code in PARSE_CODES
        assert outcome.status == 400
        assert outcome.request_id is None or _valid_id(outcome.request_id)
        # The error answer itself always serializes: the id it echoes is well-formed.
        assert orjson.loads(error_body(outcome.request_id, outcome.code, outcome.message))["error"]
        return
    # Accepted: it was strict JSON, within the caps, and every message is well-formed.
    doc = orjson.loads(body)
    assert _depth(doc) <= DEPTH
    assert outcome.is_batch == isinstance(doc, list)
    assert outcome.messages
    assert allow_batch or not outcome.is_batch
    assert len(outcome.messages) <= BATCH
    for message in outcome.messages:
        assert message.kind in ("request", "notification", "response")
        assert (message.kind == "notification") == (message.id is None)
        if message.id is not None:
            assert _valid_id(message.id)
        if message.kind == "response":
            assert message.method == ""
        else:
            assert isinstance(message.method, str)
            assert 0 < len(message.method) <= 128
            assert message.params is None or isinstance(message.params, dict)


@given(message=message_docs())
@budget(300)
def test_an_accepted_message_says_what_the_body_said(message: Any) -> None:
    outcome = _parse(orjson.dumps(message))
    if isinstance(outcome, ProtocolError):
        return
    [parsed] = outcome.messages
    assert message["jsonrpc"] == "2.0"
    assert parsed.id == message.get("id")
    assert parsed.method == message.get("method", "")
    if parsed.kind != "response":
        assert parsed.params == message.get("params")


@st.composite
def valid_messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": draw(methods)}
    if draw(st.booleans()):
        message["id"] = draw(ids)
    # A key that differs from name/uri/_meta only in case is refused (a case-folding upstream
    # would read it as that member): not a valid message.
    keys = st.text(max_size=10).filter(lambda k: k.casefold() not in ("name", "uri", "_meta"))
    params = draw(st.dictionaries(keys, json_values(6), max_size=3))
    field = NAMED_METHODS.get(message["method"])
    if field is not None:
        params[field] = draw(names)
    if draw(st.booleans()) or field is not None:
        message["params"] = params
    return message


@given(messages=st.lists(valid_messages(), min_size=1, max_size=8), batch=st.booleans())
@budget(150)
def test_valid_messages_round_trip_through_the_parser(messages: list[dict[str, Any]], batch: bool) -> None:
    body = orjson.dumps(messages if batch else messages[0])
    parsed = parse_body(body, max_depth=DEPTH + 2, max_batch=BATCH, allow_batch=True)
    sent = messages if batch else messages[:1]
    assert parsed.is_batch == batch
    assert [(m.id, m.method, m.params) for m in parsed.messages] == [
        (m.get("id"), m["method"], m.get("params")) for m in sent
    ]
    assert [m.kind for m in parsed.messages] == ["request" if "id" in m else "notification" for m in sent]
    calls = [call_of(m) for m in parsed.messages]
    for call, m in zip(calls, sent, strict=True):
        field = NAMED_METHODS.get(m["method"])
        assert call == Call(m["method"], m["params"][field] if field else None, m.get("id"), m.get("params"))


@given(depth=st.integers(DEPTH + 1, 5000), batch_size=st.integers(BATCH + 1, 3 * BATCH))
@budget(50)
def test_bodies_past_the_caps_are_refused(depth: int, batch_size: int) -> None:
    deep = _parse(_nested(depth))
    assert isinstance(deep, ProtocolError)
    assert deep.code == PARSE_ERROR
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    wide = _parse(orjson.dumps([ping] * batch_size))
    assert isinstance(wide, ProtocolError)
    assert wide.code == INVALID_REQUEST
    long_id = _parse(orjson.dumps(dict(ping, id="x" * (MAX_ID_CHARS + depth))))
    assert isinstance(long_id, ProtocolError)
    assert long_id.code == INVALID_REQUEST
    long_method = _parse(orjson.dumps(dict(ping, method="m" * (128 + depth))))
    assert isinstance(long_method, ProtocolError)
    assert long_method.code == INVALID_REQUEST


@given(shape=st.sampled_from(["deep", "wide", "strings", "wide-read-twice"]))
@budget(8, deadline_ms=5000)
def test_a_hostile_megabyte_body_is_parsed_in_bounded_memory(shape: str) -> None:
    # The body cap (limits.max_body_bytes, 1 MiB) bounds the input; the parser's peak memory
    # must stay proportional to it, whatever the shape: deep nesting is refused before any
    # Python objects are built past the cap, a flat array of empty arrays is the worst case.
    size = 1_048_576
    body = {
        "deep": b"[" * size,
        "wide": b"[" + b"[]," * (size // 3 - 1) + b"[]]",
        "strings": b'["' + b'\\u0000","' * (size // 10) + b'"]',
        # A read name twice sends the body through the second, checking reading as well.
        "wide-read-twice": b'{"params":[' + b"[]," * (size // 3 - 9) + b'"id","id"]}',
    }[shape]
    tracemalloc.start()
    try:
        outcome = _parse(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(outcome, ProtocolError)  # none of these is a JSON-RPC message
    assert peak < 64 * size


# --- call_of ---------------------------------------------------------------------------------------


@given(
    method=st.one_of(st.sampled_from(sorted(NAMED_METHODS)), methods),
    params=st.one_of(st.none(), st.dictionaries(hostile_text, json_values(4), max_size=3)),
    target=st.one_of(json_values(3), st.text(min_size=MAX_NAME_CHARS, max_size=MAX_NAME_CHARS + 2)),
    message_id=st.one_of(st.none(), ids),
)
@budget(300)
def test_call_of_names_a_bounded_target_or_refuses_with_invalid_params(
    method: str, params: dict[str, Any] | None, target: Any, message_id: Any
) -> None:
    field = NAMED_METHODS.get(method)
    if params is not None and field is not None:
        params = dict(params, **{field: target})
    call = outcome(ProtocolError, call_of, Message("request", message_id, method, params))
    if isinstance(call, ProtocolError):
        assert field is not None
        assert (call.code, call.request_id) == (INVALID_PARAMS, message_id)
        return
    assert (call.method, call.id) == (method, message_id)
    if field is None:
        assert call.name is None
    else:
        assert isinstance(call.name, str)
        assert 0 < len(call.name) <= MAX_NAME_CHARS
        assert params is not None
        assert call.name == params[field]


# --- era and the 2026-07-28 header rules -----------------------------------------------------------


@given(header=st.one_of(st.none(), st.sampled_from(KNOWN_VERSIONS), latin1_text, st.text(max_size=300)))
@budget(300)
def test_era_of_knows_a_version_or_answers_unsupported_version(header: str | None) -> None:
    era = outcome(ProtocolError, era_of, header)
    if isinstance(era, ProtocolError):
        assert header is not None
        assert header not in KNOWN_VERSIONS
        assert era.code == UNSUPPORTED_VERSION
        assert era.data["requested"] == header[:64]  # never echoes more than 64 characters
        assert era.data["supported"] == list(MODERN_VERSIONS)
        return
    assert era.version == (header or "2025-03-26")
    assert era.name == ("modern" if header in MODERN_VERSIONS else "legacy")
    assert era.allows_batch == (era.version == "2025-03-26")


def _sentinel(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


header_values = st.one_of(
    latin1_text,
    st.text(max_size=30).map(_sentinel),
    st.builds(lambda s: "=?base64?" + s + "?=", latin1_text),
)
ANY_MESSAGE = Message("request", 7, "tools/call", {"name": "x"})


@given(value=header_values)
@example(value="=?base64?=")  # head and tail overlap: not a sentinel, a plain value
@example(value="=?base64??=")  # the sentinel of ""
@example(value="")
@budget(400)
def test_decode_header_value_decodes_or_answers_header_mismatch(value: str) -> None:
    decoded = outcome(ProtocolError, decode_header_value, value, ANY_MESSAGE)
    if isinstance(decoded, ProtocolError):
        assert (decoded.code, decoded.request_id) == (HEADER_MISMATCH, 7)
        return
    if value.startswith("=?base64?") and value.endswith("?=") and len(value) >= 11:
        encoded = value[len("=?base64?") : -2]
        assert decoded == base64.b64decode(encoded, validate=True).decode()
    else:
        # A plain value passes unchanged, and only if it is visible ASCII (or tab/space).
        assert decoded == value
        assert all(c == "\t" or " " <= c <= "~" for c in value)


@given(text=st.text(max_size=60))
@budget(300)
def test_any_text_survives_the_base64_sentinel_round_trip(text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        return  # lone surrogates cannot be sent as UTF-8 at all
    assert decode_header_value(_sentinel(text), ANY_MESSAGE) == text


@given(
    version=st.one_of(st.none(), st.sampled_from(KNOWN_VERSIONS)),
    message=message_docs(),
    method_header=st.one_of(st.none(), methods, latin1_text),
    name_header=st.one_of(st.none(), header_values, names),
)
@budget(600)
def test_check_modern_headers_accepts_only_agreeing_headers(
    version: str | None, message: Any, method_header: str | None, name_header: str | None
) -> None:
    parsed = _parse(orjson.dumps(message))
    if isinstance(parsed, ProtocolError):
        return
    [msg] = parsed.messages
    era = era_of(version)
    refused = outcome(ProtocolError, check_modern_headers, era, msg, method_header, name_header)
    if isinstance(refused, ProtocolError):
        assert (refused.code, refused.request_id) == (HEADER_MISMATCH, msg.id)
        return
    meta = (msg.params or {}).get("_meta")
    body_version = meta.get(META_VERSION) if isinstance(meta, dict) else None
    if era.name == "legacy":
        assert body_version not in MODERN_VERSIONS  # a modern body never dodges the header rules
        return
    # Modern: every header that is present agrees with the body; required ones are present.
    assert msg.kind != "response"
    assert body_version == era.version
    assert method_header == msg.method or (method_header is None and msg.kind == "notification")
    field = NAMED_METHODS.get(msg.method)
    if field is not None and msg.kind == "request":
        assert name_header is not None
        assert decode_header_value(name_header, msg) == (msg.params or {}).get(field)


@pytest.mark.parametrize("version", MODERN_VERSIONS)
def test_a_modern_named_call_with_matching_headers_passes(version: str) -> None:
    # The property above must be able to pass too: the happy path, plain and base64-encoded.
    params = {"name": "send_ema\u0456l", "_meta": {META_VERSION: version}}
    message = Message("request", 1, "tools/call", params)
    check_modern_headers(era_of(version), message, "tools/call", _sentinel("send_ema\u0456l"))
    with pytest.raises(ProtocolError):
        check_modern_headers(era_of(version), message, "tools/call", "send_email")


# --- repeated member names ---------------------------------------------------------------------
# Stated independently of the parser: the names the gateway reads (the JSON-RPC 2.0 members, the
# params members mcp/calls.py and mcp/era.py decide on, and the protocol-version key), repeated
# in any one object, are refused whatever the spelling; no other body is refused for a repeat.
_READ = ["jsonrpc", "id", "method", "params", "result", "error", "name", "uri", "_meta", META_VERSION]
_OTHER = ["arguments", "Name", "x", "names", ""]


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as written: members in order, repeats allowed."""


def _spell(name: str, rnd: random.Random) -> str:
    out = []
    for char in name:
        roll = rnd.random()
        if roll < 0.15:
            out.append(f"\\u{ord(char):04x}")
        elif char == "/" and roll < 0.5:
            out.append("\\/")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _write(node: Any, rnd: random.Random) -> str:
    if isinstance(node, _Pairs):
        return "{" + ",".join(_spell(k, rnd) + ":" + _write(v, rnd) for k, v in node) + "}"
    if isinstance(node, list):
        return "[" + ",".join(_write(v, rnd) for v in node) + "]"
    return orjson.dumps(node).decode()


def _repeats_a_read_name(node: Any) -> bool:
    if isinstance(node, _Pairs):
        names = [k for k, _ in node]
        if any(names.count(k) > 1 for k in _READ):
            return True
        return any(_repeats_a_read_name(v) for _, v in node)
    if isinstance(node, list):
        return any(_repeats_a_read_name(v) for v in node)
    return False


_member_names = st.sampled_from(_READ + _OTHER)
_trees = st.recursive(
    st.one_of(st.sampled_from(_READ + _OTHER), st.integers(-5, 5), st.none()),
    lambda children: (
        st.lists(children, max_size=3) | st.lists(st.tuples(_member_names, children), max_size=4).map(_Pairs)
    ),
    max_leaves=12,
)


@given(
    params=st.lists(st.tuples(_member_names, _trees), max_size=4).map(_Pairs),
    extra=st.lists(st.tuples(_member_names, _trees), max_size=2).map(_Pairs),
    rnd=st.randoms(use_true_random=False),
)
@example(params=_Pairs([("name", "a"), ("name", "b")]), extra=_Pairs(), rnd=random.Random(0))
@budget(400)
def test_a_repeated_read_name_is_refused_in_any_object_and_only_then(
    params: _Pairs, extra: _Pairs, rnd: random.Random
) -> None:
    envelope = _Pairs([("jsonrpc", "2.0"), ("id", 1), ("method", "x"), ("params", params), *extra])
    body = _write(envelope, rnd).encode()
    result = _parse(body)
    repeated = isinstance(result, ProtocolError) and "appears twice in one object" in result.message
    assert repeated == _repeats_a_read_name(envelope), body
    if repeated:
        assert isinstance(result, ProtocolError)
        assert result.code == INVALID_REQUEST
