"""What an upstream may send back through one exchange (UP-03, UP-04, SL-02), message by message.

The rules, stated here independently of the code:

- a JSON-RPC response is relayed only when it answers a request of this exchange, and only
  once: a response (result *or* error) with an unknown, repeated, missing, boolean or
  fractional id is dropped; an error with `id: null` (the upstream could not parse a request)
  is relayed;
- a server request or notification (it has a `method`) is always relayed;
- anything else (a JSON object that is neither, a bare string, number, boolean or null, an
  SSE event that is not JSON) is dropped; a JSON answer left with nothing to relay is an error;
- a `tools/list` result goes through the list filter, as JSON and as SSE;
- the gateway's own upstream credential (16 bytes or more) never passes through.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mcp_bastion.errors import UpstreamError
from mcp_bastion.mcp.sse import DROP
from mcp_bastion.upstream.responses import ResponseGuard

SECRET = b"eyJhbGciOiJFUzI1NiJ9.minted-upstream-token.c2ln"


class ListFilter:
    """Keeps the tools whose name starts with "read_", as the real filter keeps the callable ones."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, result: dict[str, Any]) -> None:
        self.calls += 1
        result["tools"] = [t for t in result["tools"] if t["name"].startswith("read_")]


def guard(
    ids: set[str | int] | None = None,
    listing: str | int | None = None,
    credential: bytes | None = None,
    list_filter: ListFilter | None = None,
) -> ResponseGuard:
    return ResponseGuard(ids, listing, list_filter or ListFilter(), credential)


def result(rid: object, value: object = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": {"value": value}}


def error(rid: object, message: str = "failed") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32000, "message": message}}


def body(doc: object) -> bytes:
    return orjson.dumps(doc)


TOOLS = {"tools": [{"name": "read_a"}, {"name": "write_b"}, {"name": "read_c"}]}
FILTERED = {"tools": [{"name": "read_a"}, {"name": "read_c"}]}


# --- one JSON answer --------------------------------------------------------------------------


def test_an_answer_to_this_request_is_relayed_byte_for_byte() -> None:
    raw = b'{ "jsonrpc": "2.0",  "id": 7, "result": {"b": 1, "a": 2} }'
    assert guard({7}).check_json(raw) is raw


def test_string_ids_are_matched_like_numbers() -> None:
    checker = guard({"req-7", 8})
    assert checker.check_json(body(error("req-7"))) == body(error("req-7"))
    assert checker.sse_data(body(result("req-7"))) is DROP
    assert checker.sse_data(body(result(8))) is None


@pytest.mark.parametrize("answer", [result("other"), error("other"), result(8), error(8)])
def test_an_answer_to_another_request_is_refused(answer: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError, match="another request"):
        guard({7}).check_json(body(answer))


@pytest.mark.parametrize("kind", [result, error])
def test_an_id_is_answered_once_results_and_errors_alike(kind: Any) -> None:
    checker = guard({7, 9})
    assert checker.check_json(body(kind(7)))
    with pytest.raises(UpstreamError, match="another request"):
        checker.check_json(body(kind(7)))
    with pytest.raises(UpstreamError):
        checker.check_json(body(result(7) if kind is error else error(7)))
    assert checker.check_json(body(kind(9)))  # the other id is still open


def test_an_error_about_an_unparsable_request_has_a_null_id_and_is_relayed() -> None:
    # JSON-RPC 2.0 §5: "If there was an error in detecting the id ... it MUST be Null."
    raw = body(error(None))
    assert guard({7}).check_json(raw) == raw


def test_a_result_with_a_null_or_missing_id_is_refused() -> None:
    with pytest.raises(UpstreamError):
        guard({7}).check_json(body(result(None)))
    with pytest.raises(UpstreamError):
        guard({7}).check_json(b'{"jsonrpc": "2.0", "result": {}}')
    with pytest.raises(UpstreamError):
        guard({7}).check_json(b'{"jsonrpc": "2.0", "error": {"code": 1, "message": "x"}}')


