"""JSON-RPC parsing of hostile bodies: JR-01, JR-04, JR-05, JR-06, JR-09."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mcp_bastion.errors import ProtocolError
from mcp_bastion.mcp import jsonrpc
from mcp_bastion.mcp.calls import NAMED_METHODS
from mcp_bastion.mcp.era import META_VERSION
from mcp_bastion.mcp.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    READ_NAMES,
    Message,
    ParsedBody,
    error_body,
    parse_body,
)


def _parse(body: bytes, *, allow_batch: bool = False, max_batch: int = 64, max_depth: int = 64) -> ParsedBody:
    return parse_body(body, max_depth=max_depth, max_batch=max_batch, allow_batch=allow_batch)


def _fails(body: bytes, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        _parse(body, **kwargs)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            Message("request", 1, "tools/list", None),
        ),
        (
            {"jsonrpc": "2.0", "id": "abc", "method": "tools/call", "params": {"name": "x"}},
            Message("request", "abc", "tools/call", {"name": "x"}),
        ),
        ({"jsonrpc": "2.0", "id": 0, "method": "ping"}, Message("request", 0, "ping", None)),
        ({"jsonrpc": "2.0", "id": -5, "method": "ping"}, Message("request", -5, "ping", None)),
        ({"jsonrpc": "2.0", "id": "", "method": "ping"}, Message("request", "", "ping", None)),
        (
            {"jsonrpc": "2.0", "id": 18446744073709551615, "method": "ping"},
            Message("request", 18446744073709551615, "ping", None),
        ),
        (
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            Message("notification", None, "notifications/initialized", None),
        ),
        (
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
            Message("notification", None, "notifications/cancelled", {"requestId": 3}),
        ),
        ({"jsonrpc": "2.0", "id": 7, "result": {}}, Message("response", 7, "", None)),
        (
            {"jsonrpc": "2.0", "id": "s1", "error": {"code": -1, "message": "no"}},
            Message("response", "s1", "", None),
        ),
        # params: null is the same as absent.
        ({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": None}, Message("request", 1, "ping", None)),
        ({"jsonrpc": "2.0", "id": 1, "method": "x" * 128}, Message("request", 1, "x" * 128, None)),
        ({"jsonrpc": "2.0", "id": "i" * 256, "method": "ping"}, Message("request", "i" * 256, "ping", None)),
    ],
)
def test_valid_single_messages(doc: dict[str, Any], expected: Message) -> None:
    parsed = _parse(orjson.dumps(doc))
    assert parsed == ParsedBody((expected,), False)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b" ",
        b"{",
        b"{}}",
        b"nul",
        b"<html>",
        b"{'jsonrpc': '2.0'}",
        # JR-04: an unterminated and a terminated 100,000-deep array; no RecursionError.
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b"{" * 100_000,
        # JR-05: an id of 5,000 digits.
        b'{"jsonrpc":"2.0","method":"ping","id":' + b"9" * 5000 + b"}",
        # JR-06: invalid UTF-8, BOMs, UTF-16, a lone surrogate, overlong encodings, NaN, Infinity.
        b'{"jsonrpc":"2.0","method":"ping","id":"\xff"}',
        b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"ping","id":1}',
        '{"jsonrpc":"2.0","method":"ping","id":1}'.encode("utf-16"),
        '{"jsonrpc":"2.0","method":"ping","id":1}'.encode("utf-16-le"),
        b'{"jsonrpc":"2.0","method":"ping","id":"\\ud800"}',
        b'{"jsonrpc":"2.0","method":"ping","id":"\\udc00x"}',
        b'{"jsonrpc":"2.0","method":"ping","id":"\xed\xa0\x80"}',
        b'{"jsonrpc":"2.0","method":"ping","id":"\xc0\xaf"}',
        b'{"jsonrpc":"2.0","method":"ping","id":1,"params":{"x":NaN}}',
        b'{"jsonrpc":"2.0","method":"ping","id":1,"params":{"x":Infinity}}',
        b'{"jsonrpc":"2.0","method":"ping","id":1,"params":{"x":-Infinity}}',
        b'{"jsonrpc":"2.0","method":"ping","id":1,"params":{"x":1e400}}',
        b'{"jsonrpc":"2.0","method":"ping","id":1} trailing',
    ],
)
def test_unparseable_bodies_are_parse_errors(body: bytes) -> None:
    error = _fails(body, allow_batch=True)
    assert error.code == PARSE_ERROR
    assert error.request_id is None
    assert "Parse error" in error.message


@pytest.mark.parametrize(("depth", "ok"), [(64, True), (65, False)])
def test_depth_cap_is_ours_and_exact(depth: int, ok: bool) -> None:
    nested: Any = {}
    for _ in range(depth - 2):
        nested = {"n": nested}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": nested})
    if ok:
        assert _parse(body).messages[0].method == "ping"
    else:
        error = _fails(body)
        assert error.code == PARSE_ERROR
        assert "nested deeper than 64" in error.message


def test_deep_scalars_do_not_count_as_depth() -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"a": "x" * 10_000}})
    assert _parse(body, max_depth=4).messages[0].params == {"a": "x" * 10_000}


@pytest.mark.parametrize(
    ("body", "fragment", "echoed_id"),
    [
        # JR-09: the JSON-RPC version.
        (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', '"jsonrpc" must be "2.0"', 1),
        (b'{"id":"a","method":"ping"}', '"jsonrpc" must be "2.0"', "a"),
        (b'{"jsonrpc":2.0,"id":1,"method":"ping"}', '"jsonrpc" must be "2.0"', 1),
        (b'{"jsonrpc":"2.0 ","id":1,"method":"ping"}', '"jsonrpc" must be "2.0"', 1),
        (b'{"jsonrpc":"1.0","id":null,"method":"ping"}', '"jsonrpc" must be "2.0"', None),
        (b'{"jsonrpc":"1.0","id":1.5,"method":"ping"}', '"jsonrpc" must be "2.0"', None),
        # Not objects.
        (b"1", "must be a JSON object", None),
        (b'"ping"', "must be a JSON object", None),
        (b"null", "must be a JSON object", None),
        (b"true", "must be a JSON object", None),
        # JR-05: ids that are not strings or integers; never echoed.
        (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":[1],"method":"ping"}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":1.0,"method":"ping"}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":false,"method":"ping"}', '"id" must be a string or an integer', None),
        # 25 digits: beyond 64 bits orjson yields a float, which is not an id.
        (
            b'{"jsonrpc":"2.0","id":1234567890123456789012345,"method":"ping"}',
            '"id" must be a string or an integer',
            None,
        ),
        (
            b'{"jsonrpc":"2.0","id":"' + b"i" * 257 + b'","method":"ping"}',
            '"id" is too long',
            None,
        ),
        # Methods.
        (b'{"jsonrpc":"2.0","id":1,"method":""}', '"method" must be a short string', 1),
        (b'{"jsonrpc":"2.0","id":1,"method":7}', '"method" must be a short string', 1),
        (b'{"jsonrpc":"2.0","id":1,"method":null}', '"method" must be a short string', 1),
        (b'{"jsonrpc":"2.0","id":1,"method":["ping"]}', '"method" must be a short string', 1),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"' + b"x" * 129 + b'"}',
            '"method" must be a short string',
            1,
        ),
        # Neither request nor response.
        (b'{"jsonrpc":"2.0","id":1}', "neither a request nor a response", 1),
        (b'{"jsonrpc":"2.0"}', "neither a request nor a response", None),
        (b'{"jsonrpc":"2.0","id":1,"params":{}}', "neither a request nor a response", 1),
        # Responses need an id.
        (b'{"jsonrpc":"2.0","result":{}}', '"id" must be a string or an integer', None),
        (b'{"jsonrpc":"2.0","id":null,"error":{}}', '"id" must be a string or an integer', None),
    ],
)
def test_invalid_requests(body: bytes, fragment: str, echoed_id: Any) -> None:
    error = _fails(body)
    assert error.code == INVALID_REQUEST
    assert fragment in error.message
    assert error.request_id == echoed_id


@pytest.mark.parametrize(
    "params",
    [b"1", b'"x"', b"true", b"[]", b"[1,2]", b"0"],
)
def test_jr09_scalar_or_positional_params_are_invalid_params(params: bytes) -> None:
    error = _fails(b'{"jsonrpc":"2.0","id":"r1","method":"tools/call","params":' + params + b"}")
    assert error.code == INVALID_PARAMS
    assert '"params" must be an object' in error.message
    assert error.request_id == "r1"


def test_scalar_params_in_a_notification_are_invalid_params() -> None:
    error = _fails(b'{"jsonrpc":"2.0","method":"notifications/x","params":5}')
    assert (error.code, error.request_id) == (INVALID_PARAMS, None)


def _req(i: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": i, "method": "ping"}


def test_batch_when_allowed() -> None:
    body = orjson.dumps([_req(1), {"jsonrpc": "2.0", "method": "notifications/x"}, _req(2)])
    parsed = _parse(body, allow_batch=True)
    assert parsed.is_batch
    assert [(m.kind, m.id) for m in parsed.messages] == [
        ("request", 1),
        ("notification", None),
        ("request", 2),
    ]


def test_a_batch_of_one_is_still_a_batch() -> None:
    parsed = _parse(orjson.dumps([_req(1)]), allow_batch=True)
    assert parsed == ParsedBody((Message("request", 1, "ping", None),), True)


@pytest.mark.parametrize(
    ("body", "kwargs", "fragment"),
    [
        # JR-01: any batch once batching is gone (>= 2025-06-18).
        (orjson.dumps([_req(1)]), {"allow_batch": False}, "batches are not allowed"),
        (b"[]", {"allow_batch": False}, "batches are not allowed"),
        # `[]` is one -32600.
        (b"[]", {"allow_batch": True}, "empty batch"),
        (orjson.dumps([_req(i) for i in range(65)]), {"allow_batch": True}, "batch larger than 64"),
        (orjson.dumps([_req(i) for i in range(10_000)]), {"allow_batch": True}, "batch larger than 64"),
        (orjson.dumps([_req(1), _req(2), _req(3)]), {"allow_batch": True, "max_batch": 2}, "larger than 2"),
        # One bad element spoils the batch.
        (orjson.dumps([_req(1), 5]), {"allow_batch": True}, "must be a JSON object"),
        (orjson.dumps([_req(1), [_req(2)]]), {"allow_batch": True}, "must be a JSON object"),
        (
            orjson.dumps([_req(1), {"jsonrpc": "1.0", "id": 2, "method": "x"}]),
            {"allow_batch": True},
            '"jsonrpc" must be "2.0"',
        ),
    ],
)
def test_jr01_batch_rules(body: bytes, kwargs: dict[str, Any], fragment: str) -> None:
    error = _fails(body, **kwargs)
    assert error.code == INVALID_REQUEST
    assert fragment in error.message


def test_batch_at_the_cap_is_accepted() -> None:
    parsed = _parse(orjson.dumps([_req(i) for i in range(64)]), allow_batch=True)
    assert len(parsed.messages) == 64


def test_batch_element_with_bad_params_names_its_id() -> None:
    body = orjson.dumps([_req(1), {"jsonrpc": "2.0", "id": 9, "method": "x", "params": 3}])
    error = _fails(body, allow_batch=True)
    assert (error.code, error.request_id) == (INVALID_PARAMS, 9)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            (1, -32600, "Invalid Request"),
            {"jsonrpc": "2.0", "id": 1, "error": {"code": -32600, "message": "Invalid Request"}},
        ),
        (
            (None, -32700, "Parse error"),
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
        ),
        (
            ("a", -32022, "Unsupported", {"supported": ["2026-07-28"]}),
            {
                "jsonrpc": "2.0",
                "id": "a",
                "error": {"code": -32022, "message": "Unsupported", "data": {"supported": ["2026-07-28"]}},
            },
        ),
    ],
)
def test_error_body(args: tuple[Any, ...], expected: dict[str, Any]) -> None:
    assert orjson.loads(error_body(*args)) == expected


def test_error_body_escapes_hostile_messages_into_one_line() -> None:
    raw = error_body("x\r\ny", -32600, 'bad "\n\x1b[2J')
    assert b"\n" not in raw
    assert b"\r" not in raw
    assert b"\x1b" not in raw
    assert orjson.loads(raw)["error"]["message"] == 'bad "\n\x1b[2J'


# --- members two parsers could read differently ------------------------------------------------
# The gateway authorizes what orjson read and forwards the bytes it received: anything another
# parser could read as a different message is refused (issue 9, after CVE-2026-27896).


@pytest.mark.parametrize(
    "body",
    [
        # A case-folding decoder reads "Method" as the method: the gateway would authorize
        # tools/list and the upstream run tools/call.
        b'{"jsonrpc":"2.0","id":7,"Method":"tools/call","method":"tools/list","params":{}}',
        b'{"jsonrpc":"2.0","id":7,"method":"tools/list","METHOD":"tools/call"}',
        # U+017F (long s) folds to "s" in Go's case-insensitive matching.
        '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{},"param\u017f":{"name":"x"}}'.encode(),
        # Another case of "jsonrpc" or "id" beside the real one.
        b'{"jsonrpc":"2.0","id":7,"method":"ping","Jsonrpc":"2.0"}',
        b'{"jsonrpc":"2.0","id":7,"method":"ping","Id":8}',
        # Members JSON-RPC 2.0 does not define at all.
        b'{"jsonrpc":"2.0","id":7,"method":"ping","extra":1}',
        b'{"jsonrpc":"2.0","id":7,"method":"ping","result":{}}',
        b'{"jsonrpc":"2.0","id":7,"method":"ping","error":{"code":1,"message":"x"}}',
        b'{"jsonrpc":"2.0","id":7,"method":"ping","":0}',
    ],
)
def test_a_request_with_a_member_json_rpc_does_not_define_is_invalid(body: bytes) -> None:
    error = _fails(body)
    assert (error.code, error.request_id) == (INVALID_REQUEST, 7)
    assert "only jsonrpc, id, method and params" in error.message


def test_a_notification_with_an_unknown_member_is_invalid_without_an_id() -> None:
    error = _fails(b'{"jsonrpc":"2.0","method":"notifications/initialized","Id":1}')
    assert (error.code, error.request_id) == (INVALID_REQUEST, None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","id":7,"result":{},"error":{"code":1,"message":"x"}}',
        b'{"jsonrpc":"2.0","id":7,"result":{},"Result":{}}',
        b'{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"},"params":{}}',
        b'{"jsonrpc":"2.0","id":7,"result":{},"extra":true}',
    ],
)
def test_a_client_response_carries_exactly_one_of_result_or_error(body: bytes) -> None:
    error = _fails(body)
    assert (error.code, error.request_id) == (INVALID_REQUEST, 7)
    assert "either result or error" in error.message


def test_an_unknown_member_in_one_batch_element_spoils_the_batch() -> None:
    body = orjson.dumps([_req(1), {"jsonrpc": "2.0", "id": 2, "method": "ping", "Method": "tools/call"}])
    error = _fails(body, allow_batch=True)
    assert (error.code, error.request_id) == (INVALID_REQUEST, 2)


def test_an_unknown_member_with_a_malformed_id_echoes_no_id() -> None:
    error = _fails(b'{"jsonrpc":"2.0","id":[7],"method":"ping","x":1}')
    assert (error.code, error.request_id) == (INVALID_REQUEST, None)


@pytest.mark.parametrize(
    "params",
    [
        {"name": "read_thing", "Name": "drop_thing"},
        {"Name": "drop_thing"},
        {"NAME": "drop_thing", "name": "read_thing"},
        {"uri": "file:///a", "URI": "file:///etc/shadow"},
        {"name": "x", "_META": {}},
        {"name": "x", "_Meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
    ],
)
def test_a_params_member_that_folds_to_one_the_gateway_reads_is_invalid_params(
    params: dict[str, Any],
) -> None:
    error = _fails(orjson.dumps({"jsonrpc": "2.0", "id": "c", "method": "tools/call", "params": params}))
    assert (error.code, error.request_id) == (INVALID_PARAMS, "c")
    assert "only in case" in error.message


@pytest.mark.parametrize(
    "doc",
    [
        # Other members of params are the upstream's business; only name, uri, _meta decide.
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t", "Arguments": {}}},
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "t", "names": "u"}},
        # Read names as values, and as members of nested objects, once each: fine.
        {
            "jsonrpc": "2.0",
            "id": "method",
            "method": "tools/call",
            "params": {"name": "params", "arguments": {"Method": "id", "Name": "name", "uri": "x"}},
        },
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"arguments": {"name": "a"}, "name": "b"}},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"list": [{"name": "a"}, {"name": "b"}]}},
        {"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"text": 'a "name" \u00e9 \\ \n'}},
    ],
)
def test_control_bodies_naming_read_names_elsewhere_pass(doc: dict[str, Any]) -> None:
    message = _parse(orjson.dumps(doc)).messages[0]
    assert (message.method, message.params) == (doc["method"], doc["params"])


def test_control_a_batch_repeats_names_across_elements_not_within_one() -> None:
    body = orjson.dumps([_req(1), _req(2), {"jsonrpc": "2.0", "method": "notifications/x"}])
    assert [m.id for m in _parse(body, allow_batch=True).messages] == [1, 2, None]


# Each name the gateway reads, spelled plainly and with escapes, repeated in each object where
# it could decide something (and nested where it decides nothing: the rule covers every object).
_ESCAPED = {
    "jsonrpc": "\\u006asonrpc",
    "id": "i\\u0064",
    "method": "\\u006dethod",
    "params": "param\\u0073",
    "result": "resul\\u0074",
    "error": "\\u0065rror",
    "name": "n\\u0061me",
    "uri": "ur\\u0069",
    "_meta": "\\u005fmeta",
    "io.modelcontextprotocol/protocolVersion": "io.modelcontextprotocol\\/protocolVersion",
}


@pytest.mark.parametrize("escaped", [False, True], ids=["plain", "escaped"])
@pytest.mark.parametrize("name", sorted(_ESCAPED))
@pytest.mark.parametrize("where", ["envelope", "params", "_meta", "arguments"])
def test_a_repeated_name_the_gateway_reads_is_invalid_in_any_object(
    name: str, escaped: bool, where: str
) -> None:
    spelled = _ESCAPED[name] if escaped else name
    pair = f'"{name}":"a","{spelled}":"b"'
    inner = {
        "envelope": ('{"jsonrpc":"2.0","id":5,"method":"ping","params":{},%s}', pair),
        "params": ('{"jsonrpc":"2.0","id":5,"method":"ping","params":{%s}}', pair),
        "_meta": ('{"jsonrpc":"2.0","id":5,"method":"ping","params":{"_meta":{%s}}}', pair),
        "arguments": ('{"jsonrpc":"2.0","id":5,"method":"ping","params":{"arguments":[{%s}]}}', pair),
    }[where]
    body = (inner[0] % inner[1]).encode()
    error = _fails(body)
    assert error.code == INVALID_REQUEST
    assert f'the member "{name}" appears twice in one object' in error.message
    # The id is echoed unless a repeated "id" makes it uncertain (the check does not track where).
    assert error.request_id == (None if name == "id" else 5)


def test_the_repeat_rule_covers_every_params_member_the_gateway_decides_on() -> None:
    # The rule lists its names itself; this keeps it in step with mcp/calls.py and mcp/era.py.
    assert {*NAMED_METHODS.values(), "_meta", META_VERSION} <= READ_NAMES


@pytest.mark.parametrize("repeat", [True, False])
def test_repeats_are_found_below_the_depth_orjson_writes(repeat: bool) -> None:
    # orjson writes at most 254 levels: deeper bodies (max_json_depth allows 512) take the slow path.
    inner = '{"name":"a","name":"b"}' if repeat else '{"name":"a"}'
    body = (
        '{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":' + "[" * 300 + inner + "]" * 300 + "}}"
    ).encode()
    if repeat:
        error = _fails(body, max_depth=400)
        assert 'the member "name" appears twice' in error.message
    else:
        assert _parse(body, max_depth=400).messages[0].method == "x"


def test_error_codes_are_json_rpc_2_0s() -> None:
    # JSON-RPC 2.0 §5.1, stated here rather than read back from the module.
    assert (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR) == (
        -32700,
        -32600,
        -32601,
        -32602,
        -32603,
    )


def _nest(kind: str, depth: int) -> Any:
    """A value `depth` containers deep, each level with an empty sibling container (so the body
    holds more brackets than levels, and the count shortcut cannot settle the depth)."""
    value: Any = {}
    for level in range(depth - 1):
        as_list = kind == "lists" or (kind == "mixed" and level % 2)
        value = [value, []] if as_list else {"n": value, "e": {}}
    return value


@pytest.mark.parametrize("kind", ["objects", "lists", "mixed"])
@pytest.mark.parametrize(("depth", "ok"), [(64, True), (65, False)])
def test_the_depth_cap_counts_levels_not_brackets(kind: str, depth: int, ok: bool) -> None:
    # The envelope and params are two levels: the value inside params gets the other 62.
    body = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"v": _nest(kind, depth - 2)}}
    )
    assert body.count(b"{") + body.count(b"[") > depth  # the walk, not the shortcut, decides
    if ok:
        assert _parse(body).messages[0].method == "ping"
    else:
        error = _fails(body)
        assert (error.code, error.message) == (PARSE_ERROR, "Parse error: JSON nested deeper than 64")


def test_a_case_variant_beside_every_read_params_member_is_still_refused() -> None:
    params = {"name": "t", "uri": "u", "_meta": {}, "Name": "drop_thing"}
    error = _fails(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
    assert error.code == INVALID_PARAMS


def test_control_exactly_the_read_params_members_pass() -> None:
    params = {"name": "t", "uri": "u", "_meta": {}}
    message = _parse(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "x", "params": params})).messages[0]
    assert message.params == params


def test_a_second_reading_that_fails_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    # No body orjson accepts is known to fail CPython's json (its checking reading); should one
    # exist, the body is refused as unreadable rather than forwarded or turned into a 500.
    def refuses(*args: object, **kwargs: object) -> object:
        raise ValueError("a reading that disagrees")

    monkeypatch.setattr(jsonrpc.json, "loads", refuses)
    error = _fails(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\\u0061"}}')
    assert (error.code, error.request_id) == (PARSE_ERROR, None)


def test_error_codes_are_json_rpcs() -> None:
    # JSON-RPC 2.0 §5.1; the tests above compare with the module's names, so the numbers are pinned here.
    from mcp_bastion.mcp.jsonrpc import INTERNAL_ERROR, METHOD_NOT_FOUND

    codes = (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR)
    assert codes == (-32700, -32600, -32601, -32602, -32603)


def _nest_levels(depth: int, container: str) -> Any:
    """`depth` levels of objects ("o"), arrays ("a") or both in turn ("m"), counting the outermost."""
    node: Any = {} if container != "a" else []
    for level in range(depth - 1):
        as_array = container == "a" or (container == "m" and level % 2 == 0)
        node = [node, 1] if as_array else {"n": node, "s": 1}
    return node


@pytest.mark.parametrize("container", ["o", "a", "m"])
@pytest.mark.parametrize(("depth", "ok"), [(4, True), (5, False)])
def test_depth_counts_objects_and_arrays_alike_whatever_the_width(
    container: str, depth: int, ok: bool
) -> None:
    # JR-04. Siblings make the body hold more openers than the cap, so the depth itself is measured:
    # the message (depth 1) and params (depth 2) count, then the nested value.
    siblings = {f"k{i}": [] for i in range(20)}  # depth 4 each
    params = {"deep": _nest_levels(depth - 2, container), "wide": siblings}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": params})
    assert body.count(b"{") + body.count(b"[") > 5
    if ok:
        assert _parse(body, max_depth=4).messages[0].params == params
    else:
        assert "nested deeper than 4" in _fails(body, max_depth=4).message


def test_depth_is_measured_inside_a_batch_too() -> None:
    deep = {"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"a": [[{}]]}}
    flat = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"a": 1, "b": [1], "c": {}}}
    body = orjson.dumps([flat, flat, deep])  # batch 1, message 2, params 3, a 4, [ 5, { 6
    assert len(_parse(body, allow_batch=True, max_depth=6).messages) == 3
    assert "nested deeper than 5" in _fails(body, allow_batch=True, max_depth=5).message
