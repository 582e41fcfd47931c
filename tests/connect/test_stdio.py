"""The installed ``mcp-bastion connect`` process: stdout carries MCP lines only, logs go to stderr."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import httpx

from mcp_bastion.connect.login import HEADLESS_PROMPT

from .hostile_server import running_hostile_server
from .stdio_connect import CONNECT

TIMEOUT_S = 20


def test_garbage_gets_a_parse_error_and_a_request_its_answer(tmp_path: Path) -> None:
    with running_hostile_server() as server:
        process = subprocess.Popen(
            [CONNECT, "connect", "--headless", "--token-store", str(tmp_path / "t.json"), server.url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stderr is not None

        def browse() -> None:  # the headless login: follow the URL printed on stderr
            assert process.stderr is not None
            for line in process.stderr:
                text = line.decode()
                if text.startswith(HEADLESS_PROMPT):
                    httpx.get(text[len(HEADLESS_PROMPT) :].strip(), follow_redirects=True, trust_env=False)

        browser = threading.Thread(target=browse, daemon=True)
        browser.start()
        request = {"jsonrpc": "2.0", "id": "a\nb", "method": "initialize", "params": {}}
        process.stdin.write(b"this is not json\n" + json.dumps(request).encode() + b"\n")
        process.stdin.close()
        process.wait(timeout=TIMEOUT_S)  # connect exits once stdin ends and the answers are out
        assert process.stdout is not None
        out = process.stdout.read()
        process.stdout.close()
        browser.join(TIMEOUT_S)
        process.stderr.close()

    lines = out.decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
        {"jsonrpc": "2.0", "id": "a\nb", "result": {"ok": True}},  # the newline stays inside the line
    ]
    assert process.returncode == 0


def test_a_non_http_server_url_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [CONNECT, "connect", "--token-store", str(tmp_path / "t.json"), "file:///etc/passwd"],
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert b"must be an http(s) URL" in done.stderr
