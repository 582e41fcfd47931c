"""Where audit events go: stdout, a file, nowhere, or memory (tests)."""

from __future__ import annotations

import asyncio
import sys
from typing import BinaryIO, Protocol

from ..config.model import AuditConfig
from .events import AuditEvent

__all__ = ["AuditSink", "FileSink", "MemorySink", "NullSink", "StreamSink", "sink_for"]


class AuditSink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class StreamSink:
    """Writes each event as one line. Events emitted within one event-loop turn share one
    write (under load that is one syscall for many requests); nothing waits longer than the
    current turn, and `flush()` writes whatever is pending."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending: list[bytes] = []

    def emit(self, event: AuditEvent) -> None:
        self._pending.append(event.to_json())
        if len(self._pending) > 1:
            return  # a flush is already scheduled for this turn
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()  # no loop running: write now

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = b"".join(self._pending), []
            self._stream.write(lines)
            self._stream.flush()


class FileSink(StreamSink):
    def __init__(self, path: str) -> None:
        super().__init__(open(path, "ab", buffering=0))  # noqa: SIM115  (lives as long as the gateway)


class NullSink:
    def emit(self, event: AuditEvent) -> None:
        return None


class MemorySink:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)


def sink_for(config: AuditConfig) -> AuditSink:
    if config.sink == "file":
        assert config.path is not None
        return FileSink(config.path)
    if config.sink == "stdout":
        return StreamSink(sys.stdout.buffer)
    return NullSink()
