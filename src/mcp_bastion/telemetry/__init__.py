"""Telemetry: Prometheus metrics, OpenTelemetry traces and the readiness probe (docs/telemetry.md).

The pipeline sees one object, `Telemetry` (or None when metrics and traces are both off);
`tracing` is imported only when traces are on, since it needs the `[otel]` extra.
"""

from .gateway_metrics import GatewayMetrics
from .observer import RequestObserver, Telemetry, telemetry_for
from .readiness import KeyStatus, Readiness

__all__ = ["GatewayMetrics", "KeyStatus", "Readiness", "RequestObserver", "Telemetry", "telemetry_for"]
