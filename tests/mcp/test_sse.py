"""The SSE rewriter: events across chunk boundaries, all three line endings, the size cap."""

from __future__ import annotations

import pytest

from mcp_bastion.errors import UpstreamError
from mcp_bastion.mcp.sse import DROP, Rewrite, SseRewriter


class Recorder:
    """Rewrites data containing b"list" to upper case; leaves every other event alone."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, data: bytes) -> bytes | None:
        self.seen.append(data)
        return data.upper() if b"list" in data else None


def _run(chunks: list[bytes], *, max_event_bytes: int = 1 << 20) -> tuple[bytes, list[bytes]]:
    recorder = Recorder()
    sse = SseRewriter(recorder, max_event_bytes=max_event_bytes)
    out = b"".join(sse.feed(chunk) for chunk in chunks) + sse.finish()
    return out, recorder.seen


def _every_split(stream: bytes) -> list[list[bytes]]:
    """The stream whole, byte by byte, and cut once at every position."""
    cuts = [[stream[:i], stream[i:]] for i in range(1, len(stream))]
    return [[stream], [stream[i : i + 1] for i in range(len(stream))], *cuts]


UNTOUCHED = {
    "lf": b'id: 1\ndata: {"a":1}\n\n: keepalive\n\nevent: message\ndata: {"b":2}\n\n',
    "crlf": b'id: 1\r\ndata: {"a":1}\r\n\r\n: keepalive\r\n\r\nevent: message\r\ndata: {"b":2}\r\n\r\n',
    "cr": b'id: 1\rdata: {"a":1}\r\r: keepalive\r\revent: message\rdata: {"b":2}\r\r',
}


@pytest.mark.parametrize("ending", sorted(UNTOUCHED))
def test_untouched_streams_are_byte_identical_however_chunked(ending: str) -> None:
    stream = UNTOUCHED[ending]
    for chunks in _every_split(stream):
        out, seen = _run(chunks)
        assert out == stream
        assert seen == [b'{"a":1}', b'{"b":2}']


REWRITTEN = [
    (
        "lf",
        b'id: 1\nevent: message\ndata: {"tools":"list"}\n\ndata: keep\n\n',
        b'id: 1\nevent: message\ndata: {"TOOLS":"LIST"}\n\ndata: keep\n\n',
    ),
    (
        "crlf",
        b'id: 1\r\nevent: message\r\ndata: {"tools":"list"}\r\n\r\ndata: keep\r\n\r\n',
        # Kept fields and the new data line are joined with LF (legal SSE); the boundary stays.
        b'id: 1\nevent: message\ndata: {"TOOLS":"LIST"}\r\n\r\ndata: keep\r\n\r\n',
    ),
    (
        "cr",
        b'id: 1\revent: message\rdata: {"tools":"list"}\r\rdata: keep\r\r',
        b'id: 1\nevent: message\ndata: {"TOOLS":"LIST"}\r\rdata: keep\r\r',
    ),
]


@pytest.mark.parametrize(("ending", "stream", "expected"), REWRITTEN)
def test_rewritten_events_however_chunked(ending: str, stream: bytes, expected: bytes) -> None:
    for chunks in _every_split(stream):
        out, seen = _run(chunks)
        assert out == expected, (ending, chunks)
        assert seen == [b'{"tools":"list"}', b"keep"]


@pytest.mark.parametrize(
    ("stream", "data"),
    [
        (b"data: line one\ndata: line two\n\n", b"line one\nline two"),
        (b"data: a\r\ndata: b\r\ndata: c\r\n\r\n", b"a\nb\nc"),
        (b"data:x\n\n", b"x"),
        (b"data:  two spaces\n\n", b" two spaces"),
        (b"data:\n\n", b""),
        (b"data: a\nid: 5\ndata: b\n\n", b"a\nb"),
    ],
)
def test_multi_line_data_is_joined_with_lf(stream: bytes, data: bytes) -> None:
    out, seen = _run([stream])
    assert seen == [data]
    assert out == stream  # no "list": nothing replaced


def test_multi_line_data_is_replaced_by_one_line() -> None:
    out, _ = _run([b"id: 7\ndata: tools\ndata: list\nretry: 10\n\n"])
    assert out == b"id: 7\nretry: 10\ndata: TOOLS\nLIST\n\n"


def test_events_without_data_are_not_offered_to_the_rewriter() -> None:
    stream = b": comment\n\nevent: ping\n\nid: 3\n\n"
    out, seen = _run([stream])
    assert (out, seen) == (stream, [])


def test_finish_rewrites_a_final_event_without_terminator() -> None:
    out, seen = _run([b"data: a\n\ndata: list"])
    assert out == b"data: a\n\ndata: LIST"
    assert seen == [b"a", b"list"]


@pytest.mark.parametrize("rest", [b"", b"\n", b"  \r\n"])
def test_finish_passes_blank_leftovers_through(rest: bytes) -> None:
    out, seen = _run([b"data: list\n\n" + rest])
    assert out == b"data: LIST\n\n" + rest
    assert seen == [b"list"]


def test_feed_holds_back_incomplete_events() -> None:
    sse = SseRewriter(Recorder(), max_event_bytes=1024)
    assert sse.feed(b"data: li") == b""
    assert sse.feed(b"st\n") == b""
    assert sse.feed(b"\ndata: x") == b"data: LIST\n\n"
    assert sse.finish() == b"data: x"
    assert sse.finish() == b""


def test_oversized_incomplete_event_raises() -> None:
    sse = SseRewriter(Recorder(), max_event_bytes=100)
    assert sse.feed(b"data: " + b"x" * 60) == b""
    with pytest.raises(UpstreamError, match="oversized event") as caught:
        sse.feed(b"x" * 60)
    assert caught.value.status == 502


def test_oversized_complete_event_in_one_chunk_raises() -> None:
    sse = SseRewriter(Recorder(), max_event_bytes=100)
    with pytest.raises(UpstreamError, match="oversized event"):
        sse.feed(b"data: " + b"x" * 200 + b"\n\n")


def test_oversized_event_completed_by_a_later_chunk_raises() -> None:
    sse = SseRewriter(Recorder(), max_event_bytes=100)
    assert sse.feed(b"data: " + b"x" * 90) == b""
    with pytest.raises(UpstreamError, match="oversized event"):
        sse.feed(b"x" * 20 + b"\n\n")


def test_event_at_the_cap_passes_and_the_cap_is_per_event() -> None:
    event = b"data: " + b"x" * 94  # exactly 100 bytes before the boundary
    stream = (event + b"\n\n") * 5
    out, seen = _run([stream], max_event_bytes=100)
    assert out == stream
    assert seen == [b"x" * 94] * 5


def _drop_or_shout(data: bytes) -> Rewrite:
    """Drops the event whose data is "drop", upper-cases "list", keeps the rest."""
    if data == b"drop":
        return DROP
    return data.upper() if data == b"list" else None


@pytest.mark.parametrize("boundary", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_empty_events_keep_their_framing_beside_rewritten_and_dropped_ones(boundary: bytes) -> None:
    # A stream that opens with a boundary, and two boundaries in a row, hold empty events: each
    # is relayed as it came, whatever happens to the events around it.
    b = boundary
    stream = b + b"data: list" + b + b + b"data: drop" + b + b"data: keep" + b
    expected = b + b"data: LIST" + b + b + b"data: keep" + b
    for chunks in _every_split(stream):
        sse = SseRewriter(_drop_or_shout, max_event_bytes=1024)
        out = b"".join(sse.feed(chunk) for chunk in chunks) + sse.finish()
        assert out == expected, chunks


def test_an_event_at_the_cap_waiting_for_the_last_byte_of_its_boundary_is_not_refused() -> None:
    # 10 bytes of event and 3 of a CRLF CRLF boundary are buffered: the event is not over the cap.
    sse = SseRewriter(Recorder(), max_event_bytes=10)
    assert sse.feed(b"data: abcd\r\n\r") == b""
    assert sse.feed(b"\n") == b"data: abcd\r\n\r\n"
    sse = SseRewriter(Recorder(), max_event_bytes=10)
    with pytest.raises(UpstreamError, match="oversized event"):
        sse.feed(b"data: abcde\r\n\r")


def test_drop_reads_as_drop() -> None:
    # What assertion messages and debug logs show for a dropped event.
    assert repr(DROP) == "DROP"