@pytest.mark.parametrize(("outstanding", "answered"), [(1, True), (0, False), (1, 1.0), ("1", 1), (1, "1")])
def test_ids_match_by_type_and_value_not_by_python_equality(outstanding: int | str, answered: object) -> None:
    # True == 1 and 1.0 == 1 in Python, never in JSON-RPC: such an answer belongs to no request.
    with pytest.raises(UpstreamError):
        guard({outstanding}).check_json(body(result(answered)))
    with pytest.raises(UpstreamError):
        guard({outstanding}).check_json(body(error(answered)))


@pytest.mark.parametrize(
    "raw",
    [b'"a bare string"', b"42", b"-1.5", b"true", b"false", b"null", b'{"jsonrpc": "2.0", "id": 7}', b"{}"],
)
def test_json_that_is_neither_request_nor_response_is_refused(raw: bytes) -> None:
    with pytest.raises(UpstreamError):
        guard({7}).check_json(raw)


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(UpstreamError, match="not JSON"):
        guard({7}).check_json(b"<h1>502 Bad Gateway</h1>")


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}},
        {"jsonrpc": "2.0", "id": "s-1", "method": "sampling/createMessage", "params": {}},
        {"jsonrpc": "2.0", "id": 7, "method": "roots/list"},  # a server request may reuse our id
    ],
)
def test_server_requests_and_notifications_are_relayed_and_answer_nothing(message: dict[str, Any]) -> None:
    checker = guard({7})
    raw = body(message)
    assert checker.check_json(raw) == raw
    assert checker.check_json(body(result(7))) == body(result(7))  # 7 is still open


def test_a_stream_of_the_session_admits_any_id_any_number_of_times() -> None:
    # A GET stream (no request ids): a resumed stream replays answers to earlier POSTs.
    checker = guard(None)
    for answer in (result(1), result(1), error("x"), error(None)):
        assert checker.check_json(body(answer)) == body(answer)
    with pytest.raises(UpstreamError):
        checker.check_json(b'{"jsonrpc": "2.0", "id": 1}')  # still neither request nor response
    with pytest.raises(UpstreamError):
        checker.check_json(b"7")


# --- a batch answer ---------------------------------------------------------------------------


def test_a_batch_answer_keeps_only_answers_to_this_exchange() -> None:
    answers = [result(1, "mine"), result("other", "theirs"), error(99), error(2), result(1, "again")]
    kept = orjson.loads(guard({1, 2}).check_json(body(answers)))
    assert kept == [result(1, "mine"), error(2)]


def test_a_batch_answer_with_nothing_for_this_exchange_is_refused() -> None:
    with pytest.raises(UpstreamError, match="no response"):
        guard({1}).check_json(body([result(5), error(6), "junk", 3, None, {"id": 1}]))
    with pytest.raises(UpstreamError, match="no response"):
        guard({1}).check_json(b"[]")


def test_a_batch_answer_drops_what_is_not_json_rpc_and_keeps_server_messages() -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
    answers = ["junk", 3, None, True, [result(1)], {"jsonrpc": "2.0", "id": 1}, note, result(1)]
    # The id-only object is dropped without using up id 1: the real answer after it passes.
    assert orjson.loads(guard({1}).check_json(body(answers))) == [note, result(1)]


def test_a_batch_answer_with_nothing_dropped_is_relayed_byte_for_byte() -> None:
    raw = b'[ {"jsonrpc": "2.0", "id": 1, "result": {}},\n {"jsonrpc": "2.0", "id": 2, "error": {"code": 1, "message": "m"}} ]'
    assert guard({1, 2}).check_json(raw) is raw


# --- the tools/list filter --------------------------------------------------------------------


def test_the_tools_list_answer_is_filtered() -> None:
    list_filter = ListFilter()
    out = guard({3}, listing=3, list_filter=list_filter).check_json(body(result(3) | {"result": TOOLS}))
    assert orjson.loads(out)["result"] == FILTERED
    assert list_filter.calls == 1


def test_the_tools_list_answer_is_filtered_inside_a_batch_answer() -> None:
    list_filter = ListFilter()
    answers = [result(1), result(3) | {"result": TOOLS}]
    out = guard({1, 3}, listing=3, list_filter=list_filter).check_json(body(answers))
    assert orjson.loads(out) == [result(1), result(3) | {"result": FILTERED}]
    assert list_filter.calls == 1


