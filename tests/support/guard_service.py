"""A real external guard service on loopback, scriptable per test (safety/guard.py's peer).

It speaks the guard contract over HTTP under uvicorn: every request is recorded (body and
headers), and `answer` decides the reply from the request's JSON. Besides a (status, body)
pair an answer may be HOLD (wait until the test calls `release()`) or HANG (never answer,
until the gateway hangs up). It counts requests in flight, for the concurrency cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from .servers import RunningServer, read_body, serve_asgi

HOLD = "hold"
HANG = "hang"
Answer = tuple[int, bytes] | str


def verdict(**fields: Any) -> tuple[int, bytes]:
    return 200, orjson.dumps(fields)


def allow_all(_: dict[str, Any]) -> Answer:
    return verdict(verdict="allow")


@dataclass
class GuardService:
    answer: Callable[[dict[str, Any]], Answer] = allow_all
    seen: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self._released.set()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.seen) >= count, timeout), self.seen

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        with self._changed:
            self.seen.append(orjson.loads(body))
            self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()
        try:
            answer = self.answer(self.seen[-1])
            if answer == HANG:
                while (await receive())["type"] != "http.disconnect":
                    pass
                self.hung_up.set()
                return
            if answer == HOLD:
                await asyncio.to_thread(self._released.wait, 30)
                answer = allow_all({})
            assert not isinstance(answer, str)
            status, reply = answer
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": reply})
        finally:
            with self._changed:
                self.in_flight -= 1


@contextlib.contextmanager
def running_guard(service: GuardService) -> Iterator[RunningServer]:
    with serve_asgi(service) as server:
        yield server
