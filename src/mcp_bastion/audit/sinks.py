"""Where audit events go: stdout, a file, nowhere, or memory (tests)."""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
from collections.abc import Mapping
from typing import BinaryIO, Protocol

from ..config.model import AuditConfig
from .delivery import SpooledSink, spooled_sink
from .events import AuditEvent

__all__ = ["AuditSink", "FileSink", "MemorySink", "NullSink", "StreamSink", "audit_losses", "sink_for"]

log = logging.getLogger("mcp_bastion.audit")


class AuditSink(Protocol):
    """Where events go. `emit` must not block or raise (it runs on the request path);
    `healthy` false makes /readyz, /healthz and the metrics report the feed as failing (and, with
    `audit.on_failure: refuse`, MCP requests are refused); `flush` writes what is pending."""

    @property
    def healthy(self) -> bool: ...
    def emit(self, event: AuditEvent) -> None: ...
    def flush(self) -> None: ...


MAX_PENDING_BYTES = 64 * 1_048_576  # while the sink is down, this much waits in memory
RETRY_SECONDS = 1.0


class StreamSink:
    """Writes each event as one line. Events emitted within one event-loop turn share one
    write (under load that is one syscall for many requests); nothing waits longer than the
    current turn, and `flush()` writes whatever is pending.

    When the stream fails (disk full, pipe closed: SL-04) nothing is dropped silently: lines
    wait in a bounded buffer and are retried every second; the failure is logged as an error
    when it starts, `healthy` turns false (the gateway's /readyz reports it, and with
    `audit.on_failure: refuse` MCP requests are refused), and if the buffer overflows, the
    oldest lines go with an error log counting them.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_bytes = 0
        self._retry: asyncio.TimerHandle | None = None
        self.healthy = True
        self.dropped = 0

    def emit(self, event: AuditEvent) -> None:
        line = event.to_json()
        self._pending.append(line)
        self._pending_bytes += len(line)
        if len(self._pending) > 1 or self._retry is not None:
            self._bound()
            return  # a flush is already scheduled (this turn, or the next retry)
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()  # no loop running: write now

    def flush(self) -> None:
        self._retry = None
        if not self._pending:
            return
        lines = memoryview(b"".join(self._pending))
        written = 0
        try:
            while written < len(lines):
                # An unbuffered file may take part of a write (a disk filling up): go on from there.
                count = self._stream.write(lines[written:])
                written += len(lines) - written if count is None else count
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            self._keep_unwritten(written)
            self._failed(exc)
            return
        self._pending.clear()
        self._pending_bytes = 0
        if not self.healthy:
            log.error("audit sink recovered; pending events written")
            self.healthy = True

    def _keep_unwritten(self, written: int) -> None:
        """Keep each line not fully written as its own entry (the first cut to its unwritten
        tail, so a line is never left half-done): merged into one block, a later overflow
        dropped them all at once and counted one (issue 12: 315,169 events logged as "1")."""
        rest = self._pending
        while rest and written >= len(rest[0]):
            written -= len(rest.popleft())
        if rest and written:
            rest[0] = rest[0][written:]
        self._pending_bytes = sum(map(len, rest))

    def _failed(self, exc: BaseException) -> None:
        if self.healthy:
            log.error("audit sink failing (%s); holding events in memory and retrying", type(exc).__name__)
            self.healthy = False
        self._bound()
        try:
            self._retry = asyncio.get_running_loop().call_later(RETRY_SECONDS, self.flush)
        except RuntimeError:
            self._retry = None  # no loop: the next emit or flush retries

    def _bound(self) -> None:
        while self._pending_bytes > MAX_PENDING_BYTES and self._pending:
            self._pending_bytes -= len(self._pending.popleft())
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("audit buffer full: %d events dropped so far", self.dropped)


class FileSink(StreamSink):
    def __init__(self, path: str) -> None:
        super().__init__(open(path, "ab", buffering=0))  # noqa: SIM115  (lives as long as the gateway)


class NullSink:
    healthy = True

    def emit(self, event: AuditEvent) -> None:
        return None

    def flush(self) -> None:
        return None


class MemorySink:
    healthy = True

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def flush(self) -> None:
        return None


def sink_for(config: AuditConfig, secrets: Mapping[str, str] | None = None) -> AuditSink:
    if config.spool is not None and config.sink != "none":
        return spooled_sink(config, (secrets or {}).get(f"audit.{config.sink}.secret"))
    if config.sink == "file":
        assert config.path is not None
        return FileSink(config.path)
    if config.sink == "stdout":
        return StreamSink(sys.stdout.buffer)
    return NullSink()


def audit_losses(sink: AuditSink) -> dict[str, int]:
    """Events `sink` lost so far, by cause (the metric's labels; docs/telemetry.md)."""
    if isinstance(sink, SpooledSink):
        return {"memory_full": sink.lost, "spool_full": sink.spool.dropped, "torn": sink.spool.torn}
    if isinstance(sink, StreamSink):
        return {"memory_full": sink.dropped}
    return {}