@pytest.mark.parametrize(
    ("listing", "answer"),
    [
        (None, result(3) | {"result": TOOLS}),  # no tools/list in this exchange
        (4, result(3) | {"result": TOOLS}),  # another request's answer that happens to hold tools
        (3, error(3)),  # the listing failed
        (3, result(3) | {"result": {"tools": {"read_a": {}}}}),  # not a list: nothing to filter
        (3, result(3) | {"result": ["tools"]}),
    ],
)
def test_only_a_tools_list_result_is_filtered(listing: int | None, answer: dict[str, Any]) -> None:
    list_filter = ListFilter()
    raw = b" " + body(answer)  # any re-serialization would show
    assert guard({3, 4}, listing=listing, list_filter=list_filter).check_json(raw) is raw
    assert list_filter.calls == 0


def test_the_tools_list_answer_in_an_sse_event_is_filtered() -> None:
    list_filter = ListFilter()
    checker = guard({3}, listing=3, list_filter=list_filter)
    out = checker.sse_data(body(result(3) | {"result": TOOLS}))
    assert isinstance(out, bytes)
    assert orjson.loads(out) == result(3) | {"result": FILTERED}
    assert list_filter.calls == 1


# --- SSE events -------------------------------------------------------------------------------


def test_sse_an_answer_to_this_request_is_kept_unchanged_once() -> None:
    checker = guard({7})
    assert checker.sse_data(body(result(7))) is None
    assert checker.sse_data(body(result(7))) is DROP
    assert checker.sse_data(body(error(7))) is DROP


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'"a bare string"',
        b"42",
        b"null",
        b"[]",
        body([result(7)]),  # a batch inside one event is not a message
        b'{"jsonrpc": "2.0", "id": 7}',
        body(result("other")),
        body(error("other")),
        body(result(True)),
    ],
)
def test_sse_events_that_are_not_an_answer_to_this_request_are_dropped(data: bytes) -> None:
    checker = guard({7})
    assert checker.sse_data(data) is DROP
    assert checker.sse_data(body(result(7))) is None  # and 7 is still open


@pytest.mark.parametrize("data", [b"", b" ", b"\n"])
def test_sse_an_event_with_empty_data_is_kept(data: bytes) -> None:
    # A priming event: an `id:` for resumption and empty data (SEP-1699).
    assert guard({7}).sse_data(data) is None


def test_sse_server_messages_pass_unchanged() -> None:
    checker = guard({7})
    assert checker.sse_data(body({"jsonrpc": "2.0", "method": "notifications/progress"})) is None
    assert checker.sse_data(body({"jsonrpc": "2.0", "id": 7, "method": "elicitation/create"})) is None
    assert checker.sse_data(body(result(7))) is None


# --- the gateway's credential quoted back (SL-02) ---------------------------------------------


def test_a_quoted_credential_is_redacted_in_a_json_answer() -> None:
    answer = error(7, f"upstream rejected Authorization: Bearer {SECRET.decode()}")
    out = guard({7}, credential=SECRET).check_json(body(answer))
    assert SECRET not in out
    assert orjson.loads(out)["error"]["message"] == "upstream rejected Authorization: Bearer [redacted]"


def test_a_quoted_credential_is_redacted_in_an_sse_event() -> None:
    out = guard({7}, credential=SECRET).sse_data(body(error(7, SECRET.decode())))
    assert isinstance(out, bytes)
    assert orjson.loads(out)["error"]["message"] == "[redacted]"


def test_a_credential_of_16_bytes_is_redacted_a_shorter_one_is_not() -> None:
    # Shorter values are not credential material the gateway sends, and would match ordinary text.
    sixteen, fifteen = b"0123456789abcdef", b"0123456789abcde"
    assert b"[redacted]" in guard({7}, credential=sixteen).check_json(body(error(7, sixteen.decode())))
    raw = body(error(7, fifteen.decode()))
    assert guard({7}, credential=fifteen).check_json(raw) is raw
    assert guard({7}, credential=fifteen).sse_data(raw) is None
    assert guard({7}, credential=b"").check_json(raw) is raw
