"""A real OTLP/HTTP trace receiver on loopback: it decodes the protobuf the SDK's exporter
sends (`opentelemetry-proto`), as a collector would, and keeps the spans for assertions.
No collector binary is available here (docs/telemetry.md)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    content_types: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
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


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


async def _reply(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/x-protobuf")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def running_receiver() -> Iterator[tuple[OtlpReceiver, str]]:
    """The receiver and its traces endpoint URL."""
    receiver = OtlpReceiver()
    with serve_asgi(receiver) as server:
        yield receiver, f"{server.base_url}/v1/traces"
