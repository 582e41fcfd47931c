"""A real OTLP/HTTP receiver on loopback: it decodes the protobuf the SDK's trace exporter and
the audit feed's logs destination send (`opentelemetry-proto`), as a collector would, and
keeps the spans and log records for assertions. No collector binary is available here
(docs/telemetry.md)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .servers import read_body, serve_asgi


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    service: str


@dataclass(frozen=True)
class ReceivedLog:
    body: str
    time_unix_nano: int
    observed_time_unix_nano: int
    severity_number: int
    severity_text: str
    trace_id: str
    attributes: dict[str, Any]
    service: str
    scope: str


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    content_types: set[str] = field(default_factory=set)
    logs: list[ReceivedLog] = field(default_factory=list)
    log_headers: list[dict[str, str]] = field(default_factory=list)  # of every /v1/logs POST
    # How to answer the next /v1/logs POSTs (an HTTP status; 200 once the list is used up).
    # A refused POST's records are not kept, as a collector that failed would not keep them.
    log_answers: list[int] = field(default_factory=list)
    redirect_to: str = ""  # where a 307 in `log_answers` points
    rejected_per_batch: int = 0  # > 0: a 200 reporting this many records rejected (partial success)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if scope["path"] == "/v1/logs" and scope["method"] == "POST":
            await self._logs(scope, body, send)
            return
        if scope["path"] != "/v1/traces" or scope["method"] != "POST":
            await _reply(send, 404, b"")
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)  # a malformed body raises: the test sees uvicorn's 500
        headers = dict(scope["headers"])
        with self._lock:
            self.requests += 1
            self.content_types.add(headers.get(b"content-type", b"").decode())
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                span.name,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                span.kind,
                                {a.key: _value(a.value) for a in span.attributes},
                                span.status.code,
                                str(resource.get("service.name")),
                            )
                        )
        await _reply(send, 200, ExportTraceServiceResponse().SerializeToString())

    async def _logs(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        request = ExportLogsServiceRequest()
        request.ParseFromString(body)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            status = self.log_answers.pop(0) if self.log_answers else 200
            self.log_headers.append(headers)
            if status == 200:
                self.logs += _log_records(request)
            self._lock.notify_all()
        answer = ExportLogsServiceResponse()
        if status == 200 and self.rejected_per_batch:
            answer.partial_success.rejected_log_records = self.rejected_per_batch
            answer.partial_success.error_message = "rejected: quota"
        extra = [(b"location", self.redirect_to.encode())] if status == 307 else []
        await _reply(send, status, answer.SerializeToString() if status == 200 else b"", extra)

    def wait_for_logs(self, count: int, timeout: float = 20) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.logs) >= count, timeout)

    def wait_for_log_posts(self, count: int, timeout: float = 20) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.log_headers) >= count, timeout)


def _log_records(request: ExportLogsServiceRequest) -> list[ReceivedLog]:
    received = []
    for resource_logs in request.resource_logs:
        resource = {a.key: _value(a.value) for a in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                received.append(
                    ReceivedLog(
                        record.body.string_value,
                        record.time_unix_nano,
                        record.observed_time_unix_nano,
                        record.severity_number,
                        record.severity_text,
                        record.trace_id.hex(),
                        {a.key: _value(a.value) for a in record.attributes},
                        str(resource.get("service.name")),
                        scope_logs.scope.name,
                    )
                )
    return received


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


async def _reply(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/x-protobuf"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def running_receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    """The receiver and its traces endpoint URL."""
    receiver = OtlpReceiver()
    with serve_asgi(receiver) as server:
        yield receiver, f"{server.base_url}/v1/traces"


@contextlib.contextmanager
def logs_receiver_on(port: int, receiver: OtlpReceiver) -> Iterator[str]:
    """`receiver` on a given loopback port (one a test knew to be down), and its logs URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    with serve_asgi(receiver, sock=sock) as server:
        yield f"{server.base_url}/v1/logs"
