"""A graceful stop of a real `mcp-bastion serve` subprocess, seen through raw sockets.

Issue 12 measured the old stop under load: requests that arrived while it stopped were
dropped unanswered (16 of them). SIGTERM now drains: answers in flight finish with
`Connection: close`, a request arriving meanwhile gets 503 with `Connection: close`, an open
event stream is ended cleanly after `listen.drain.stream_grace_seconds`, and the process
exits 0 once nothing is in flight.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..server import RawClient
from ..support.held_upstream import HeldUpstream
from ..support.serve_process import ServeProcess, free_port, serve_process, write_config
from ..support.servers import serve_asgi

WAIT_S = 10.0
ACCEPT = "application/json, text/event-stream"


@pytest.fixture
def upstream() -> Iterator[tuple[HeldUpstream, str]]:
    held = HeldUpstream()
    with serve_asgi(held) as up:
        try:
            yield held, f"{up.base_url}/mcp"
        finally:
            held.release.set()  # a held answer must not hold up the upstream's own stop


def _config(tmp_path: Path, port: int, upstream_url: str, **drain: float) -> Path:
    return write_config(
        tmp_path / "bastion.yaml",
        {
            "public_base_url": f"http://127.0.0.1:{port}",
            "listen": {"port": port, "drain": drain},
            "audit": {"sink": "none"},
            "servers": [{"name": "demo", "upstream": upstream_url, "auth": False}],
        },
    )


def _post(client: RawClient, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    client.send(
        f"POST /demo/mcp HTTP/1.1\r\nHost: 127.0.0.1:{client.sock.getpeername()[1]}\r\nContent-Type: application/json\r\n".encode()
        + f"Accept: {ACCEPT}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )


def _call(tool: str, id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}}


def _draining(served: ServeProcess) -> None:
    served.wait_for_text("draining", WAIT_S)


def test_sigterm_drains_serve_without_dropping_a_request(
    tmp_path: Path, upstream: tuple[HeldUpstream, str]
) -> None:
    held, upstream_url = upstream
    port = free_port()
    config = _config(tmp_path, port, upstream_url, grace_seconds=20, stream_grace_seconds=0.5)
    with (
        serve_process(config, port) as served,
        RawClient(port, WAIT_S) as idle,
        RawClient(port, WAIT_S) as busy,
        RawClient(port, WAIT_S) as stream,
    ):
        # A kept-alive connection, idle when the stop comes.
        _post(idle, _call("quick"))
        first = idle.read_response()
        assert first.status == 200
        assert first.header("connection") is None
        # A call in flight, held by the upstream.
        _post(busy, _call("slow", 2))
        assert held.slow_entered.wait(WAIT_S)
        # An open event stream (GET).
        stream.send(f"GET /demo/mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {ACCEPT}\r\n\r\n".encode())
        head = stream.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding: chunked" in head.lower()
        stream.read_until(b"notifications/message")

        served.signal(signal.SIGTERM)
        _draining(served)

        # A request on the idle kept-alive connection: answered 503 with a close, not dropped.
        _post(idle, _call("quick", 3))
        late = idle.read_response()
        assert (late.status, late.header("connection")) == (503, "close")
        assert idle.read_to_eof() == b""
        # A new connection meanwhile: answered the same way.
        with RawClient(port, WAIT_S) as newcomer:
            _post(newcomer, _call("quick", 4))
            refused = newcomer.read_response()
            assert (refused.status, refused.header("connection")) == (503, "close")
        # The event stream is ended cleanly: its last chunk, then the close.
        rest = stream.read_to_eof()
        assert rest.endswith(b"\r\n0\r\n\r\n")
        assert held.stream_closed.wait(WAIT_S)  # the upstream stream was closed too
        assert served.process.poll() is None  # still draining: the call is in flight

        # The call in flight finishes, and says it is the connection's last answer.
        held.release.set()
        done = busy.read_response()
        assert done.status == 200
        assert done.header("connection") == "close"
        assert json.loads(done.body)["result"]["content"][0]["text"] == "held done tools/call"
        assert busy.read_to_eof() == b""
        assert served.stop() == 0
    assert "still running" not in served.log  # nothing was cut short by the grace
    assert "drained" in served.log


def test_a_call_still_running_at_the_end_of_the_grace_gets_503(
    tmp_path: Path, upstream: tuple[HeldUpstream, str]
) -> None:
    held, upstream_url = upstream
    port = free_port()
    config = _config(tmp_path, port, upstream_url, grace_seconds=0.5, stream_grace_seconds=0.5)
    with serve_process(config, port) as served, RawClient(port, WAIT_S) as busy:
        _post(busy, _call("slow"))
        assert held.slow_entered.wait(WAIT_S)
        served.signal(signal.SIGTERM)
        answer = busy.read_response()
        assert (answer.status, answer.header("connection")) == (503, "close")
        assert served.process.wait(WAIT_S) == 0
    assert "stopping 1 request(s) still running" in served.log
