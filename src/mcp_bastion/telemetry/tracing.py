"""OpenTelemetry traces: a span per MCP exchange, a child span for the upstream call, exported
over OTLP/HTTP by the OpenTelemetry SDK (the `[otel]` extra; imported only when traces are on).

The parent comes from the MCP message's `params._meta.traceparent` (SEP-414: the context of the
MCP operation itself) when it is valid, else from the `traceparent` header, else the trace is
new. Both are caller input: a malformed value is ignored, never repaired, and the caller's
`sampled` flag is obeyed only with `follow_client_sampling`. The upstream receives the child
span's context in its `traceparent` header (`pipeline/outbound.py` sends `ex.trace`), so its
spans hang below ours; the audit event carries the same trace id.

Attributes are the gateway's own values (configured server name, method label, decision, a
status) plus the tool name capped in length; nothing of a token, a claim or an argument.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ..errors import UpstreamError, UpstreamTimeout
from ..trace import TraceContext
from .labels import method_label, reason_label

if TYPE_CHECKING:
    from ..config.telemetry import TracesConfig
    from ..pipeline.exchange import Exchange
    from ..pipeline.gateway import Stage

__all__ = ["MAX_ATTRIBUTE_CHARS", "Tracing", "parse_traceparent"]

# Version 00 only, lower-case hex, nothing around it (W3C Trace Context §3.2; §3.2.2.3: all-zero
# ids are invalid). A longer or odd value is ignored whole, never partly used.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_MAX_TRACEPARENT = 64
MAX_ATTRIBUTE_CHARS = 128  # a tool name is caller text: capped before it reaches an exporter


def parse_traceparent(value: Any) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a valid W3C traceparent, else None."""
    if not isinstance(value, str) or len(value) > _MAX_TRACEPARENT:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(match.group(3), 16)


class Tracing:
    def __init__(self, config: TracesConfig, exporter: SpanExporter | None = None) -> None:
        ratio = TraceIdRatioBased(config.sample_ratio)
        self._follow = config.follow_client_sampling
        self._bound = ratio.bound
        sampler: Sampler = ParentBased(ratio) if self._follow else ratio
        self.provider = TracerProvider(
            sampler=sampler, resource=Resource.create({"service.name": config.service_name})
        )
        if exporter is None:
            exporter = OTLPSpanExporter(endpoint=config.endpoint, timeout=config.timeout_seconds)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("mcp_bastion")
        self._new_span_id = self.provider.id_generator.generate_span_id
        self._new_trace_id = self.provider.id_generator.generate_trace_id
        self._spans: dict[int, Span] = {}  # per exchange in flight, by id(exchange)

    def shutdown(self) -> None:
        self.provider.shutdown()  # exports what is still queued

    def traced(self, stage: Stage, name: str) -> Stage:
        return _TracedForward(stage, self) if name == "Forward" else stage

    def request_span(self, ex: Exchange) -> Span:
        span = self._spans.get(id(ex))
        if span is None:
            parent = self._parent(ex)
            span = self._unsampled(parent)
            if span is None:
                started = time.time_ns() - int((time.perf_counter() - ex.started) * 1e9)
                span = self._tracer.start_span(
                    f"mcp {ex.route.name}",
                    context=trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None,
                    kind=SpanKind.SERVER,
                    start_time=started,
                    attributes={"mcp_bastion.server": ex.route.name},
                )
            self._spans[id(ex)] = span
            ex.trace = _context_of(span)
        return span

    def _unsampled(self, parent: SpanContext | None) -> Span | None:
        """The span of an exchange the sampler would not record, made without the SDK (which
        would cost as much for a span it drops as for one it keeps); None when it may be
        recorded. The same decisions as the SDK's samplers: by the caller's flag with
        `follow_client_sampling` and a parent, else by the trace id against the ratio's bound."""
        if parent is not None:
            if self._follow:
                sampled = parent.trace_flags.sampled
            else:
                sampled = parent.trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound
            trace_id = parent.trace_id
        elif self._bound == 0:
            sampled, trace_id = False, self._new_trace_id()
        else:
            return None  # a new root sampled at a ratio: the SDK draws the id and decides
        if sampled:
            return None
        return NonRecordingSpan(SpanContext(trace_id, self._new_span_id(), False, TraceFlags(0)))

    def upstream_span(self, ex: Exchange) -> Span:
        parent = self.request_span(ex)
        if not parent.is_recording():
            # Not sampled: the SDK would record nothing either; only the upstream's parent id
            # is needed, and asking the SDK for a whole span costs a second sampling decision.
            context = parent.get_span_context()
            child: Span = NonRecordingSpan(
                SpanContext(context.trace_id, self._new_span_id(), False, context.trace_flags)
            )
        else:
            child = self._start_upstream(parent, ex)
        # The upstream request's traceparent names this span as its parent: in the header, and
        # in the body's `_meta` when the caller put one there.
        ex.trace = _context_of(child)
        meta = _meta_traceparent(ex)
        if meta is not None:
            ex.body = _with_traceparent(ex.body, meta, ex.trace.header().decode("ascii"))
        return child

    def _start_upstream(self, parent: Span, ex: Exchange) -> Span:
        return self._tracer.start_span(
            f"upstream {ex.route.name}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes={"mcp_bastion.server": ex.route.name, "http.request.method": ex.http_method},
        )

    def finished(self, ex: Exchange) -> None:
        span = self.request_span(ex)
        del self._spans[id(ex)]
        if span.is_recording():
            decision = ex.outcome or "allow"
            span.set_attributes(_attributes(ex, decision))
            if ex.calls:
                span.update_name(method_label(ex.calls[0].method))
            if decision == "error":
                span.set_status(Status(StatusCode.ERROR, reason_label(decision, ex.status, ex.reason)))
        span.end()

    def _parent(self, ex: Exchange) -> SpanContext | None:
        meta = _meta_traceparent(ex)
        found = parse_traceparent(meta) if meta is not None else None
        if found is None:
            found = parse_traceparent(ex.headers.get("traceparent"))
        if found is None:
            return None
        trace_id, span_id, flags = found
        sampled = TraceFlags(flags & 1 if self._follow else 0)
        return SpanContext(trace_id, span_id, is_remote=True, trace_flags=sampled)


