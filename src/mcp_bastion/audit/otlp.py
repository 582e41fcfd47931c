"""An OpenTelemetry collector as an audit destination: OTLP logs over HTTP (needs `[otel]`).

Each event of a batch becomes one LogRecord of one `ExportLogsServiceRequest` (protobuf),
POSTed to the configured `/v1/logs` URL; records keep the batch's order. A record's body is
the event's JSON line as a string (the same bytes the other destinations write, the schema of
`docs/audit.md`); its time is the event's `time`, its trace id the event's `trace_id`, its
severity INFO, and the attribute `log.record.uid` carries the spool's event `id`, on which a
backend deduplicates a batch delivered twice. The resource says `service.name=mcp-bastion`.

As with the webhook, a 2xx takes the batch and anything else (a refused connection, a
timeout, a 4xx or 5xx) raises, so the spool offers the same batch again after a backoff. The
OTLP specification lets an exporter drop a batch on most 4xx; an audit feed never drops, so
every failure is retried. A 2xx that reports a partial success (records the collector
rejected) is not retried (the specification forbids it): the count is logged as an error.
The header secret never appears in a log or error.
"""

from __future__ import annotations

import calendar
import logging
import re
from datetime import datetime

import httpx
import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_INFO, LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from .. import __version__
from ..config.audit import OtlpLogsConfig
from .collector import Collector, CollectorAnswer
from .spool import Batch

__all__ = ["OtlpLogsDestination", "export_request"]

log = logging.getLogger("mcp_bastion.audit")

SERVICE_NAME = "mcp-bastion"
SCOPE_NAME = "mcp_bastion.audit"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
# A collector's answer is read only for its partial-success count: a larger one is not parsed.


class OtlpLogsDestination:
    def __init__(
        self, config: OtlpLogsConfig, secret: str | None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.rejected = 0  # records a collector took the batch of but rejected (partial success)
        self._collector = Collector(
            "OTLP collector",
            config.endpoint,
            content_type="application/x-protobuf",
            secret_header=(config.header, secret) if secret is not None else None,
            timeout=config.timeout_seconds,
            transport=transport,
        )

    async def deliver(self, batch: Batch) -> None:
        body = export_request(batch.lines).SerializeToString()
        self._partial_success(await self._collector.post(body))

    def _partial_success(self, response: CollectorAnswer) -> None:
        if response.content_type.partition(";")[0].strip() != "application/x-protobuf":
            return
        if response.body is None:
            return  # past MAX_ANSWER_BYTES: not read
        answer = ExportLogsServiceResponse()
        try:
            answer.ParseFromString(response.body)
        except Exception:  # protobuf's DecodeError (google.protobuf ships no type stubs)
            return  # the batch was taken (2xx); an answer we cannot read says nothing more
        count = answer.partial_success.rejected_log_records
        if count > 0:
            self.rejected += count
            # The collector's error_message is its own text: not logged, only the count.
            log.error("the OTLP collector rejected %d audit events (partial success, not retried)", count)

    async def aclose(self) -> None:
        await self._collector.aclose()


def export_request(lines: list[bytes]) -> ExportLogsServiceRequest:
    """One request holding one LogRecord per event line, in order."""
    resource = Resource(attributes=[_attribute("service.name", SERVICE_NAME)])
    scope = InstrumentationScope(name=SCOPE_NAME, version=__version__)
    records = [log_record(line) for line in lines]
    scope_logs = ScopeLogs(scope=scope, log_records=records)
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(resource=resource, scope_logs=[scope_logs])])


def log_record(line: bytes) -> LogRecord:
    """The LogRecord of one event line. A line that is not an event as expected (it passed the
    spool's CRC, so it was written so) is still delivered, as its body alone: a bad field
    never blocks the batches behind it."""
    text = line.rstrip(b"\n").decode("utf-8", "replace")
    record = LogRecord(
        severity_number=SEVERITY_NUMBER_INFO, severity_text="INFO", body=AnyValue(string_value=text)
    )
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return record
    if not isinstance(event, dict):
        return record
    when = _nanoseconds(event.get("time"))
    if when:
        # Observed when decided: the gateway is where the event was seen.
        record.time_unix_nano = record.observed_time_unix_nano = when
    trace_id = event.get("trace_id")
    if isinstance(trace_id, str) and _TRACE_ID.fullmatch(trace_id) and trace_id != "0" * 32:
        record.trace_id = bytes.fromhex(trace_id)
    event_id = event.get("id")
    if isinstance(event_id, str):
        record.attributes.append(_attribute("log.record.uid", event_id))
    return record


def _nanoseconds(value: object) -> int:
    """`2026-12-06T16:02:11.374Z` as nanoseconds since the epoch; 0 if it is not that."""
    if not isinstance(value, str) or not value.endswith("Z"):
        return 0
    try:
        when = datetime.fromisoformat(value[:-1])
    except ValueError:
        return 0
    return max(0, calendar.timegm(when.timetuple()) * 1_000_000_000 + when.microsecond * 1000)


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))
