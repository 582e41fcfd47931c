"""The audit feed: one structured JSON event per MCP request decision."""

from .events import AuditEvent
from .sinks import AuditSink, FileSink, MemorySink, NullSink, StreamSink, sink_for

__all__ = ["AuditEvent", "AuditSink", "FileSink", "MemorySink", "NullSink", "StreamSink", "sink_for"]
