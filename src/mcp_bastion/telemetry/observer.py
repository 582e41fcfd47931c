"""The one object the pipeline calls: metrics and traces together, each present only when on.

`telemetry_for(config)` returns None when both are off: the gateway then calls nothing at all
and its stages are not wrapped, so the request path costs what it cost before telemetry
existed (docs/performance.md measures both).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError
from .gateway_metrics import GatewayMetrics

if TYPE_CHECKING:
    from ..config.telemetry import TelemetryConfig
    from ..pipeline.exchange import Exchange
    from ..pipeline.gateway import Stage
    from .tracing import Tracing

__all__ = ["RequestObserver", "Telemetry", "telemetry_for"]

log = logging.getLogger("mcp_bastion.telemetry")


class RequestObserver(Protocol):
    """What the gateway calls when telemetry is on: once per exchange, after the answer and
    before the audit step (so the audit event carries the trace id of the span)."""

    def finished(self, ex: Exchange) -> None: ...


class Telemetry:
    def __init__(self, metrics: GatewayMetrics | None = None, tracing: Tracing | None = None) -> None:
        self.metrics = metrics
        self.tracing = tracing

    def instrument(self, stages: Sequence[Stage]) -> tuple[Stage, ...]:
        """The chain with each stage timed (metrics) and the upstream call traced (traces)."""
        out = []
        for stage in stages:
            name = type(stage).__name__
            if self.tracing is not None:
                stage = self.tracing.traced(stage, name)
            if self.metrics is not None:
                stage = self.metrics.timed(stage, name)
            out.append(stage)
        return tuple(out)

    def finished(self, ex: Exchange) -> None:
        try:
            if self.tracing is not None:
                self.tracing.finished(ex)
            if self.metrics is not None:
                self.metrics.finished(ex)
        except Exception:
            # Telemetry must never cost the exchange its audit event, which the gateway writes next.
            log.exception("telemetry failed for a request to %s", ex.route.name)

    def key_refresh(self, idp: str, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.key_refresh(idp, ok)

    async def aclose(self) -> None:
        if self.tracing is not None:
            # The SDK's shutdown exports what is queued with blocking HTTP: not on the loop.
            await asyncio.to_thread(self.tracing.shutdown)


def telemetry_for(config: TelemetryConfig) -> Telemetry | None:
    if not config.metrics.enabled and not config.traces.enabled:
        return None
    tracing = None
    if config.traces.enabled:
        try:
            from .tracing import Tracing  # the [otel] extra: imported only when traces are on
        except ImportError:
            raise ConfigError(
                "traces need the OpenTelemetry SDK, which is not installed",
                path="telemetry.traces.enabled",
                hint="pip install 'mcp-bastion[otel]', or set telemetry.traces.enabled: false",
            ) from None
        tracing = Tracing(config.traces)
    metrics = (
        GatewayMetrics(stage_histograms=config.metrics.stage_histograms) if config.metrics.enabled else None
    )
    return Telemetry(metrics, tracing)
