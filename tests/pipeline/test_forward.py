"""The forwarding stage end to end, in-process: a canned upstream, a recording client.

Which upstream answers reach the client follows the Streamable HTTP transport
(transports §Sending Messages, §Listening, §Session Management): 200 to anything, 202 to
a POST without requests, 404 for an expired session, a 4xx carrying JSON-RPC errors.
Everything else, redirects first, is the gateway's own 502 and nothing of the upstream's
answer is sent (UP-03). Whatever happens, the upstream answer is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from mcp_bastion.asgi import Headers, Message
from mcp_bastion.credentials import StaticCredential, UpstreamCredential
from mcp_bastion.errors import ProtocolError, UpstreamError
from mcp_bastion.mcp.calls import call_of
from mcp_bastion.mcp.era import Era
from mcp_bastion.mcp.jsonrpc import parse_body
from mcp_bastion.mcp.sessions import SessionSealer
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.forward import Forward
from mcp_bastion.pipeline.relay import Relay
from mcp_bastion.upstream.transport import ResponseHeaders, UpstreamResponse

from .fakes import (
    POST_HEADERS,
    CannedResponse,
    CannedTransport,
    Received,
    Sent,
    exchange,
    json_response,
    principal,
    route,
)

LEGACY = Era("legacy", "2025-11-25")
REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search"}}
NOTIFICATION = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CLIENT_RESPONSE = {"jsonrpc": "2.0", "id": "srv-1", "result": {}}
RESULT = {"jsonrpc": "2.0", "id": 1, "result": {"content": []}}
RPC_ERROR = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "Unknown tool"}}
NULL_ID_ERROR = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
CAP = 64 * 1024


def _forward(max_response_bytes: int = CAP) -> Forward:
    relay = Relay(SessionSealer(b"f" * 32, ttl_seconds=60), lambda: 1e9, max_event_bytes=CAP)
    return Forward(relay, max_response_bytes=max_response_bytes)


class Setup:
    def __init__(
        self,
        *responses: Any,
        body: Any = REQUEST,
        method: str = "POST",
        session: str | None = None,
        receive: Received | None = None,
        credential: UpstreamCredential | None = None,
        transport: CannedTransport | None = None,
        **server: Any,
    ) -> None:
        self.transport = transport if transport is not None else CannedTransport(*responses)
        self.sent = Sent()
        target = route(transport=self.transport, credential=credential, **server)
        headers = POST_HEADERS if method == "POST" else {"host": "gw.example", "accept": "text/event-stream"}
        self.ex = exchange(target, method, headers, send=self.sent, receive=receive)
        self.ex.principal = principal("tools.read")
        self.ex.era = LEGACY
        self.ex.upstream_session = session
        if method == "POST":
            self.ex.body = orjson.dumps(body)
            parsed = parse_body(self.ex.body, max_depth=64, max_batch=64, allow_batch=True)
            self.ex.messages = parsed.messages
            self.ex.calls = tuple(map(call_of, parsed.messages))
            self.ex.required = tuple(() for _ in self.ex.calls)

    async def run(self, forward: Forward | None = None) -> Exchange:
        await (forward or _forward())(self.ex)
        return self.ex


def _closed_all(setup: Setup) -> bool:
    return len(setup.transport.closed) == len(setup.transport.opened) == 1


# --- 200 -------------------------------------------------------------------------------------------


async def test_a_json_answer_is_relayed_through_the_guard() -> None:
    setup = Setup(json_response(200, RESULT))
    ex = await setup.run()
    assert (ex.status, setup.sent.status) == (200, 200)
    assert setup.sent.json() == RESULT
    opened = setup.transport.opened[0]
    assert (opened.method, opened.body, opened.read_timeout) == ("POST", ex.body, 60)
    assert _closed_all(setup)


async def test_a_json_answer_for_another_request_is_not_relayed() -> None:
    # UP-04: a response to a request of another exchange (another user's) is never relayed.
    setup = Setup(json_response(200, {"jsonrpc": "2.0", "id": 2, "result": {"other": "user"}}))
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    assert _closed_all(setup)


async def test_an_answer_may_not_use_the_id_of_a_clients_response_or_a_notification() -> None:
    # Only requests are answered: a "response" to the id the client used in its own response
    # (to a server request) answers nothing the client asked (UP-04).
    foreign = {"jsonrpc": "2.0", "id": "srv-1", "result": {"injected": True}}
    setup = Setup(json_response(200, [foreign, RESULT]), body=[CLIENT_RESPONSE, NOTIFICATION, REQUEST])
    await setup.run()
    assert setup.sent.json() == [RESULT]


async def test_a_tools_list_answer_is_filtered_for_the_caller() -> None:
    tools = [{"name": "search", "annotations": {"readOnlyHint": True}}, {"name": "drop"}]
    body = {"jsonrpc": "2.0", "id": 5, "method": "tools/list"}
    setup = Setup(
        json_response(200, {"jsonrpc": "2.0", "id": 5, "result": {"tools": tools}}),
        body=body,
        tools_list="callable",
    )
    await setup.run()
    assert [t["name"] for t in setup.sent.json()["result"]["tools"]] == ["search"]


async def test_an_echoed_credential_is_redacted() -> None:
    # SL-02: an upstream error quoting the Authorization header it received.
    secret = "static-upstream-secret-0123456789"
    echo = {"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": f"bad header Bearer {secret}"}}
    setup = Setup(json_response(200, echo), credential=StaticCredential("Authorization", f"Bearer {secret}"))
    await setup.run()
    assert setup.transport.opened[0].header(b"authorization") == [f"Bearer {secret}".encode()]
    assert secret.encode() not in setup.sent.body
    assert b"[redacted]" in setup.sent.body


async def test_a_json_answer_over_the_cap_is_an_upstream_error() -> None:
    big = {"jsonrpc": "2.0", "id": 1, "result": {"blob": "x" * 2000}}
    setup = Setup(json_response(200, big))
    with pytest.raises(UpstreamError):
        await setup.run(_forward(max_response_bytes=1000))
    assert setup.sent.messages == []
    assert _closed_all(setup)


async def test_a_json_answer_over_the_cap_to_a_notification_is_not_relayed_empty() -> None:
    # UP-02: a body too big to check is never replaced by "nothing", even where nothing would do.
    big = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"blob": "x" * 2000}}
    setup = Setup(json_response(200, big), body=NOTIFICATION)
    with pytest.raises(UpstreamError, match="max_response_bytes"):
        await setup.run(_forward(max_response_bytes=1000))
    assert setup.sent.messages == []
    assert _closed_all(setup)


@pytest.mark.parametrize("content_type", [b"text/html", b"text/plain", b"application/octet-stream"])
async def test_an_unexpected_content_type_is_an_upstream_error(content_type: bytes) -> None:
    setup = Setup(CannedResponse(200, [(b"content-type", content_type)], orjson.dumps(RESULT)))
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    assert _closed_all(setup)


async def test_a_json_content_type_with_parameters_is_json() -> None:
    response = CannedResponse(
        200, [(b"content-type", b"Application/JSON; charset=utf-8")], orjson.dumps(RESULT)
    )
    setup = Setup(response)
    await setup.run()
    assert setup.sent.json() == RESULT


async def test_an_sse_answer_is_streamed() -> None:
    events = [b"id: e1\ndata: \n\n", b"data: " + orjson.dumps(RESULT) + b"\n\n"]
    setup = Setup(CannedResponse(200, [(b"content-type", b"text/event-stream")], events))
    await setup.run()
    assert setup.sent.status == 200
    assert setup.sent.headers[b"content-type"] == b"text/event-stream"
    assert setup.sent.body == b"".join(events)
    assert setup.sent.finished
    assert _closed_all(setup)


async def test_an_empty_json_answer_to_a_request_is_an_upstream_error() -> None:
    setup = Setup(CannedResponse(200, [(b"content-type", b"application/json")], b""))
    with pytest.raises(UpstreamError):
        await setup.run()
    assert _closed_all(setup)


async def test_no_content_type_is_relayed_only_as_an_empty_answer_to_no_request() -> None:
    setup = Setup(CannedResponse(200), body=NOTIFICATION)
    await setup.run()
    assert (setup.sent.status, setup.sent.body) == (200, b"")
    # UP-03: a body of undeclared type is never relayed (it could quote the gateway's credential).
    setup = Setup(CannedResponse(200, body=b"Traceback (most recent call last): ..."), body=NOTIFICATION)
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    setup = Setup(CannedResponse(200))
    with pytest.raises(UpstreamError):
        await setup.run()


# --- 202 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [NOTIFICATION, CLIENT_RESPONSE, [NOTIFICATION, CLIENT_RESPONSE]])
async def test_202_to_a_post_without_requests_is_an_empty_202(body: Any) -> None:
    setup = Setup(CannedResponse(202, [(b"content-type", b"application/json")], b""), body=body)
    ex = await setup.run()
    assert (ex.status, setup.sent.status, setup.sent.body) == (202, 202, b"")
    assert _closed_all(setup)


@pytest.mark.parametrize("body", [REQUEST, [NOTIFICATION, REQUEST]])
async def test_202_to_a_request_is_an_upstream_error(body: Any) -> None:
    # A request must get a JSON or SSE answer (transports §Sending Messages 5): a 202 leaves
    # the client waiting forever for a response that will not come.
    setup = Setup(CannedResponse(202), body=body)
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    assert _closed_all(setup)


# --- redirects, refusals, failures -----------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_never_reaches_the_client(status: int) -> None:
    location = (b"location", b"http://169.254.169.254/latest/meta-data/iam")
    setup = Setup(json_response(status, RESULT, location))
    with pytest.raises(UpstreamError) as caught:
        await setup.run()
    assert caught.value.status == 502
    assert b"169.254" not in caught.value.message.encode()
    assert setup.sent.messages == []
    assert _closed_all(setup)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "upstream refused the gateway's credential"),
        (403, "upstream refused the gateway's credential"),
        (407, "upstream answered HTTP 407"),  # proxy credentials: not the gateway's credential
    ],
)
async def test_an_upstream_refusing_the_gateways_credential_is_a_502(status: int, message: str) -> None:
    # The upstream's challenge is about the gateway's credential: relayed, it would send the
    # client to re-authorize for nothing. The operator is told what went wrong instead.
    challenge = (b"www-authenticate", b'Bearer error="invalid_token"')
    setup = Setup(json_response(status, RPC_ERROR, challenge))
    with pytest.raises(UpstreamError) as caught:
        await setup.run()
    assert (caught.value.status, caught.value.message) == (502, message)
    assert setup.sent.messages == []
    assert _closed_all(setup)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 204, 201, 100])
async def test_other_statuses_are_the_gateways_own_502(status: int) -> None:
    setup = Setup(json_response(status, RPC_ERROR))
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    assert _closed_all(setup)


# --- 404 and 4xx -----------------------------------------------------------------------------------


async def test_404_with_a_session_is_session_not_found() -> None:
    # Transports §Session Management 4: the client starts a new session on this 404.
    setup = Setup(CannedResponse(404, [(b"content-type", b"text/plain")], b"gone"), session="up-1")
    with pytest.raises(ProtocolError) as caught:
        await setup.run()
    assert (caught.value.status, caught.value.code) == (404, -32001)
    assert setup.sent.messages == []
    assert _closed_all(setup)


async def test_404_without_a_session_is_relayed_only_as_json_rpc_errors() -> None:
    setup = Setup(json_response(404, RPC_ERROR))
    await setup.run()
    assert (setup.sent.status, setup.sent.json()) == (404, RPC_ERROR)


@pytest.mark.parametrize("status", [400, 404, 405, 409, 422, 429])
async def test_a_4xx_json_rpc_error_is_relayed(status: int) -> None:
    setup = Setup(json_response(status, RPC_ERROR))
    ex = await setup.run()
    assert (ex.status, setup.sent.status, setup.sent.json()) == (status, status, RPC_ERROR)
    assert _closed_all(setup)


async def test_a_400_error_without_an_id_to_a_notification_is_relayed() -> None:
    # Transports §Sending Messages 4: "MAY comprise a JSON-RPC error response that has no id".
    setup = Setup(json_response(400, NULL_ID_ERROR), body=NOTIFICATION)
    await setup.run()
    assert (setup.sent.status, setup.sent.json()) == (400, NULL_ID_ERROR)


REQUEST_2 = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "other"}}
RESULT_2 = {"jsonrpc": "2.0", "id": 2, "result": {"content": []}}


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (REQUEST, RESULT),  # an error status with a result
        (REQUEST, {"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "m"}, "result": {}}),
        (REQUEST, {"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "error": {}}),
        ([REQUEST, REQUEST_2], [RPC_ERROR, RESULT_2]),  # one error, one result: not an error answer
    ],
)
async def test_a_4xx_without_only_json_rpc_errors_is_an_upstream_error(body: Any, answer: Any) -> None:
    setup = Setup(json_response(400, answer), body=body)
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    assert _closed_all(setup)


@pytest.mark.parametrize(
    "response",
    [
        CannedResponse(400, [(b"content-type", b"application/json")], b""),
        CannedResponse(400, [(b"content-type", b"text/html")], b"<h1>Bad Request</h1>"),
        CannedResponse(400),
        # An SSE stream is an answer, not an error (only a 200 opens one).
        CannedResponse(400, [(b"content-type", b"text/event-stream")], b"data: {}\n\n"),
    ],
)
async def test_a_4xx_without_a_json_rpc_error_body_is_an_upstream_error(response: CannedResponse) -> None:
    setup = Setup(response, body=NOTIFICATION)
    with pytest.raises(UpstreamError):
        await setup.run()
    assert setup.sent.messages == []
    assert _closed_all(setup)


# --- GET and DELETE --------------------------------------------------------------------------------


async def test_a_get_stream_has_no_read_timeout_and_no_byte_cap() -> None:
    note = b"data: " + orjson.dumps({"jsonrpc": "2.0", "method": "notifications/message"}) + b"\n\n"
    stream = CannedResponse(200, [(b"content-type", b"text/event-stream")], [note] * 40)
    setup = Setup(stream, method="GET", session="up-1")
    await setup.run(_forward(max_response_bytes=len(note) * 2))
    assert setup.transport.opened[0].read_timeout is None
    assert setup.sent.body == note * 40


@pytest.mark.parametrize(
    ("method", "status"), [("GET", 405), ("DELETE", 405), ("DELETE", 204), ("DELETE", 200)]
)
async def test_get_and_delete_answers_the_transport_defines_are_relayed_empty(
    method: str, status: int
) -> None:
    setup = Setup(
        CannedResponse(status, [(b"content-type", b"text/plain")], b"ignored"), method=method, session="up-1"
    )
    await setup.run()
    assert (setup.sent.status, setup.sent.body) == (status, b"")
    assert _closed_all(setup)


# --- close() always ---------------------------------------------------------------------------------


class FailingSend(Sent):
    async def __call__(self, message: Message) -> None:
        raise OSError("the client's socket broke")


async def test_the_answer_is_closed_when_sending_to_the_client_fails() -> None:
    setup = Setup(json_response(200, RESULT))
    setup.ex.send = FailingSend()
    with pytest.raises(OSError, match="socket broke"):
        await setup.run()
    assert _closed_all(setup)


class HangingResponse(CannedResponse):
    """An SSE answer whose first event arrives and then nothing more, until cancelled."""

    def __init__(self, first: bytes, reached: asyncio.Event) -> None:
        super().__init__(200, [(b"content-type", b"text/event-stream")])
        self._first = first
        self._reached = reached

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._first
        self._reached.set()
        await asyncio.Event().wait()
        yield b""  # pragma: no cover


async def test_a_client_disconnect_cancels_the_upstream_read_and_closes_it() -> None:
    # JR-12: an upstream call nobody waits for any more is cancelled, not left running.
    reached = asyncio.Event()
    first = b"data: " + orjson.dumps({"jsonrpc": "2.0", "method": "notifications/progress"}) + b"\n\n"
    disconnect = asyncio.Event()

    class Client(Received):
        async def __call__(self) -> Message:
            await disconnect.wait()
            return {"type": "http.disconnect"}

    setup = Setup(HangingResponse(first, reached), receive=Client())
    task = asyncio.ensure_future(setup.run())
    await asyncio.wait_for(reached.wait(), 5)
    disconnect.set()
    ex = await asyncio.wait_for(task, 5)
    assert ex.reason == "client disconnected"
    assert setup.sent.body == first
    assert _closed_all(setup)


class HangingTransport(CannedTransport):
    """An upstream that accepts the request and never answers."""

    def __init__(self, reached: asyncio.Event) -> None:
        super().__init__()
        self._reached = reached

    async def open(
        self, method: str, headers: Headers, body: bytes, read_timeout: float | None
    ) -> UpstreamResponse:
        self._reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_client_gone_before_any_answer_is_recorded_as_499() -> None:
    reached = asyncio.Event()
    disconnect = asyncio.Event()

    class Client(Received):
        async def __call__(self) -> Message:
            await disconnect.wait()
            return {"type": "http.disconnect"}

    transport = HangingTransport(reached)
    setup = Setup(transport=transport, receive=Client())
    task = asyncio.ensure_future(setup.run())
    await asyncio.wait_for(reached.wait(), 5)
    disconnect.set()
    ex = await asyncio.wait_for(task, 5)
    assert (ex.status, ex.reason) == (499, "client disconnected")
    assert setup.sent.messages == []
    assert transport.closed == []  # no answer was opened, so there is none to close


async def test_a_cancellation_that_is_not_the_clients_goes_through_and_closes() -> None:
    reached = asyncio.Event()
    setup = Setup(HangingResponse(b"data: \n\n", reached))
    task = asyncio.ensure_future(setup.run())
    await asyncio.wait_for(reached.wait(), 5)
    task.cancel()  # shutdown
    with pytest.raises(asyncio.CancelledError):
        await task
    assert setup.ex.reason == ""
    assert _closed_all(setup)


class Cycle:
    """The gateway's own server: it calls back on a disconnect instead of a watcher reading."""

    def __init__(self, *, gone: bool) -> None:
        self.body_complete = True
        self.gone = gone
        self.callbacks: list[Callable[[], None]] = []
        self.forgotten: list[Callable[[], None]] = []

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def forget_disconnect(self, callback: Callable[[], None]) -> None:
        self.forgotten.append(callback)


async def test_a_client_already_gone_sends_nothing_upstream() -> None:
    setup = Setup()
    setup.ex.cycle = Cycle(gone=True)
    ex = await setup.run()
    assert (ex.status, ex.reason) == (499, "client disconnected")
    assert setup.transport.opened == []


async def test_with_the_gateways_server_the_disconnect_callback_is_set_and_forgotten() -> None:
    receive = Received()
    setup = Setup(json_response(200, RESULT), receive=receive)
    cycle = setup.ex.cycle = Cycle(gone=False)
    await setup.run()
    assert len(cycle.callbacks) == 1
    assert cycle.forgotten == cycle.callbacks
    assert receive.calls == 0  # no watcher task reading the client


def test_response_headers_lookup_is_by_lower_case_name_first_value_wins() -> None:
    headers = ResponseHeaders([(b"content-type", b"a"), (b"content-type", b"b")])
    assert headers.first(b"content-type") == b"a"
    assert headers.get("content-type") == "a"
    assert headers.get("missing", "default") == "default"
