"""Hostile framing through the whole gateway: banners, NUL bytes, non-JSON lines, a 50 MB line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .plugins import plugin_server, stdio_gateway

FIFTY_MB = 50 * 1_048_576


def test_banners_nul_bytes_and_non_json_lines_are_skipped() -> None:
    with stdio_gateway(plugin_server("--banner")) as stack:
        alice = stack.caller("alice")
        assert alice.text("echo", text="hello") == "hello"
        assert alice.text("noise", 2) == "after noise"


def test_a_50_mb_line_fails_its_call_and_nothing_else() -> None:
    # Shared: the line's tail names the call (the id is written last, as the TypeScript SDK
    # does), so only that call fails; the process goes on serving everyone.
    server = plugin_server(stdio={"process": "shared", "max_line_bytes": 1_048_576})
    with stdio_gateway(server) as stack:
        alice, bob = stack.caller("alice", timeout=60), stack.caller("bob")
        pid = bob.text("pid")
        answer = alice.call("big", 8, bytes=FIFTY_MB)
        assert answer["id"] == 8
        assert "max_line_bytes" in answer["error"]["message"]
        assert bob.text("pid", 2) == pid
        assert alice.text("echo", 9, text="still here") == "still here"


def test_an_answer_within_the_line_cap_passes() -> None:
    with stdio_gateway(plugin_server(stdio={"max_line_bytes": 1_048_576})) as stack:
        assert len(stack.caller("alice").text("big", bytes=900_000)) == 900_000


def test_the_plugin_gets_only_the_listed_environment() -> None:
    server = plugin_server(env={"GREETING": "hi", "API_KEY": {"env": "STDIO_TEST_KEY"}})
    # The secret is read at start-up like every other one (the test passes it pre-read).
    with stdio_gateway(server, secrets={"servers[0].env.API_KEY": "k"}) as stack:
        names = stack.caller("alice").text("env").split(",")
    # Python adds LC_CTYPE on its own when the locale is unset; nothing of the gateway's leaks.
    assert set(names) - {"LC_CTYPE"} == {"GREETING", "API_KEY"}
    assert sys.executable  # the command is an absolute path: no PATH needed


def test_arguments_reach_the_plugin_verbatim_never_through_a_shell(tmp_path: Path) -> None:
    hostile = ["$(touch pwned)", "; touch pwned2", "`touch pwned3`", "*"]
    with stdio_gateway(plugin_server(*hostile, cwd=str(tmp_path))) as stack:
        argv = json.loads(stack.caller("alice").text("argv"))
    assert argv == hostile
    assert list(tmp_path.iterdir()) == []
