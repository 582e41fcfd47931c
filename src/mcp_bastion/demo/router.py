"""A path-prefix router for putting the development IdP and the gateway on one port.

Lifespan events fan out to every app, so each can open and close its own resources.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..asgi import AnyASGIApp, Message, Receive, Scope, Send

__all__ = ["PrefixRouter"]


class PrefixRouter:
    def __init__(self, routes: Sequence[tuple[Sequence[str], AnyASGIApp]], fallback: AnyASGIApp) -> None:
        self._routes = [(tuple(prefixes), app) for prefixes, app in routes]
        self._fallback = fallback
        self.started = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = scope.get("path", "")
        for prefixes, app in self._routes:
            if path.startswith(prefixes):
                await app(scope, receive, send)
                return
        await self._fallback(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        children = [_Lifespan(app, scope) for app in [*(a for _, a in self._routes), self._fallback]]
        message = await receive()
        assert message["type"] == "lifespan.startup"
        failures = [f for f in await asyncio.gather(*(c.startup() for c in children)) if f]
        if failures:
            await send({"type": "lifespan.startup.failed", "message": "; ".join(failures)})
            return
        await send({"type": "lifespan.startup.complete"})
        self.started.set()
        message = await receive()
        await asyncio.gather(*(c.shutdown() for c in children))
        await send({"type": "lifespan.shutdown.complete"})


class _Lifespan:
    """Drives one child app's lifespan protocol through in-memory queues."""

    def __init__(self, app: AnyASGIApp, scope: Scope) -> None:
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task = asyncio.ensure_future(app(dict(scope), self._inbox.get, self._send))

    async def _send(self, message: Message) -> None:
        await self._outbox.put(message)

    async def startup(self) -> str:
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._next()
        return (
            ""
            if reply.get("type") in ("lifespan.startup.complete", "done")
            else str(reply.get("message", "failed"))
        )

    async def shutdown(self) -> None:
        if not self._task.done():
            await self._inbox.put({"type": "lifespan.shutdown"})
            await self._next()

    async def _next(self) -> Message:
        getter = asyncio.ensure_future(self._outbox.get())
        await asyncio.wait((getter, self._task), return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        # An app that does not speak lifespan just returns (or raises): treat it as done.
        return {"type": "done"}
