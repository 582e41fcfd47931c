"""Properties of the SSE rewriter, on arbitrary streams cut into arbitrary chunks.

- A stream nobody rewrites comes out byte for byte as it went in, however it is chunked.
- A rewritten stream does not depend on the chunking either (TCP decides chunk boundaries).
- The event cap holds: an oversized event is an UpstreamError, never unbounded buffering.
"""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from mcp_bastion.errors import UpstreamError
from mcp_bastion.mcp.sse import SseRewriter

from .strategies import budget, outcome

_PIECES = [
    b"data: ",
    b"data:",
    b"event: message",
    b"id: 7",
    b": keepalive",
    b"retry: 10",
    b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}',
    b"list",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b"\r\n\r\n",
    b" ",
    b"\x00",
    b"\xff",
]
streams = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=40).map(b"".join),
    st.binary(max_size=300),
)


def _chunked(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    edges = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def _run(chunks: list[bytes], rewrite: object, max_event_bytes: int = 1 << 20) -> bytes:
    sse = SseRewriter(rewrite, max_event_bytes=max_event_bytes)  # type: ignore[arg-type]
    return b"".join(sse.feed(chunk) for chunk in chunks) + sse.finish()


def _keep(data: bytes) -> None:
    return None


def _shout(data: bytes) -> bytes | None:
    return data.upper() if b"list" in data else None


@given(stream=streams, cuts=st.lists(st.integers(min_value=0), max_size=12))
@budget(500)
def test_an_unrewritten_stream_passes_byte_for_byte_however_chunked(stream: bytes, cuts: list[int]) -> None:
    assert _run(_chunked(stream, cuts), _keep) == stream


@given(stream=streams, cuts=st.lists(st.integers(min_value=0), max_size=12))
@budget(500)
def test_a_rewritten_stream_does_not_depend_on_the_chunking(stream: bytes, cuts: list[int]) -> None:
    assert _run(_chunked(stream, cuts), _shout) == _run([stream], _shout)


@given(
    stream=streams,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    cap=st.integers(1, 40),
)
@budget(500)
def test_the_event_cap_holds_and_does_not_depend_on_the_chunking(
    stream: bytes, cuts: list[int], cap: int
) -> None:
    whole = outcome(UpstreamError, _run, [stream], _keep, cap)
    chunked = outcome(UpstreamError, _run, _chunked(stream, cuts), _keep, cap)
    assert isinstance(whole, UpstreamError) == isinstance(chunked, UpstreamError)
    if not isinstance(whole, UpstreamError):
        assert whole == chunked == stream


@given(size=st.integers(1, 64), chunk=st.integers(1, 8))
@budget(100)
def test_an_event_that_never_ends_is_refused_at_the_cap(size: int, chunk: int) -> None:
    sse = SseRewriter(_keep, max_event_bytes=size)
    fed = 0
    answer: bytes | UpstreamError = b""
    while not isinstance(answer, UpstreamError) and fed <= size + 3 + chunk:
        answer = outcome(UpstreamError, sse.feed, b"x" * chunk)
        fed += chunk
    assert isinstance(answer, UpstreamError)
    assert fed <= size + 3 + chunk  # buffered at most one chunk past the cap (+3, see feed)
