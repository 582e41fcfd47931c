"""The body stage: the whole POST body under a byte cap (JR-02) and a time cap (JR-10).

`receive` is a list of ASGI messages; a client that stops sending is a `receive` that never
returns. The gateway's own server says when the body is already complete (`ServerCycle`),
and then no deadline is armed at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mcp_bastion.asgi import Message
from mcp_bastion.errors import RequestRejected
from mcp_bastion.pipeline.body import ReadBody

from .fakes import Received, body_messages, exchange, route

ROUTE = route()


class Cycle:
    """What the gateway's own server tells the stages about the connection."""

    def __init__(self, *, body_complete: bool, gone: bool = False) -> None:
        self.body_complete = body_complete
        self.gone = gone

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        raise AssertionError("the body stage does not watch for disconnects")

    def forget_disconnect(self, callback: Callable[[], None]) -> None:
        raise AssertionError("the body stage does not watch for disconnects")


class SlowReceived(Received):
    """Each message arrives after the event loop has turned once: a read that must wait."""

    async def __call__(self) -> Message:
        await asyncio.sleep(0)
        return await super().__call__()


async def test_chunks_are_joined_in_order() -> None:
    ex = exchange(ROUTE, receive=Received(*body_messages(b'{"jsonrpc":', b'"2.0",', b'"id":1}')))
    await ReadBody(1024)(ex)
    assert ex.body == b'{"jsonrpc":"2.0","id":1}'


async def test_a_message_without_more_body_is_the_last() -> None:
    # ASGI HTTP: `more_body` defaults to False.
    receive = Received({"type": "http.request", "body": b"{}"}, {"type": "http.request", "body": b"more"})
    ex = exchange(ROUTE, receive=receive)
    await ReadBody(1024)(ex)
    assert ex.body == b"{}"
    assert receive.calls == 1


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_only_a_post_has_its_body_read(method: str) -> None:
    receive = Received(*body_messages(b"ignored"))
    ex = exchange(ROUTE, method, receive=receive)
    await ReadBody(1024)(ex)
    assert ex.body == b""
    assert receive.calls == 0  # a GET stream's receive is left to the disconnect watcher


async def test_a_body_of_exactly_the_cap_is_read() -> None:
    ex = exchange(ROUTE, receive=Received(*body_messages(b"a" * 600, b"b" * 424)))
    await ReadBody(1024)(ex)
    assert len(ex.body) == 1024


async def test_a_body_one_byte_over_the_cap_is_413_and_reading_stops() -> None:
    # JR-02: counted across chunks, and the rest is never read (the reply closes the connection).
    receive = Received(*body_messages(b"a" * 600, b"b" * 425, b"c" * 10_000))
    ex = exchange(ROUTE, receive=receive)
    with pytest.raises(RequestRejected) as caught:
        await ReadBody(1024)(ex)
    assert caught.value.status == 413
    assert receive.calls == 2
    assert ex.body == b""


async def test_a_client_gone_mid_body_is_499() -> None:
    receive = Received(
        {"type": "http.request", "body": b'{"jsonrpc"', "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(RequestRejected) as caught:
        await ReadBody(1024)(exchange(ROUTE, receive=receive))
    assert caught.value.status == 499


async def test_a_body_that_does_not_arrive_in_time_is_408() -> None:
    # JR-10 (slowloris): one chunk, then nothing; the deadline covers the whole body.
    receive = Received({"type": "http.request", "body": b"{", "more_body": True})
    with pytest.raises(RequestRejected) as caught:
        await ReadBody(1024, read_timeout=0.01)(exchange(ROUTE, receive=receive))
    assert caught.value.status == 408
    assert "0.01 s" in caught.value.message


async def test_no_deadline_when_the_server_has_the_whole_body_already() -> None:
    # The same read with a deadline of zero: without the server's word it times out ...
    ex = exchange(ROUTE, receive=SlowReceived(*body_messages(b"{}")))
    with pytest.raises(RequestRejected) as caught:
        await ReadBody(1024, read_timeout=0)(ex)
    assert caught.value.status == 408
    # ... and with it there is nothing to wait for, so no deadline is armed.
    ex = exchange(ROUTE, receive=SlowReceived(*body_messages(b"{}")))
    ex.cycle = Cycle(body_complete=True)
    await ReadBody(1024, read_timeout=0)(ex)
    assert ex.body == b"{}"


async def test_a_complete_body_from_a_client_already_gone_is_499_unread() -> None:
    receive = Received(*body_messages(b"{}"))
    ex = exchange(ROUTE, receive=receive)
    ex.cycle = Cycle(body_complete=True, gone=True)
    with pytest.raises(RequestRejected) as caught:
        await ReadBody(1024)(ex)
    assert caught.value.status == 499
    assert receive.calls == 0


async def test_the_cap_holds_when_the_server_has_the_whole_body() -> None:
    ex = exchange(ROUTE, receive=Received(*body_messages(b"x" * 1025)))
    ex.cycle = Cycle(body_complete=True)
    with pytest.raises(RequestRejected) as caught:
        await ReadBody(1024)(ex)
    assert caught.value.status == 413
