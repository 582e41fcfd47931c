"""The gateway's Prometheus metrics: what is counted and timed, and where.

- per JSON-RPC message, when the exchange ends: requests by server, method, decision, reason;
- per HTTP exchange: end-to-end latency (until the last byte of the answer was handed over);
- per stage (a wrapper around each stage; Forward always, the others with `stage_histograms`):
  its latency;
- around `Forward`: upstream errors and timeouts, open event streams;
- per refused exchange: the quota that refused it (rule names come from the config: bounded);
- from the key sets: JWKS refreshes and failures, whether each IdP has keys;
- from the server: open client connections, read at scrape time;
- from the audit sink, at scrape time: whether it is healthy, events delivered from the spool,
  events lost by cause, the spool's size and whether its destination takes batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..audit import AuditSink, SpooledSink, audit_losses
from ..errors import UpstreamError, UpstreamTimeout
from .labels import method_label, reason_label
from .metrics import Counter, Gauge, Histogram, LabelValues, MetricRegistry

if TYPE_CHECKING:
    from ..asgi import Message
    from ..pipeline.exchange import Exchange
    from ..pipeline.gateway import Stage

__all__ = ["GatewayMetrics"]


class GatewayMetrics:
    def __init__(self, *, stage_histograms: bool = True) -> None:
        self._stage_histograms = stage_histograms
        self.registry = registry = MetricRegistry()
        self.requests = registry.register(
            Counter(
                "mcp_bastion_requests_total",
                "JSON-RPC messages decided, by server, method, decision and reason.",
                ("server", "method", "decision", "reason"),
            )
        )
        self.duration = registry.register(
            Histogram(
                "mcp_bastion_request_duration_seconds",
                "HTTP exchanges on MCP endpoints, end to end (the whole answer, streams included).",
                ("server", "decision"),
            )
        )
        self.stage_duration = registry.register(
            Histogram(
                "mcp_bastion_stage_duration_seconds",
                "Time spent in a stage of the chain: Forward (the upstream call and the relay), "
                "and every other stage with stage_histograms.",
                ("server", "stage"),
            )
        )
        self.upstream_errors = registry.register(
            Counter(
                "mcp_bastion_upstream_errors_total",
                "Upstream calls that failed (error) or did not answer in time (timeout).",
                ("server", "kind"),
            )
        )
        self.quota_rejections = registry.register(
            Counter(
                "mcp_bastion_quota_rejections_total",
                "Requests a quota refused, by server, quota (the rule's name, or concurrency.in_flight / "
                "concurrency.streams) and result (exceeded: 429; unavailable: the store failed closed, 503).",
                ("server", "quota", "result"),
            )
        )
        self.streams = registry.register(
            Gauge("mcp_bastion_open_sse_streams", "Event streams being relayed now.", ("server",))
        )
        self.key_refreshes = registry.register(
            Counter(
                "mcp_bastion_jwks_refreshes_total",
                "Fetches of an identity provider's keys, by result (ok, failure).",
                ("idp", "result"),
            )
        )
        self.keys_loaded = registry.register(
            Gauge("mcp_bastion_jwks_keys_loaded", "1 when the gateway holds keys of this IdP.", ("idp",))
        )
        self.connections = registry.register(
            Gauge("mcp_bastion_open_connections", "Client connections open on the MCP listener.")
        )
        self.audit = AuditMetrics(registry)

    def exposition(self) -> bytes:
        return self.registry.exposition()

    def watch_connections(self, count: Callable[[], int]) -> None:
        self.connections.source = lambda: {(): float(count())}

    def watch_keys(self, loaded: Mapping[str, Callable[[], bool]]) -> None:
        self.keys_loaded.source = lambda: {(idp,): float(is_loaded()) for idp, is_loaded in loaded.items()}

    def watch_audit(self, sink: AuditSink) -> None:
        self.audit.watch(sink)

    def key_refresh(self, idp: str, ok: bool) -> None:
        self.key_refreshes.inc((idp, "ok" if ok else "failure"))

    def finished(self, ex: Exchange) -> None:
        server = ex.route.name
        decision = ex.outcome or "allow"
        reason = reason_label(decision, ex.status, ex.reason)
        inc = self.requests.inc
        if ex.calls:
            for call in ex.calls:
                inc((server, method_label(call.method), decision, reason))
        else:
            inc((server, method_label(ex.http_method), decision, reason))
        self.duration.observe((server, decision), time.perf_counter() - ex.started)
        if ex.quota is not None:
            result = "unavailable" if ex.status == 503 else "exceeded"
            self.quota_rejections.inc((server, ex.quota, result))

    def timed(self, stage: Stage, name: str) -> Stage:
        if name == "Forward":
            return _MeteredForward(stage, self)
        return _TimedStage(stage, name, self.stage_duration) if self._stage_histograms else stage


class AuditMetrics:
    """The audit feed's state, read from the current sink at each scrape."""

    def __init__(self, registry: MetricRegistry) -> None:
        self.healthy = registry.register(
            Gauge(
                "mcp_bastion_audit_healthy",
                "1 while the audit sink stores every event; 0 while events wait in memory "
                "(audit.on_failure: refuse then answers MCP requests 503).",
            )
        )
        self.delivered = registry.register(
            Counter("mcp_bastion_audit_events_delivered_total", "Audit events the spool delivered.")
        )
        self.lost = registry.register(
            Counter(
                "mcp_bastion_audit_events_lost_total",
                "Audit events lost, by cause: memory_full (the sink could not store them and its "
                "memory bound was passed), spool_full (dropped as the oldest, audit.on_failure: "
                "buffer), torn (records a crash cut, skipped on reading).",
                ("cause",),
            )
        )
        self.spool_bytes = registry.register(
            Gauge("mcp_bastion_audit_spool_bytes", "Bytes in the audit spool's segments (delivered or not).")
        )
        self.destination_up = registry.register(
            Gauge(
                "mcp_bastion_audit_destination_up",
                "1 while the spool's destination takes batches; 0 while it fails (events wait in the spool).",
            )
        )

    def watch(self, sink: AuditSink) -> None:
        """Read the audit sink's state at each scrape (after a reload: the new sink's)."""
        self.healthy.source = lambda: {(): float(sink.healthy)}
        self.lost.source = lambda: {(cause,): float(n) for cause, n in audit_losses(sink).items()}
        if isinstance(sink, SpooledSink):
            spool = sink.spool
            self.delivered.source = lambda: {(): float(sink.delivered)}
            self.spool_bytes.source = lambda: {(): float(spool.size)}
            self.destination_up.source = lambda: {(): float(not sink.destination_failing)}
        else:
            for metric in (self.delivered, self.spool_bytes, self.destination_up):
                metric.source = dict  # no spool: no series


