"""A plug-in's notifications, relayed only to the caller they belong to (docs/stdio.md "Progress,
logging and cancellation").

A stdio plug-in has one output for everyone; nothing on a line says which caller a
notification is for, except what the gateway itself put in the request:

- `notifications/progress` names the `progressToken` of its request. The gateway writes each
  request with a token of its own (the call's gateway-unique id, so unique within the process)
  and keeps the caller's; a progress notification naming a call in flight goes back, with the
  caller's token, to that call's response stream and nowhere else. Any other token (unknown,
  stale, forged, or a call that asked for no progress) is dropped, counted and logged.
- `notifications/message` (logging) names no request, in either protocol era. In a
  per-subject process every call belongs to one subject, so a message goes to the oldest call
  in flight that asked for logs; in a shared process it cannot be attributed and goes to no
  client: it is logged at the gateway, escaped and rate-limited.
- anything else (list changes, resource updates) is dropped: the gateway offers no stream to
  carry it.

A plug-in that floods is bounded twice: a call's stream relays at most
`MAX_NOTES_PER_CALL` notifications, and holds at most `MAX_QUEUED_NOTES` that its client has
not read yet; beyond either, notifications are dropped (progress is advisory, the result is
not: the final response is never dropped).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import orjson

from ..asgi import Headers
from ..upstream.transport import ResponseHeaders

__all__ = [
    "LEVELS",
    "MAX_NOTES_PER_CALL",
    "MAX_QUEUED_NOTES",
    "NoteStream",
    "Notifications",
    "StreamedAnswer",
    "progress_token_of",
]

log = logging.getLogger("mcp_bastion.stdio")

MAX_NOTES_PER_CALL: Final = 1000  # a long operation's progress, generously; not a flood
MAX_QUEUED_NOTES: Final = 64  # unread by a slow client: older progress is superseded anyway
LOG_LINES_PER_MINUTE: Final = 120  # the gateway's log is bounded as a plug-in's stderr is
LOG_TEXT_CHARS: Final = 300
# RFC 5424 severities, lowest first (MCP logging, both eras).
LEVELS: Final = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
MODERN_LOG_LEVEL: Final = "io.modelcontextprotocol/logLevel"
_SSE: Headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]


def progress_token_of(meta: dict[str, Any]) -> str | int | None:
    """The caller's progress token, if it is one the spec allows (a string or an integer)."""
    token = meta.get("progressToken")
    if isinstance(token, bool) or not isinstance(token, (str, int)):
        return None
    return token


class NoteStream:
    """One POST's response stream: the notifications for its calls, then their responses."""

    __slots__ = ("_done", "_queue", "_queued", "_relayed", "_wake", "dropped", "log_level")

    def __init__(self, log_level: str | None = None) -> None:
        # None: no logs (a 2026-07-28 request without logLevel); "" any level (session era).
        self.log_level = log_level
        self._queue: collections.deque[tuple[bool, bytes]] = collections.deque()  # (a note?, data)
        self._queued = 0  # notifications among the queued events
        self._relayed = 0
        self._done = False
        self._wake = asyncio.Event()
        self.dropped = 0

    def wants_log(self, level: Any) -> bool:
        wanted = self.log_level
        if wanted is None:
            return False
        if not wanted:
            return True
        return level in LEVELS and wanted in LEVELS and LEVELS.index(level) >= LEVELS.index(wanted)

    def offer(self, note: dict[str, Any]) -> bool:
        """Queue a notification for the client; False (dropped) past either bound."""
        if self._done or self._relayed >= MAX_NOTES_PER_CALL or self._queued >= MAX_QUEUED_NOTES:
            self.dropped += 1
            return False
        self._relayed += 1
        self._queued += 1
        self._queue.append((True, orjson.dumps(note)))
        self._wake.set()
        return True

    def answer(self, message: dict[str, Any]) -> None:
        """A response: always queued (it is the result, not advice)."""
        self._queue.append((False, orjson.dumps(message)))
        self._wake.set()

    def close(self) -> None:
        self._done = True
        self._wake.set()

    async def events(self) -> AsyncIterator[bytes]:
        while True:
            while self._queue:
                note, data = self._queue.popleft()
                self._queued -= note
                yield b"event: message\ndata: " + data + b"\n\n"
            if self._done:
                return
            self._wake.clear()
            await self._wake.wait()