class _TracedForward:
    __slots__ = ("_stage", "_tracing")

    def __init__(self, stage: Stage, tracing: Tracing) -> None:
        self._stage = stage
        self._tracing = tracing

    async def __call__(self, ex: Exchange) -> None:
        span = self._tracing.upstream_span(ex)
        try:
            await self._stage(ex)
        except UpstreamError as err:
            kind = "timeout" if isinstance(err, UpstreamTimeout) else "error"
            span.set_status(Status(StatusCode.ERROR, f"upstream {kind}"))
            raise
        finally:
            if ex.status:
                span.set_attribute("http.response.status_code", ex.status)
            span.end()


def _meta_traceparent(ex: Exchange) -> str | None:
    """The valid `params._meta.traceparent` of the exchange's first message, if any."""
    if not ex.messages:
        return None
    params = ex.messages[0].params
    meta = params.get("_meta") if params else None
    value = meta.get("traceparent") if isinstance(meta, dict) else None
    return value if parse_traceparent(value) is not None else None


def _with_traceparent(body: bytes, old: str, new: str) -> bytes:
    """The body with its `_meta` traceparent naming our span. Only a single message whose
    member is written verbatim, exactly once, is changed, and a valid traceparent has one
    length, so the body keeps its length and every other byte; otherwise it goes unchanged
    (the header still carries our context)."""
    value = old.encode("ascii")
    if body.count(value) != 1 or len(new) != len(old):
        return body
    member = re.compile(rb'"traceparent"[ \t\r\n]*:[ \t\r\n]*"' + value + rb'"')
    found = member.search(body)
    if found is None:
        return body  # escaped, or not the member's value: leave it
    start = found.end() - 1 - len(value)
    return body[:start] + new.encode("ascii") + body[found.end() - 1 :]


def _context_of(span: Span) -> TraceContext:
    context = span.get_span_context()
    flags = "01" if context.trace_flags.sampled else "00"
    return TraceContext(f"{context.trace_id:032x}", f"{context.span_id:016x}", flags)


def _attributes(ex: Exchange, decision: str) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "mcp_bastion.decision": decision,
        "mcp_bastion.reason": reason_label(decision, ex.status, ex.reason),
        "http.request.method": ex.http_method,
        "http.response.status_code": ex.status,
    }
    if ex.calls:
        call = ex.calls[0]
        attributes["mcp.method.name"] = method_label(call.method)
        if call.name is not None:
            attributes["gen_ai.tool.name" if call.method == "tools/call" else "mcp.target"] = call.name[
                :MAX_ATTRIBUTE_CHARS
            ]
        if len(ex.calls) > 1:
            attributes["mcp_bastion.batch_size"] = len(ex.calls)
    if ex.era is not None:
        attributes["mcp.protocol.version"] = ex.era.version
        attributes["mcp_bastion.era"] = ex.era.name
    return attributes