class _TimedStage:
    __slots__ = ("_histogram", "_name", "_stage")

    def __init__(self, stage: Stage, name: str, histogram: Histogram) -> None:
        self._stage = stage
        self._name = name
        self._histogram = histogram

    async def __call__(self, ex: Exchange) -> None:
        start = time.perf_counter()
        try:
            await self._stage(ex)
        finally:
            self._histogram.observe((ex.route.name, self._name), time.perf_counter() - start)


class _MeteredForward:
    """Forward, timed, with its failures counted and the event streams it relays."""

    __slots__ = ("_metrics", "_stage")

    def __init__(self, stage: Stage, metrics: GatewayMetrics) -> None:
        self._stage = stage
        self._metrics = metrics

    async def __call__(self, ex: Exchange) -> None:
        metrics = self._metrics
        server = ex.route.name
        stream = _StreamWatch(ex.send, metrics.streams, (server,))
        ex.send = stream
        start = time.perf_counter()
        try:
            await self._stage(ex)
        except UpstreamTimeout:
            metrics.upstream_errors.inc((server, "timeout"))
            raise
        except UpstreamError:
            metrics.upstream_errors.inc((server, "error"))
            raise
        finally:
            stream.ended()
            ex.send = stream.send
            metrics.stage_duration.observe((server, "Forward"), time.perf_counter() - start)


class _StreamWatch:
    """Passes messages on; counts an answer as an open stream from its `text/event-stream`
    head until the exchange's Forward ends."""

    __slots__ = ("_gauge", "_key", "_open", "send")

    def __init__(self, send: Callable[[Message], Any], gauge: Gauge, key: LabelValues) -> None:
        self.send = send
        self._gauge = gauge
        self._key = key
        self._open = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and not self._open:
            for name, value in message.get("headers", ()):
                if name == b"content-type" and value.startswith(b"text/event-stream"):
                    self._open = True
                    self._gauge.add(self._key, 1)
        await self.send(message)

    def ended(self) -> None:
        if self._open:
            self._open = False
            self._gauge.add(self._key, -1)
