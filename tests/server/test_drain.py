"""A graceful stop (`mcp_bastion.server.drain`) over raw loopback sockets: what each kind of
connection sees on the wire while the server drains."""

from __future__ import annotations

import asyncio
import time

from . import WAIT_S, Receive, Scope, Send, TinyApp, respond, serving


async def _gated(scope: Scope, receive: Receive, send: Send, app: TinyApp) -> None:
    app.note("slow entered")
    await app.wait_gate()
    await respond(send, 200, b"slow done")


def _stream_app() -> TinyApp:
    """`/slow` answers once the gate opens; `/events` is an endless event stream (a GET)."""

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await _gated(scope, receive, send, app)

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        app.note("stream open")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            app.note("stream stopped")
            raise

    app = TinyApp({"/slow": slow, "/events": events})
    return app


def test_a_request_on_an_idle_kept_alive_connection_during_the_drain_gets_503_and_close() -> None:
    # Before: idle connections were closed at once, so a request the client was sending on one
    # was dropped unanswered (issue 12: 16 such requests under load).
    app = _stream_app()
    with serving(app, grace=5.0) as served, served.client() as busy, served.client() as idle:
        idle.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
        first = idle.read_response()
        assert (first.status, first.header("connection")) == (200, None)  # kept alive
        busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        app.wait_for("slow entered")
        served.server.stop()
        assert served.server.draining.wait(WAIT_S)
        idle.send(b"POST /second HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
        late = idle.read_response()
        assert (late.status, late.header("connection")) == (503, "close")
        assert idle.closed_within(WAIT_S) < WAIT_S
        app.gate.set()
        done = busy.read_response()
        assert (done.status, done.body, done.header("connection")) == (200, b"slow done", "close")
        served.thread.join(WAIT_S)
    assert app.paths == ["/first", "/slow"]  # the request during the drain never reached the app


def test_an_endless_stream_is_ended_cleanly_after_the_stream_grace_while_others_finish() -> None:
    app = _stream_app()
    with (
        serving(app, grace=10.0, stream_grace=0.2) as served,
        served.client() as stream,
        served.client() as busy,
    ):
        stream.send(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        app.wait_for("stream open")
        busy.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        app.wait_for("slow entered")
        began = time.monotonic()
        served.server.stop()
        # A complete chunked response (its last chunk arrived), then the close: not a cut stream.
        answer = stream.read_response()
        ended = time.monotonic() - began
        assert answer.status == 200
        assert answer.header("transfer-encoding") == "chunked"
        assert answer.body == b"data: one\n\n"
        assert answer.raw.endswith(b"0\r\n\r\n")
        assert stream.read_to_eof() == b""
        assert 0.15 <= ended < WAIT_S
        app.wait_for("stream stopped")
        # The other request was not cut short by the stream's grace.
        assert served.thread.is_alive()
        app.gate.set()
        done = busy.read_response()
        assert (done.status, done.body) == (200, b"slow done")
        served.thread.join(WAIT_S)
        assert not served.thread.is_alive()


def test_a_stream_still_open_when_the_grace_ends_is_ended_cleanly_too() -> None:
    app = _stream_app()
    with serving(app, grace=0.2) as served, served.client() as stream:
        stream.send(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        app.wait_for("stream open")
        served.server.stop()
        answer = stream.read_response()
        assert answer.raw.endswith(b"0\r\n\r\n")
        assert stream.read_to_eof() == b""
        served.thread.join(WAIT_S)
        assert not served.thread.is_alive()


def test_a_stop_with_nothing_in_flight_closes_at_once() -> None:
    app = _stream_app()
    with serving(app, grace=10.0) as served, served.client() as idle:
        idle.send(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle.read_response().status == 200
        began = time.monotonic()
        served.server.stop()
        assert idle.closed_within(WAIT_S) < WAIT_S
        served.thread.join(WAIT_S)
        assert not served.thread.is_alive()
        assert time.monotonic() - began < WAIT_S  # the 10 s grace is a bound, not a wait
