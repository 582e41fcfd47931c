"""The pooled HTTP/1.1 client against real sockets: reuse, streaming, caps, stale connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from mcp_bastion.errors import UpstreamError, UpstreamTimeout
from mcp_bastion.upstream.http11 import Http11Pool, Origin

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
Behaviour = Callable[
    [int, int], bytes | None
]  # (connection number, request number on it) -> reply; None = hang up


class Server:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number, served = self.connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(h.split(b":")[1])
                        for h in head.split(b"\r\n")
                        if h.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                served += 1
                self.requests += 1
                reply = self.behaviour(number, served)
                if reply is None:
                    break  # close without answering
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(behaviour: Behaviour) -> AsyncIterator[tuple[Server, Origin]]:
    server = Server(behaviour)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, Origin.parse(f"http://127.0.0.1:{port}/mcp")
    finally:
        listener.close()
        await listener.wait_closed()


async def _call(pool: Http11Pool, origin: Origin, timeout: float = 2) -> bytes | None:
    response = await pool.send(origin, b"POST", [(b"content-type", b"application/json")], b"{}", timeout)
    try:
        return await response.read_all(timeout, 1 << 20)
    finally:
        pool.release(response)


async def test_connections_are_reused() -> None:
    async for server, origin in _serve(lambda conn, n: OK):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        assert [await _call(pool, origin) for _ in range(5)] == [b"{}"] * 5
        assert (server.connections, server.requests) == (1, 5)
        await pool.aclose()


async def test_a_stale_kept_alive_connection_is_retried_once_on_a_fresh_one() -> None:
    # The first connection answers once, then hangs up on the next request without a byte:
    # what an upstream's keep-alive timeout racing our reuse looks like.
    async for server, origin in _serve(lambda conn, n: OK if (conn, n) != (1, 2) else None):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        assert await _call(pool, origin) == b"{}"
        assert await _call(pool, origin) == b"{}"
        assert server.connections == 2
        await pool.aclose()


async def test_a_fresh_connection_that_hangs_up_is_an_error_not_a_retry_loop() -> None:
    async for server, origin in _serve(lambda conn, n: None):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        with pytest.raises(UpstreamError):
            await _call(pool, origin)
        assert server.requests == 1
        await pool.aclose()


async def test_a_slow_upstream_times_out_and_is_not_retried() -> None:
    def hang(conn: int, n: int) -> bytes | None:
        return OK if n == 1 else b""  # second request: no answer at all

    async for server, origin in _serve(hang):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        assert await _call(pool, origin) == b"{}"
        with pytest.raises(UpstreamTimeout):
            await _call(pool, origin, timeout=0.3)
        assert server.requests == 2
        await pool.aclose()


async def test_a_body_past_the_cap_is_not_collected() -> None:
    big = b"HTTP/1.1 200 OK\r\ncontent-length: 3000000\r\n\r\n" + b"x" * 3_000_000
    async for _, origin in _serve(lambda conn, n: big):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        response = await pool.send(origin, b"POST", [], b"{}", 2)
        assert await response.read_all(2, 1_000_000) is None
        pool.release(response)  # not read to the end: the connection is closed, not pooled
        await pool.aclose()


async def test_an_endless_response_head_fails_instead_of_filling_memory() -> None:
    flood = b"HTTP/1.1 200 OK\r\n" + b"x-flood: " + b"a" * 100 + b"\r\n" * 1 + (b"x-more: yes\r\n" * 50_000)
    async for _, origin in _serve(lambda conn, n: flood):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        with pytest.raises(UpstreamError, match="too many response headers"):
            await _call(pool, origin)
        await pool.aclose()


@pytest.mark.parametrize(
    "header",
    [
        (b"x-a", b"one\r\nx-injected: two"),
        (b"x-a", b"bare\nline feed"),
        (b"x-a", b"bare\rcarriage return"),
        (b"x-a\r\nx-b", b"name with a line break"),
    ],
)
async def test_a_header_that_would_split_the_request_is_refused_before_sending(
    header: tuple[bytes, bytes],
) -> None:
    async for server, origin in _serve(lambda _c, _r: OK):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        with pytest.raises(UpstreamError, match="line break"):
            await pool.send(origin, b"POST", [(b"content-type", b"application/json"), header], b"{}", 2)
        assert server.requests == 0
        await pool.aclose()


async def test_a_connection_whose_upstream_sends_extra_bytes_after_an_answer_is_not_reused() -> None:
    """Bytes after a complete response (a second, unrequested answer) taint the connection."""
    async for server, origin in _serve(lambda _c, _r: OK + b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        assert await _call(pool, origin) == b"{}"
        assert await _call(pool, origin) == b"{}"
        assert server.connections == 2  # the first connection was dropped, not reused
        await pool.aclose()


@pytest.mark.parametrize(
    "interim", [b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n", b"HTTP/1.1 100 Continue\r\n\r\n"]
)
async def test_an_interim_answer_is_skipped_and_the_final_one_is_the_response(interim: bytes) -> None:
    """A 1xx before the final answer (in the same segment or not) is not the response: its
    headers are dropped and the connection stays reusable."""
    async for server, origin in _serve(lambda _c, _r: interim + OK):
        pool = Http11Pool(max_per_origin=4, connect_timeout=2)
        response = await pool.send(origin, b"POST", [(b"content-type", b"application/json")], b"{}", 2)
        assert response.status == 200
        assert all(name != b"link" for name, _ in response.headers)
        assert await response.read_all(2, 1 << 20) == b"{}"
        pool.release(response)
        assert await _call(pool, origin) == b"{}"
        assert server.connections == 1
        await pool.aclose()