class StreamedAnswer:
    """An SSE answer to a POST whose calls run while it streams (an `UpstreamResponse`)."""

    __slots__ = ("_stream", "_work", "headers", "status")

    def __init__(self, stream: NoteStream, work: Awaitable[None]) -> None:
        self.status = 200
        self.headers = ResponseHeaders(_SSE)
        self._stream = stream
        self._work = asyncio.ensure_future(work)
        self._work.add_done_callback(lambda _: stream.close())

    def chunks(self) -> AsyncIterator[bytes]:
        return self._stream.events()

    async def read_all(self, cap: int) -> bytes | None:
        body = b""
        async for chunk in self.chunks():
            body += chunk
            if len(body) > cap:
                return None
        return body

    def close(self) -> None:
        """The client is gone or the answer was refused: the calls still running are cancelled
        (each tells the plug-in `notifications/cancelled`, `process.py`)."""
        if not self._work.done():
            self._work.cancel()


class Notifications:
    """Routes one process's notifications to the calls they belong to (module docstring)."""

    def __init__(self, server: str, per_subject: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self.per_subject = per_subject
        self._clock = clock
        self.dropped = 0  # progress and logs delivered to no one, for tests and operators
        self.ignored = 0  # other notifications (list changes, resource updates): no stream carries them
        self._budget = (0.0, 0)

    def route(self, message: dict[str, Any], calls: dict[int, Any]) -> None:
        """`calls`: the process's calls in flight by gateway id, oldest first; each has
        `.stream` (a NoteStream or None) and `.progress_token` (the caller's, or None)."""
        method = message.get("method")
        params = message.get("params")
        if not isinstance(params, dict):
            params = {}
        if method == "notifications/progress":
            self._progress(params, calls)
        elif method == "notifications/message":
            self._log_message(params, calls)
        else:
            self.ignored += 1

    def _progress(self, params: dict[str, Any], calls: dict[int, Any]) -> None:
        token = params.get("progressToken")
        call = calls.get(token) if isinstance(token, int) and not isinstance(token, bool) else None
        if call is None or call.stream is None or call.progress_token is None:
            # Unknown, stale (its call answered) or never asked for: never delivered to anyone.
            self._drop("a progress notification for no call in flight")
            return
        if not call.stream.offer(
            {
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {**params, "progressToken": call.progress_token},
            }
        ):
            self._drop("a progress notification past a call's bounds")

    def _log_message(self, params: dict[str, Any], calls: dict[int, Any]) -> None:
        if self.per_subject:
            level = params.get("level")
            for call in calls.values():
                if call.stream is not None and call.stream.wants_log(level):
                    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": params}
                    if not call.stream.offer(note):
                        self._drop("a log message past a call's bounds")
                    return
        # A shared process's log names no caller (nor does any era's wire format): it stays here.
        self.dropped += 1
        if self._allowed():
            text = orjson.dumps(params.get("data")).decode("utf-8", "replace")[:LOG_TEXT_CHARS]
            log.info(
                "plug-in %s logged (%s): %s",
                self._server,
                str(params.get("level"))[:16].encode("unicode_escape").decode("ascii"),
                text.encode("unicode_escape").decode("ascii"),
            )

    def _drop(self, what: str) -> None:
        self.dropped += 1
        if self._allowed():
            log.warning("the plug-in of %s sent %s: dropped", self._server, what)

    def _allowed(self) -> bool:
        now = self._clock()
        window, count = self._budget
        if now - window > 60:
            if count > LOG_LINES_PER_MINUTE:
                log.warning(
                    "the plug-in of %s: %d notifications not logged",
                    self._server,
                    count - LOG_LINES_PER_MINUTE,
                )
            window, count = now, 0
        self._budget = (window, count + 1)
        return count < LOG_LINES_PER_MINUTE
