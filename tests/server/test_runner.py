"""Running the server (`mcp_bastion.server.runner`): the app's start-up and shut-down around
serving, a graceful stop, the listening socket, and worker processes sharing it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcp_bastion.server import ConnectionLimits, bind

from . import WAIT_S, RawClient, Receive, Scope, Send, TinyApp, respond, serving


def refused(port: int) -> bool:
    """Whether a new connection to `port` is refused (nothing listens there any more)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except (ConnectionRefusedError, ConnectionResetError):  # reset: the listener closed mid-handshake
        return True


# --- the app's lifespan and a graceful stop ----------------------------------------------------


class SlowStartApp(TinyApp):
    """Its start-up waits for the test's go-ahead (the gate)."""

    async def startup(self) -> None:
        await self.wait_gate()
        self.note("startup")


def test_startup_completes_before_the_first_request_is_served() -> None:
    """A request that arrives while the app starts up waits for it: the app never serves
    before its start-up has run."""

    async def check(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, f"started: {'startup' in app.events}".encode())

    app = SlowStartApp({"/check": check})
    with serving(app, wait_started=False) as served, served.client() as client:
        client.send(b"GET /check HTTP/1.1\r\nHost: t\r\n\r\n")  # accepted by the kernel's backlog
        assert not served.server.started.is_set()
        app.gate.set()
        assert client.read_response().body == b"started: True"
        assert served.server.started.is_set()
        assert app.events == ["startup"]


def test_stop_lets_an_in_flight_request_finish_then_calls_shutdown() -> None:
    """On stop a request in progress is still answered (within the grace), with
    `Connection: close`; a request arriving meanwhile gets 503 and a close, never a dropped
    connection; once nothing is in flight the socket stops accepting and the app shuts down."""

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        app.note("entered")
        await app.wait_gate()
        await respond(send, 200, b"finished")
        app.note("answered")

    app = TinyApp({"/slow": slow})
    with serving(app, grace=5.0) as served, served.client() as client:
        client.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        app.wait_for("entered")
        served.server.stop()
        assert served.server.draining.wait(WAIT_S)
        late = served.get("/late")
        assert (late.status, late.header("connection")) == (503, "close")
        assert late.body == b"server is shutting down\n"
        assert "shutdown" not in app.events  # held back by the request in flight
        app.gate.set()
        answer = client.read_response()
        assert (answer.status, answer.body) == (200, b"finished")
        assert answer.header("connection") == "close"
        assert client.read_to_eof() == b""
        served.thread.join(2.0)
        assert not served.thread.is_alive()
        assert refused(served.port)
    assert app.paths == ["/slow"]  # the late request never reached the app
    assert app.events == ["startup", "entered", "answered", "shutdown"]


def test_stop_cancels_a_request_that_outlives_the_grace_and_still_shuts_down() -> None:
    """A request still running when the grace runs out is cancelled, its client gets a 503
    (the server is stopping: another may serve a retry), and the app is shut down all the same."""

    async def forever(scope: Scope, receive: Receive, send: Send) -> None:
        app.note("entered")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            app.note("cancelled")
            raise

    app = TinyApp({"/forever": forever})
    with serving(app, grace=0.2) as served, served.client() as client:
        client.send(b"GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
        app.wait_for("entered")
        began = time.monotonic()
        served.server.stop()
        answer = client.read_response()
        elapsed = time.monotonic() - began
        assert (answer.status, answer.header("connection")) == (503, "close")
        assert 0.15 <= elapsed < 1.5
        served.thread.join(2.0)
        assert not served.thread.is_alive()
    assert app.events == ["startup", "entered", "cancelled", "shutdown"]


def test_stop_closes_idle_and_half_sent_connections_at_once() -> None:
    """Connections with no request in progress do not hold up a stop (their timeouts are long)."""
    limits = ConnectionLimits(head_timeout=30.0, keep_alive_timeout=30.0)
    app = TinyApp()
    with serving(app, limits) as served, served.client() as idle, served.client() as partial:
        idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.read_response().status == 200
        partial.send(b"GET /never-finished HTTP/1.1\r\nHost: t\r\n")
        assert app.paths == ["/"]
        served.server.stop()
        assert idle.closed_within(1.0) < 1.0
        assert partial.closed_within(1.0) < 1.0
        served.thread.join(2.0)
        assert not served.thread.is_alive()
    assert app.events == ["startup", "shutdown"]


def test_stop_after_the_server_has_stopped_is_a_no_op() -> None:
    """`stop()` may be called more than once (a signal and a `finally`, say); once the server
    is down, it has nothing left to do and must not raise."""
    app = TinyApp()
    with serving(app) as served:
        served.stop_and_join()
        served.server.stop()
    assert app.events == ["startup", "shutdown"]


# --- bind ------------------------------------------------------------------------------------


def test_bind_returns_a_listening_inheritable_socket() -> None:
    """The socket listens before any worker runs (connections queue in the backlog) and is
    inherited by forked workers."""
    with bind("127.0.0.1", 0) as sock:
        assert sock.family == socket.AF_INET
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert sock.get_inheritable()
        host, port = sock.getsockname()
        assert (host, port > 0) == ("127.0.0.1", True)
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as client:
            accepted, peer = sock.accept()
            with accepted:
                assert peer == client.getsockname()


def test_bind_takes_an_ipv6_host() -> None:
    """A host with a colon is an IPv6 address."""
    with bind("::1", 0) as sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockname()[0] == "::1"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="this kernel cannot bind dual-stack sockets")
