"""Run real servers on loopback for tests: ASGI apps under uvicorn, on ephemeral ports.

Each server runs in its own thread with its own event loop, so a test's client and the
server never share a loop (as in production) and a blocked test cannot starve the server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop

from mcp_bastion.server import HttpServer

STARTUP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


async def read_body(receive: Any) -> bytes:
    """The whole request body of an ASGI HTTP request (test fixtures read everything)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def bind_loopback(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on an ephemeral loopback port (port known before the app is built)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def serve_asgi(
    app: Any, *, sock: socket.socket | None = None, host: str = "127.0.0.1", **uvicorn_options: Any
) -> Iterator[RunningServer]:
    """Serve ``app`` with uvicorn on loopback until the block exits."""
    sock = sock or bind_loopback(host)
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "auto",
        "timeout_graceful_shutdown": 2,
        "interface": "asgi3",
    }
    options.update(uvicorn_options)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_started(server, thread)
        yield RunningServer(host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    done = threading.Event()

    def poll() -> None:
        while not server.started and thread.is_alive():
            if done.wait(0.01):
                return
        done.set()

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    watcher.join(STARTUP_TIMEOUT_S)
    done.set()
    if not server.started:
        raise RuntimeError("uvicorn did not start within the timeout")


def run_in_thread(server: HttpServer, sock: socket.socket) -> tuple[threading.Thread, list[BaseException]]:
    """Run one of the gateway's own servers on `sock` in a daemon thread with its own uvloop
    loop. A failure is collected in the returned list (and releases `server.started`)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            uvloop.run(server.serve(sock))
        except BaseException as exc:  # surfaced to the caller
            failure.append(exc)
            server.started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, failure


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections while the block runs: bound, never listening,
    so the kernel cannot hand it to a server the test starts meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
