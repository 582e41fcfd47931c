"""SseRewriter's HOLD: an event whose new data must be awaited stops the stream there, and
`resume` emits it and what follows, in order (the safety filters' results over SSE)."""

from __future__ import annotations

from mcp_bastion.mcp.sse import DROP, HOLD, Rewrite, SseRewriter


def _rewriter(held: set[bytes]) -> SseRewriter:
    def rewrite(data: bytes) -> Rewrite:
        return HOLD if data in held else None

    return SseRewriter(rewrite, max_event_bytes=1024)


def test_a_held_event_stops_the_stream_and_resume_goes_on_in_order() -> None:
    sse = _rewriter({b"result"})
    out = sse.feed(b"data: one\n\nid: 7\ndata: result\n\ndata: two\n\n")
    assert out == b"data: one\n\n"  # what came before the held event leaves at once
    assert sse.held
    assert sse.resume(b"screened") == b"id: 7\ndata: screened\n\ndata: two\n\n"
    assert not sse.held


def test_a_dropped_held_event_leaves_nothing_but_what_follows() -> None:
    sse = _rewriter({b"result"})
    assert sse.feed(b"data: result\r\n\r\ndata: after\r\n\r\n") == b""
    assert sse.resume(DROP) == b"data: after\r\n\r\n"


def test_two_held_events_in_one_read_are_resumed_one_at_a_time() -> None:
    sse = _rewriter({b"a", b"b"})
    assert sse.feed(b"data: a\n\ndata: b\n\ndata: c\n\n") == b""
    assert sse.resume(b"A") == b"data: A\n\n"
    assert sse.held
    assert sse.resume(b"B") == b"data: B\n\ndata: c\n\n"


def test_a_held_event_split_across_reads_is_held_when_complete() -> None:
    sse = _rewriter({b"result"})
    assert sse.feed(b"data: res") == b""
    assert not sse.held
    assert sse.feed(b"ult\n\ndata: x") == b""
    assert sse.held
    assert sse.resume(b"R") == b"data: R\n\n"
    assert sse.finish() == b"data: x"


def test_the_last_event_without_a_boundary_can_be_held_at_finish() -> None:
    sse = _rewriter({b"result"})
    assert sse.feed(b"event: message\ndata: result") == b""
    assert sse.finish() == b""
    assert sse.held
    assert sse.resume(b"R") == b"event: message\ndata: R"
