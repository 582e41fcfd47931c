"""A plug-in's notifications and a client's cancellations, through the gateway, with the hand-written
plug-in (fixtures/stdio_plugin.py): each caller gets only its own progress, with its own token;
logs leave a shared process for no client; a cancel reaches the plug-in only for the caller's own call."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path
from typing import Any

import httpx

from mcp_bastion.stdio.process import CANCELLED
from mcp_bastion.stdio.relay import MAX_NOTES_PER_CALL

from ..support.gateway import MCP_ACCEPT
from .plugins import Caller, Stack, plugin_server, sse_messages, stdio_gateway, until

SHARED = {"process": "shared"}


def _process(stack: Stack) -> Any:
    [route] = stack.gw.gateway.routes.values()
    [process] = route.transport._pool.processes.values()  # type: ignore[attr-defined]
    return process


def _progress(messages: list[dict[str, Any]]) -> list[tuple[object, object]]:
    return [
        (m["params"]["progressToken"], m["params"]["message"])
        for m in messages
        if m.get("method") == "notifications/progress"
    ]


def _cancel(who: Caller, request_id: object) -> httpx.Response:
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}
    return who.post(note)


def _cancels(who: Caller) -> list[object]:
    return list(json.loads(who.text("cancels", "probe")))


def test_each_caller_of_a_shared_process_gets_only_its_own_progress_with_its_own_token() -> None:
    # Issue 10: both callers use the same request ids and the same progress token at once; the
    # plug-in sees gateway-unique tokens, and each notification goes back to one caller only.
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = [
                (
                    name,
                    i,
                    pool.submit(
                        who.events, "progress", i, {"progressToken": "t"}, steps=3, text=f"{name}-{i}"
                    ),
                )
                for i in range(10)
                for name, who in (("alice", alice), ("bob", bob))
            ]
            for name, i, job in jobs:
                messages = job.result()
                assert _progress(messages) == [("t", f"{name}-{i}")] * 3
                assert messages[-1]["id"] == i
                assert messages[-1]["result"]["content"][0]["text"] == f"done {name}-{i}"
                assert len(messages) == 4
        assert _process(stack).notifications.dropped == 0


def test_an_integer_token_comes_back_as_the_callers_integer() -> None:
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        messages = stack.caller("alice").events("progress", 5, {"progressToken": 5}, steps=2, text="x")
    assert _progress(messages) == [(5, "x"), (5, "x")]


def test_progress_for_a_call_no_longer_in_flight_reaches_no_one() -> None:
    # A stale token (its call answered) is dropped and counted, never handed to whoever asks next.
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        alice.events("progress", 1, {"progressToken": "a"}, text="alice")
        stale = bob.events("stale", 1, {"progressToken": "b"})
        assert stale == [
            {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "stale sent"}]}}
        ]
        assert bob.text("stale") == "stale sent"  # a call that asked for no progress gets none either
        assert _process(stack).notifications.dropped == 2


def test_a_progress_flood_is_bounded_and_the_result_still_arrives() -> None:
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice = stack.caller("alice")
        messages = alice.events("flood", 1, {"progressToken": "f"}, count=MAX_NOTES_PER_CALL + 500, text="f")
        dropped = _process(stack).notifications.dropped
    relayed = _progress(messages)
    assert 0 < len(relayed) <= MAX_NOTES_PER_CALL
    assert dropped == MAX_NOTES_PER_CALL + 500 - len(relayed)
    assert messages[-1]["result"]["content"][0]["text"] == "done f"


def test_a_shared_process_logs_reach_no_client() -> None:
    # `notifications/message` names no request in either era: from a shared process it cannot
    # be attributed, so it is logged at the gateway and counted, never relayed.
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice = stack.caller("alice")
        assert (
            alice.post(
                {"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "debug"}}
            ).json()["result"]
            == {}
        )
        messages = alice.events("log", 2, {"progressToken": "p"}, text="secret of someone")
        assert [m.get("method") for m in messages] == [None]
        assert alice.text("log", text="again") == "logged"  # a JSON answer: nothing to carry a log
        assert _process(stack).notifications.dropped == 2


def test_a_caller_of_a_shared_process_cannot_set_its_log_level_for_everyone() -> None:
    # Its logs reach no client anyway: the gateway answers `logging/setLevel` itself, so one
    # caller cannot turn another's calls verbose (or quiet) in the plug-in they share.
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        set_level = {"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "debug"}}
        assert alice.post(set_level).json() == {"jsonrpc": "2.0", "id": 1, "result": {}}
        assert bob.text("levels") == "[]"


def test_a_per_subject_process_logs_reach_its_subject_who_asked() -> None:
    with stdio_gateway(plugin_server()) as stack:
        alice = stack.caller("alice")
        assert alice.text("log", text="unasked") == "logged"  # no setLevel yet: a JSON answer
        alice.post({"jsonrpc": "2.0", "id": 1, "method": "logging/setLevel", "params": {"level": "info"}})
        messages = alice.events("log", 2, text="for alice")
    assert messages[0]["method"] == "notifications/message"
    assert messages[0]["params"]["data"] == "for alice"
    assert messages[1]["result"]["content"][0]["text"] == "logged"


def test_a_modern_caller_gets_logs_at_the_level_it_asked_for() -> None:
    # 2026-07-28 logging.mdx: logs only for a request that carries a logLevel, at or above it.
    level = {"io.modelcontextprotocol/logLevel": "warning"}
    with stdio_gateway(plugin_server()) as stack:
        alice = stack.caller("alice")
        low = alice.events("log", 1, level, modern=True, level="info", text="quiet")
        high = alice.events("log", 2, level, modern=True, level="error", text="loud")
    assert [m.get("method") for m in low] == [None]
    assert high[0]["params"]["data"] == "loud"
    assert high[1]["result"]["resultType"] == "complete"


def test_a_cancel_reaches_the_plugin_only_for_the_callers_own_call(tmp_path: Path) -> None:
    # Alice and Bob both have a call with id 1 in flight on one process. Mallory's cancel of "1"
    # and Alice's cancel of an id she has not used reach nothing; Bob's cancel of 1 reaches the
    # plug-in with Bob's gateway id, and only Bob's call ends.
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice, bob, mallory = stack.caller("alice"), stack.caller("bob"), stack.caller("mallory")
        marks = {"alice": tmp_path / "alice", "bob": tmp_path / "bob"}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = {
                name: pool.submit(who.call, "slow", 1, mark=str(marks[name]))
                for name, who in (("alice", alice), ("bob", bob))
            }
            until(lambda: all(mark.exists() and mark.read_text() for mark in marks.values()))
            seen = {name: json.loads(mark.read_text()) for name, mark in marks.items()}
            assert seen["alice"] != seen["bob"]  # the plug-in saw two distinct ids
            assert _cancel(mallory, 1).status_code == 202
            assert _cancel(alice, 2).status_code == 202
            assert _cancels(mallory) == []
            assert _cancel(bob, 1).status_code == 202
            answer = held["bob"].result(timeout=10)
            assert answer == {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": CANCELLED}}
            assert _cancels(mallory) == [seen["bob"]]
            assert not held["alice"].done()
            _cancel(alice, 1)
            assert held["alice"].result(timeout=10)["error"]["message"] == CANCELLED
            assert _cancels(mallory) == [seen["bob"], seen["alice"]]


def test_a_cancel_naming_a_string_id_does_not_match_the_same_number(tmp_path: Path) -> None:
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice = stack.caller("alice")
        mark = tmp_path / "mark"
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(alice.call, "slow", 7, mark=str(mark))
            until(lambda: mark.exists() and bool(mark.read_text()))
            _cancel(alice, "7")
            assert _cancels(alice) == []
            _cancel(alice, 7)
            assert held.result(timeout=10)["error"]["message"] == CANCELLED


def test_a_client_that_disconnects_mid_stream_cancels_its_call(tmp_path: Path) -> None:
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice = stack.caller("alice")
        mark = tmp_path / "mark"
        params = {"name": "slow", "arguments": {"mark": str(mark)}, "_meta": {"progressToken": "s"}}
        body = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
        headers = {"authorization": f"Bearer {alice.token}", "accept": MCP_ACCEPT}
        with httpx.Client(timeout=30, trust_env=False) as http:
            with http.stream("POST", alice.url, json=body, headers=headers) as response:
                text = ""
                for chunk in response.iter_text():
                    text += chunk
                    if "\n\n" in text:
                        break  # the first event: the call is in flight
        assert _progress(sse_messages(text)) == [("s", None)]
        gateway_id = json.loads(mark.read_text())
        until(lambda: _cancels(alice) == [gateway_id])


def test_two_calls_of_one_subject_with_one_id_are_not_cancelled_by_an_ambiguous_cancel(
    tmp_path: Path,
) -> None:
    # Attribution is by verified subject: which of Alice's two calls numbered 1 is meant cannot be
    # told, so neither is cancelled (cancellation is advisory: a server MAY ignore it).
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice, other_app = stack.caller("alice"), stack.caller("alice")
        marks = [tmp_path / "one", tmp_path / "two"]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = [
                pool.submit(who.call, "slow", 1, mark=str(mark))
                for who, mark in zip((alice, other_app), marks, strict=True)
            ]
            until(lambda: all(mark.exists() and mark.read_text() for mark in marks))
            _cancel(alice, 1)
            assert _cancels(alice) == []
            assert not any(job.done() for job in held)
            process = _process(stack)
            for gateway_id in (json.loads(mark.read_text()) for mark in marks):
                process._calls[gateway_id].future.set_result({"jsonrpc": "2.0", "id": 1, "result": {}})
            assert [job.result(timeout=10)["result"] for job in held] == [{}, {}]


def test_streamed_calls_give_back_the_callers_place_when_they_end() -> None:
    # A streamed answer's calls count against max_requests_per_subject until the stream ends, and
    # no longer: with a cap of 1, calls one after another all succeed.
    with stdio_gateway(plugin_server(stdio={"process": "shared", "max_requests_per_subject": 1})) as stack:
        alice = stack.caller("alice")
        for i in range(3):
            assert alice.events("progress", i, {"progressToken": i}, text="x")[-1]["id"] == i


def test_a_progress_message_quoting_the_identity_token_is_redacted() -> None:
    # SL-02 holds on the stream too: the events pass the same guard as a JSON answer.
    with stdio_gateway(plugin_server(stdio=SHARED)) as stack:
        alice = stack.caller("alice")
        messages = alice.events("progress", 1, {"progressToken": "q"}, quote_identity=True)
        token = alice.identity()
    assert _progress(messages) == [("q", "[redacted]")]
    assert token not in json.dumps(messages)


def test_a_cancel_to_a_plugin_that_stopped_reading_does_not_hang_the_client(tmp_path: Path) -> None:
    # A plug-in that stops reading stdin blocks the gateway's writes to it; a client's cancel POST
    # waits at most stop_timeout_seconds (1 s) for its line to be written, then is answered all the
    # same; unbounded, it would wait for the blocked call's 8 s timeout to stop the plug-in.
    options = {"process": "shared", "stop_timeout_seconds": 1}
    with stdio_gateway(plugin_server(stdio=options, timeout_seconds=8)) as stack:
        alice = stack.caller("alice", timeout=10)
        slow_mark, deaf_mark = tmp_path / "slow", tmp_path / "deaf"
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            held = pool.submit(alice.call, "slow", 1, mark=str(slow_mark))
            until(lambda: slow_mark.exists() and bool(slow_mark.read_text()))
            deaf = pool.submit(alice.call, "deaf", 2, mark=str(deaf_mark))
            until(deaf_mark.exists)
            process = _process(stack)
            big = pool.submit(alice.call, "echo", 3, text="x" * 600_000)  # fills the pipe: its write blocks
            until(process._write_lock.locked)
            started = time.monotonic()
            assert _cancel(alice, 1).status_code == 202
            assert time.monotonic() - started < 4
            assert held.result(timeout=10)["error"]["message"] == CANCELLED
            assert "error" in big.result(timeout=10)
            assert "error" in deaf.result(timeout=10)


def test_a_streamed_call_that_times_out_ends_its_stream_with_its_error(tmp_path: Path) -> None:
    # Once the stream has begun there is no 504 to send: the call's JSON-RPC error closes it, and
    # the plug-in is told the call is cancelled.
    with stdio_gateway(plugin_server(stdio=SHARED, timeout_seconds=1)) as stack:
        alice = stack.caller("alice")
        mark = tmp_path / "mark"
        messages = alice.events("slow", 4, {"progressToken": "s"}, mark=str(mark))
        assert _progress(messages) == [("s", None)]
        assert messages[-1] == {
            "jsonrpc": "2.0",
            "id": 4,
            "error": {"code": -32603, "message": "the stdio plug-in did not answer in time"},
        }
        until(lambda: _cancels(alice) == [json.loads(mark.read_text())])
