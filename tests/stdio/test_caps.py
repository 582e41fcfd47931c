"""The bounds a stream of callers cannot push past: processes per server, calls per caller, idle stop."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from .plugins import STOPPED, alive, eventually, plugin_server, stdio_gateway, until

HOLD = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "hold"}}


def _hold(mark: Path) -> dict[str, object]:
    return {**HOLD, "params": {"name": "hold", "arguments": {"mark": str(mark)}}}


def test_an_idle_process_makes_room_and_a_busy_one_refuses_with_503(tmp_path: Path) -> None:
    mark = tmp_path / "held"
    with stdio_gateway(plugin_server(stdio={"max_processes": 1}, timeout_seconds=2)) as stack:
        alice, bob, carol = stack.caller("alice"), stack.caller("bob"), stack.caller("carol")
        alice_pid = int(alice.text("pid"))
        bob.text("pid")  # alice's idle process is stopped to make room
        until(lambda: not alive(alice_pid))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(bob.post, _hold(mark))
            until(mark.exists)
            refused = carol.post(HOLD)
            assert refused.status_code == 503
            assert "busy" in refused.json()["error"]["message"]
            assert held.result(timeout=30).status_code == 504


def test_calls_in_flight_per_caller_are_capped(tmp_path: Path) -> None:
    mark = tmp_path / "held"
    limits = {"max_requests_per_subject": 1, "restart_backoff_seconds": 0.05}
    with stdio_gateway(plugin_server(stdio=limits, timeout_seconds=2)) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(alice.post, _hold(mark))
            until(mark.exists)
            assert alice.post(HOLD).status_code == 503
            assert bob.text("echo", text="unaffected") == "unaffected"
            held.result(timeout=30)
        # The count went back down (the silent process was replaced meanwhile).
        assert eventually(alice, "echo", text="again") == "again"


def test_an_idle_process_is_stopped() -> None:
    with stdio_gateway(plugin_server(stdio={"idle_timeout_seconds": 0.2})) as stack:
        pid = int(stack.caller("alice").text("pid"))
        until(lambda: not alive(pid))


def test_an_oversize_line_nobody_can_be_matched_to_restarts_only_that_process() -> None:
    # It may have been anyone's answer: the process is replaced, and its calls fail at once.
    with stdio_gateway(
        plugin_server(stdio={"max_line_bytes": 4096, "restart_backoff_seconds": 0.05})
    ) as stack:
        alice, bob = stack.caller("alice"), stack.caller("bob")
        alice_pid, bob_pid = int(alice.text("pid")), bob.text("pid")
        junk = alice.call("junk", 2, bytes=100_000)
        assert junk["error"]["message"].removeprefix("Upstream error: ") in STOPPED
        until(lambda: not alive(alice_pid))
        assert bob.text("pid", 3) == bob_pid


def test_an_oversize_answer_is_matched_to_its_call_by_its_id() -> None:
    with stdio_gateway(plugin_server(stdio={"max_line_bytes": 4096})) as stack:
        alice = stack.caller("alice")
        pid = alice.text("pid")
        answer = alice.call("big", 2, bytes=100_000)
        assert "max_line_bytes" in answer["error"]["message"]
        assert alice.text("pid", 3) == pid  # attributed: the process stays
