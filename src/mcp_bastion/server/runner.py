"""Serving an app on a listening socket: start-up, the accept loop, a graceful stop, and worker
processes that share one socket.

The app is an ASGI callable with `startup()` and `shutdown()` coroutines (the gateway's own
lifespan, called directly: there is no lifespan message exchange to pay for or get wrong).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..asgi import Receive, Scope, Send
from .connection import ConnectionLimits, HttpConnection, ServerState
from .drain import DrainPolicy, drain

__all__ = ["HttpServer", "ServedApp", "bind", "run_workers"]

log = logging.getLogger("mcp_bastion.server")
SHUTDOWN_GRACE_SECONDS = 5.0  # in-flight requests (an open SSE stream, say) get this long on stop
CRASH_LOOP_SECONDS = 2.0  # a worker dying sooner than this after its start is not restarted


class ServedApp(Protocol):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...
    async def startup(self) -> None: ...
    async def shutdown(self) -> None: ...


class HttpServer:
    """Serves one app on one socket, in the running event loop, until `stop()`."""

    def __init__(
        self,
        app: ServedApp,
        limits: ConnectionLimits,
        *,
        grace: float = SHUTDOWN_GRACE_SECONDS,
        stream_grace: float | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.grace = grace
        self.drain = DrainPolicy(grace, grace if stream_grace is None else stream_grace)
        self.started = threading.Event()  # set once the socket accepts connections
        self.draining = threading.Event()  # set once a stop began: every answer from now closes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False  # a stop() that came before serve() started is kept
        self._state: ServerState | None = None

    async def serve(
        self, sock: socket.socket, *, handle_signals: bool = False, tls: ssl.SSLContext | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        self._loop = loop
        if self._stop_requested:
            stop.set()
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        await self.app.startup()
        state = self._state = ServerState(self.app, self.limits, loop)
        state.start()
        server = await loop.create_server(
            lambda: HttpConnection(state),
            sock=sock,
            backlog=2048,
            ssl=tls,
            # A handshake is part of reading a request head: it gets the same deadline.
            ssl_handshake_timeout=self.limits.head_timeout if tls is not None else None,
        )
        self.started.set()
        try:
            await stop.wait()
        finally:
            self.draining.set()
            await drain(state, server, self.drain)
            state.stop()
            self._loop = None
            await self.app.shutdown()

    def replace_app(
        self, app: ServedApp, limits: ConnectionLimits | None = None, drain: DrainPolicy | None = None
    ) -> tuple[ServedApp, set[asyncio.Task[None]]]:
        """Serve new requests with `app` (a config reload); returns the app replaced and the
        requests still running on it, which finish there. Call from the serving loop."""
        old, self.app = self.app, app
        self.limits = limits or self.limits
        self.drain = drain or self.drain
        state = self._state
        if state is None:
            return old, set()
        state.app, state.limits = app, self.limits
        return old, set(state.tasks)

    def open_connections(self) -> int:
        """Client connections open now (the metrics read it at scrape time)."""
        return len(self._state.connections) if self._state is not None else 0

    def stop(self) -> None:
        """Ask the server to stop (from any thread; before, during or after `serve()`)."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: stopped already
                loop.call_soon_threadsafe(stop.set)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any worker starts (workers share it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # "::" means every address, IPv4 included (as a single-worker uvicorn bound it).
    dualstack = host == "::" and socket.has_dualstack_ipv6()
    sock = socket.create_server((host, port), family=family, backlog=2048, dualstack_ipv6=dualstack)
    sock.set_inheritable(True)
    return sock


def run_workers(count: int, work: Callable[[], None]) -> int:
    """Fork `count` worker processes that each run `work()`; restart one that dies,
    stop them all on SIGINT/SIGTERM. Returns the exit status for the parent."""
    children: dict[int, float] = {}
    stopping = False

    def start() -> None:
        # SIGHUP (a reload) is blocked across the fork: the worker keeps it blocked until its
        # own loop takes it, so the parent's handler (forwarding to the workers) never runs there.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            code = 0
            try:
                work()
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        children[pid] = time.monotonic()

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def forward(signum: int, _frame: Any) -> None:
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, forward)  # every worker reloads its own config
    for _ in range(count):
        start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    status = 0
    while children:
        try:
            pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        began = children.pop(pid, None)
        if began is None or stopping:
            continue
        exit_code = os.waitstatus_to_exitcode(code)
        if time.monotonic() - began < CRASH_LOOP_SECONDS:
            log.error("worker %d exited with %d right after starting; stopping all workers", pid, exit_code)
            status = 1
            on_signal(signal.SIGTERM, None)
            continue
        log.error("worker %d exited with %d; starting a new one", pid, exit_code)
        start()
    return status
