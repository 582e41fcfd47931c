"""The audit feed: one structured JSON event per MCP request decision."""

from .delivery import SpooledSink, spooled_sink
from .events import AuditEvent
from .sinks import AuditSink, FileSink, MemorySink, NullSink, StreamSink, audit_losses, sink_for
from .spool import Spool, SpoolFull

__all__ = [
    "AuditEvent",
    "AuditSink",
    "FileSink",
    "MemorySink",
    "NullSink",
    "Spool",
    "SpoolFull",
    "SpooledSink",
    "StreamSink",
    "audit_losses",
    "sink_for",
    "spooled_sink",
]
