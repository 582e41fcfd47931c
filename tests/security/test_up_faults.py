"""UP-01 … UP-04: upstreams that hang, flood, fail or answer for someone else.

The real gateway over loopback in front of an upstream that misbehaves on purpose
(tests/support/faulty_upstream.py, recording_upstream.py for the hang).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ..support.faulty_upstream import SECRET_HOST, FaultyUpstream
from ..support.gateway import RunningGateway, running_gateway
from ..support.issuer import LocalIssuer, running_issuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import serve_asgi

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
CAP = 1_048_576  # limits.max_response_bytes for these tests


@dataclass
class Stack:
    issuer: LocalIssuer
    upstream: FaultyUpstream
    gateway: RunningGateway
    http: httpx.Client

    def call(self, tool: str, rid: object = 41) -> httpx.Response:
        token = self.issuer.token(audience=self.gateway.url("up"), scopes="tools.read")
        body = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": "tools/call",
            "params": {"name": tool, "arguments": {}},
        }
        return self.http.post(
            self.gateway.url("up"),
            content=json.dumps(body),
            headers={**HEADERS, "authorization": f"Bearer {token}"},
        )


@pytest.fixture
def stack() -> Iterator[Stack]:
    upstream = FaultyUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {
            "servers": [{"name": "up", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 2}],
            "limits": {"max_response_bytes": CAP},
        }
        with running_gateway(issuer.issuer, {}, **overrides) as gw, httpx.Client(timeout=20) as http:
            yield Stack(issuer, upstream, gw, http)


def _gateway_error(response: httpx.Response, status: int, rid: object) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["id"] == rid
    assert SECRET_HOST not in response.text
    error = doc["error"]
    assert isinstance(error, dict)
    return error


def test_up01_upstream_that_never_answers_gets_a_jsonrpc_error_with_the_id() -> None:
    upstream = RecordingUpstream()
    with running_issuer() as issuer, serve_asgi(upstream) as up:
        overrides = {"servers": [{"name": "rec", "upstream": f"{up.base_url}/mcp", "timeout_seconds": 1}]}
        with running_gateway(issuer.issuer, {}, **overrides) as gw, httpx.Client(timeout=20) as http:
            token = issuer.token(audience=gw.url("rec"))
            body = {
                "jsonrpc": "2.0",
                "id": "h-1",
                "method": "tools/call",
                "params": {"name": "hang", "arguments": {}},
            }
            response = http.post(
                gw.url("rec"),
                content=json.dumps(body),
                headers={**HEADERS, "authorization": f"Bearer {token}"},
            )
            error = _gateway_error(response, 504, "h-1")
            assert error["code"] == -32001
            assert upstream.cancelled.wait(5), "the hung upstream connection was not closed"
            event = gw.audit.wait_for(lambda e: e.target == "hang")
            assert (event.decision, event.status) == ("error", 504)


def test_up02_a_huge_json_answer_is_cut_off(stack: Stack) -> None:
    error = _gateway_error(stack.call("huge_json"), 502, 41)
    assert "max_response_bytes" in str(error["message"])
    assert stack.upstream.aborted.wait(5), "the upstream kept sending after the cap"


def test_up02_an_endless_sse_answer_is_cut_off(stack: Stack) -> None:
    with stack.http.stream(
        "POST",
        stack.gateway.url("up"),
        content=json.dumps(
            {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "endless_sse"}}
        ),
        headers={
            **HEADERS,
            "authorization": f"Bearer {stack.issuer.token(audience=stack.gateway.url('up'))}",
        },
    ) as response:
        received = sum(len(chunk) for chunk in response.iter_raw())
    assert received <= CAP + 65_536
    assert stack.upstream.aborted.wait(5), "the upstream kept sending after the cap"
    assert stack.gateway.audit.wait_for(lambda e: e.target == "endless_sse").decision == "error"


@pytest.mark.parametrize("fault", ["html_502", "stack_trace_500", "invalid_json", "untyped_body"])
def test_up03_upstream_garbage_becomes_a_sanitized_error(stack: Stack, fault: str) -> None:
    error = _gateway_error(stack.call(fault), 502, 41)
    assert error["code"] == -32603
    assert "Traceback" not in str(error)


def test_up04_a_response_for_another_id_is_not_relayed(stack: Stack) -> None:
    error = _gateway_error(stack.call("wrong_id"), 502, 41)
    assert "another request" in str(error["message"])


def test_up04_sse_responses_with_unknown_or_repeated_ids_are_dropped(stack: Stack) -> None:
    response = stack.call("sse_wrong_and_duplicate_ids", rid=5)
    assert response.status_code == 200
    messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    assert [m["id"] for m in messages] == [5]
    assert messages[0]["result"]["content"][0]["text"] == "first"


@pytest.mark.parametrize("fault", ["wrong_id", "error_wrong_id", "batch_only_for_others"])
def test_up04_an_answer_only_for_other_requests_is_never_relayed(stack: Stack, fault: str) -> None:
    error = _gateway_error(stack.call(fault), 502, 41)
    assert error["code"] == -32603


def test_up04_a_batch_answer_keeps_only_the_answer_to_this_request(stack: Stack) -> None:
    # Results and errors for other callers' requests, and a second answer to ours, are dropped.
    response = stack.call("batch_for_others")
    assert response.status_code == 200
    assert SECRET_HOST not in response.text
    assert response.json() == [
        {"jsonrpc": "2.0", "id": 41, "result": {"content": [{"type": "text", "text": "mine"}]}}
    ]


def test_up04_sse_errors_with_unknown_or_repeated_ids_are_dropped(stack: Stack) -> None:
    response = stack.call("sse_errors_wrong_and_duplicate_ids", rid=5)
    assert response.status_code == 200
    assert SECRET_HOST in response.text  # the one error that answers this request is relayed
    messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    assert [(m["id"], "error" in m) for m in messages] == [(5, True)]


@pytest.mark.parametrize("fault", ["bare_string", "bare_number", "neither_request_nor_response"])
def test_up03_json_that_is_not_json_rpc_becomes_a_sanitized_error(stack: Stack, fault: str) -> None:
    error = _gateway_error(stack.call(fault), 502, 41)
    assert error["code"] == -32603


def test_up03_sse_events_that_are_not_json_rpc_messages_are_dropped(stack: Stack) -> None:
    response = stack.call("sse_not_json_rpc")
    assert response.status_code == 200
    assert SECRET_HOST not in response.text
    messages = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    assert messages == [
        {"jsonrpc": "2.0", "id": 41, "result": {"content": [{"type": "text", "text": "mine"}]}}
    ]


def test_a_well_behaved_answer_still_passes_unchanged(stack: Stack) -> None:
    response = stack.call("fine")
    assert response.status_code == 200
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 41,
        "result": {"content": [{"type": "text", "text": "fine"}]},
    }


def test_up03_an_accepted_answer_to_a_request_is_the_gateways_502(stack: Stack) -> None:
    # 202 answers notifications and responses only (transports §Sending Messages); to a request
    # it means no response will come: the client gets our error, never the 202's body.
    response = stack.call("accepted_with_body", rid=43)
    assert response.status_code == 502
    assert response.json()["id"] == 43
    assert SECRET_HOST not in response.text


@pytest.mark.parametrize("fault", ["redirect", "redirect_with_json", "not_found_404", "teapot_418"])
def test_an_upstream_status_the_transport_does_not_define_is_the_gateways_502(
    stack: Stack, fault: str
) -> None:
    # A redirect (to a cloud metadata address, say) must never reach a client, whose SDK could
    # follow it with its token; nor may any other status MCP gives no meaning to here.
    response = stack.call(fault, rid=44)
    assert response.status_code == 502
    assert "location" not in response.headers
    doc = response.json()
    assert doc["id"] == 44
    assert doc["error"]["code"] == -32603
    assert SECRET_HOST not in response.text
    event = stack.gateway.audit.wait_for(lambda e: e.target == fault)
    assert (event.decision, event.status) == ("error", 502)


def test_a_4xx_carrying_a_json_rpc_error_for_this_request_is_relayed(stack: Stack) -> None:
    response = stack.call("rpc_error_400", rid=45)
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 45,
        "error": {"code": -32602, "message": "Invalid params: no such argument"},
    }


def test_a_4xx_carrying_a_result_is_the_gateways_502(stack: Stack) -> None:
    response = stack.call("result_with_400", rid=46)
    assert response.status_code == 502
    assert SECRET_HOST not in response.text


def test_upstream_that_drops_mid_sse_ends_the_stream_and_is_audited(stack: Stack) -> None:
    response = stack.call("sse_drop", rid=77)
    assert response.status_code == 200
    events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    assert [e.get("method") for e in events] == ["notifications/progress"]  # what arrived, then the end
    event = stack.gateway.audit.wait_for(lambda e: e.target == "sse_drop")
    assert (event.decision, event.reason) == ("error", "upstream connection failed mid-response")
    assert stack.call("fine").status_code == 200  # and the gateway carries on
