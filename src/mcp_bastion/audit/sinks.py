"""Where audit events go: stdout, a file, nowhere, or memory (tests)."""

from __future__ import annotations

import sys
from typing import BinaryIO, Protocol

from ..config.model import AuditConfig
from .events import AuditEvent

__all__ = ["AuditSink", "FileSink", "MemorySink", "NullSink", "StreamSink", "sink_for"]


class AuditSink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class StreamSink:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def emit(self, event: AuditEvent) -> None:
        self._stream.write(event.to_json())
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
