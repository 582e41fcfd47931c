"""JR-10 / TV-16: connections that never finish a request head, bodies that trickle, heads of
100 MB. The gateway's server (server/connection.py) bounds the head in time and
size; a body read has its own deadline (edge/body.py); 408/413/431 close the connection."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

from tests.security.support import (
    call,
    closed_by_peer,
    read_response,
    request_head,
    rpc,
    stack,
)
from tests.security.test_jsonrpc_and_limits import _trickle


def test_jr10_configured_body_read_timeout_applies() -> None:
    """limits.body_read_timeout_seconds: 1 -> 408 after ~1 s (the configured value, not the default)."""
    with stack(limits={"body_read_timeout_seconds": 1}) as s:
        body = json.dumps(rpc("ping", {"pad": "x" * 200})).encode()
        stop = threading.Event()
        with socket.create_connection((s.host, s.port), timeout=15) as conn:
            conn.sendall(request_head(s, s.token(), body_length=len(body)) + b"\r\n")
            started = time.monotonic()
            threading.Thread(target=_trickle, args=(conn, body, 0.2, stop), daemon=True).start()
            try:
                status, _, _ = read_response(conn, timeout=14)
            finally:
                stop.set()
        assert status == 408
        assert time.monotonic() - started < 2.5


def test_jr10_slow_body_connection_is_closed_after_the_408() -> None:
    """After the 408 the client keeps trickling: the connection must be closed, not kept alive.
    (uvicorn's keep-alive timer is cancelled by every byte received: only `connection: close`
    on the 408 ends it.)"""
    with stack(limits={"body_read_timeout_seconds": 1}) as s:
        body = json.dumps(rpc("ping", {"pad": "x" * 2000})).encode()
        stop = threading.Event()
        with socket.create_connection((s.host, s.port), timeout=15) as conn:
            conn.sendall(request_head(s, s.token(), body_length=len(body)) + b"\r\n")
            threading.Thread(target=_trickle, args=(conn, body, 0.2, stop), daemon=True).start()
            try:
                status, _, _ = read_response(conn, timeout=14)
                assert status == 408
                assert closed_by_peer(conn, 3), "the connection stayed open after the 408"
            finally:
                stop.set()


def test_jr10_slow_request_head_is_cut_off() -> None:
    """Request head at one byte per 0.2 s: the server must close it within a header timeout.
    (uvicorn arms no timer before a first request completes: the gateway's protocol does.)"""
    with stack(limits={"header_read_timeout_seconds": 1}) as s:
        head = request_head(s, s.token(), body_length=2) + b"\r\n{}"
        stop = threading.Event()
        with socket.create_connection((s.host, s.port), timeout=15) as conn:
            threading.Thread(target=_trickle, args=(conn, head, 0.2, stop), daemon=True).start()
            try:
                assert closed_by_peer(conn, 5), "a slow request head was never cut off"
            finally:
                stop.set()


def test_jr10_idle_connection_is_cut_off() -> None:
    """A connection that sends nothing at all is closed by the head deadline too."""
    with (
        stack(limits={"header_read_timeout_seconds": 1}) as s,
        socket.create_connection((s.host, s.port), timeout=15) as conn,
    ):
        assert closed_by_peer(conn, 5), "an idle connection was never closed"


def test_tv16_100_mb_header_is_refused_promptly_and_others_are_unaffected() -> None:
    """A 100 MB request head is cut off after the first read past limits.max_header_bytes
    (431, then the connection closes mid-send), and other users keep being served meanwhile."""
    with stack() as s:
        done = threading.Event()
        outcome: list[object] = []

        body = json.dumps(rpc("ping")).encode()
        # Built before the clock starts: copying 100 MB holds the GIL, which would stall the
        # in-process server threads and be measured as the gateway's fault.
        payload = request_head(s, "x" * 100_000_000, body_length=len(body)) + b"\r\n" + body

        def attack() -> None:
            try:
                with socket.create_connection((s.host, s.port), timeout=60) as conn:
                    # The server hangs up mid-send (what we expect); its answer may still be readable.
                    with contextlib.suppress(OSError):
                        conn.sendall(payload)
                    outcome.append(read_response(conn, timeout=10)[0])
            except OSError as exc:
                outcome.append(type(exc).__name__)
            finally:
                done.set()

        started_attack = time.monotonic()
        threading.Thread(target=attack, daemon=True).start()
        worst = 0.0
        while not done.is_set():
            started = time.monotonic()
            assert s.post(call("read_thing"), token=s.token()).status_code == 200
            worst = max(worst, time.monotonic() - started)
        assert time.monotonic() - started_attack < 5, "the oversized head was not refused promptly"
        assert outcome in ([431], ["ConnectionResetError"], ["BrokenPipeError"]), outcome
        assert worst < 0.5, f"another user waited {worst:.1f}s"


def test_jr10_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() -> None:
    with stack(limits={"keep_alive_timeout_seconds": 0.5}) as s:
        body = json.dumps(rpc("ping")).encode()
        with socket.create_connection((s.host, s.port), timeout=5) as conn:
            conn.sendall(request_head(s, s.token(), body_length=len(body)) + b"\r\n" + body)
            assert read_response(conn)[0] == 200
            started = time.monotonic()
            assert closed_by_peer(conn, 5), "the idle kept-alive connection stayed open"
            assert time.monotonic() - started < 3


def test_jr10_connections_beyond_max_connections_get_503_and_the_rest_keep_working() -> None:
    with stack(limits={"max_connections": 16}) as s:
        held = [socket.create_connection((s.host, s.port), timeout=5) for _ in range(16)]
        body = json.dumps(rpc("ping")).encode()
        statuses: list[int] = []
        try:
            # The server accepts the held connections asynchronously: a request may still slip in
            # before the last of them is counted, so try a few times; the cap must bite.
            for _ in range(5):
                with socket.create_connection((s.host, s.port), timeout=5) as extra:
                    extra.sendall(request_head(s, s.token(), body_length=len(body)) + b"\r\n" + body)
                    statuses.append(read_response(extra)[0])
                if statuses[-1] == 503:
                    break
        finally:
            for conn in held:
                conn.close()
        assert statuses[-1] == 503, statuses
        assert s.post(call("read_thing"), token=s.token()).status_code == 200  # capacity is back