def test_bind_on_all_ipv6_addresses_takes_ipv4_clients_too() -> None:
    """`listen.host: "::"` means every address: IPv4 clients reach it as well."""
    with bind("::", 0) as sock:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            accepted, _ = sock.accept()
            accepted.close()


def test_bind_refuses_a_port_already_listened_on() -> None:
    """Two servers on one port is a mistake to report, not to share silently."""
    with bind("127.0.0.1", 0) as first, pytest.raises(OSError, match="in use"):
        bind("127.0.0.1", first.getsockname()[1]).close()


# --- worker processes --------------------------------------------------------------------------

WORKERS = """
import os, sys
import uvloop
from mcp_bastion.server import ConnectionLimits, HttpServer, bind, run_workers

class PidApp:
    async def startup(self): pass
    async def shutdown(self): pass
    async def __call__(self, scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})

sock = bind("127.0.0.1", 0)
print(sock.getsockname()[1], flush=True)

def work():
    server = HttpServer(PidApp(), ConnectionLimits(), grace=1.0)
    uvloop.run(server.serve(sock, handle_signals=True))

sys.exit(run_workers(2, work))
"""

CRASHING_WORKERS = """
import sys
from mcp_bastion.server import bind, run_workers

sock = bind("127.0.0.1", 0)
print(sock.getsockname()[1], flush=True)

def work():
    raise SystemExit(3)

sys.exit(run_workers(2, work))
"""


def read_port(proc: subprocess.Popen[str], timeout: float = 5.0) -> int:
    """The port the script printed once its socket was bound."""
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if readable else ""
    assert line.strip().isdigit(), f"no port from the script: {line!r} (exit {proc.poll()})"
    return int(line)


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_answers(port: int, count: int) -> set[int]:
    """Worker pids from `count` requests, all sent before any is read (so both workers get to
    accept some), each on its own connection."""
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(RawClient(port, timeout=5.0)) for _ in range(count)]
        for client in clients:
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        return {int(client.read_response().body) for client in clients}


def test_run_workers_serves_from_two_processes_and_exits_0_on_sigterm() -> None:
    """Two forked workers serve the socket the parent bound; SIGTERM to the parent stops them
    (gracefully: their servers handle the signal) and the parent exits 0."""
    with subprocess.Popen(
        [sys.executable, "-c", WORKERS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            port = read_port(proc)
            pids: set[int] = set()
            deadline = time.monotonic() + 5.0
            while len(pids) < 2 and time.monotonic() < deadline:
                pids |= pid_answers(port, 8)
            assert len(pids) == 2, f"answers came from {pids} only"
            assert proc.pid not in pids
            assert {parent_of(pid) for pid in pids} == {proc.pid}
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=5.0)
            assert code == 0, proc.stderr.read() if proc.stderr else code
            assert not any(alive(pid) for pid in pids)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_run_workers_gives_up_when_workers_die_right_after_starting() -> None:
    """A worker that dies at once is not restarted in a loop: all stop, the parent exits 1."""
    with subprocess.Popen(
        [sys.executable, "-c", CRASHING_WORKERS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            read_port(proc)
            code = proc.wait(timeout=5.0)
            assert proc.stderr is not None
            errors = proc.stderr.read()
            assert code == 1, errors
            assert "right after starting" in errors
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
