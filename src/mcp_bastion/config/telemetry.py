"""The `telemetry:` section: Prometheus metrics, OpenTelemetry traces and the readiness probe.

Everything is off by default: a gateway without this section pays nothing for it on the
request path (docs/performance.md). `/healthz` and `/readyz` are always served.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["MetricsConfig", "ReadinessConfig", "TelemetryConfig", "TracesConfig"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class MetricsConfig(_Model):
    """Prometheus metrics, served on a listener of their own (never on the public one)."""

    enabled: bool = False
    # Loopback by default: the metrics name servers and IdPs, which an operator may not publish.
    host: str = Field(default="127.0.0.1", description="Address the metrics listener binds.")
    port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of the metrics listener; with N workers, worker i takes the first free "
        "port of port … port+N-1.",
    )
    # Off by default: a timer around each of the six stages before Forward costs about 10 µs per
    # call on the compiled build (docs/performance.md); Forward (the upstream call) is always timed.
    stage_histograms: bool = Field(
        default=False, description="Time every stage, not only Forward (the upstream call)."
    )


class TracesConfig(_Model):
    """OpenTelemetry traces over OTLP/HTTP (needs the `[otel]` extra)."""

    enabled: bool = False
    endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces", description="The OTLP/HTTP traces endpoint."
    )
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of traces recorded (by trace id)."
    )
    # A client's `sampled` flag is input it controls: obeying it lets any caller force every
    # request into the exporter's queue. Off by default; the trace id is continued either way.
    follow_client_sampling: bool = Field(
        default=False, description="Record a trace whenever the caller's traceparent says sampled."
    )
    service_name: str = Field(default="mcp-bastion", min_length=1, max_length=128)
    timeout_seconds: float = Field(default=10, gt=0, le=60, description="Export request timeout.")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, found {value!r}")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (they would be logged with the URL)")
        return value


class ReadinessConfig(_Model):
    """What `/readyz` requires beyond every IdP's keys and a healthy audit sink."""

    check_upstreams: bool = Field(
        default=False, description="Also require every upstream to answer an HTTP request."
    )
    upstream_timeout_seconds: float = Field(default=2, gt=0, le=30)
    # /readyz is unauthenticated: a flood of probes must not become a flood of upstream requests.
    cache_seconds: float = Field(
        default=2, ge=0.1, le=60, description="How long one upstream check answers every probe."
    )


class TelemetryConfig(_Model):
    metrics: MetricsConfig = MetricsConfig()
    traces: TracesConfig = TracesConfig()
    readiness: ReadinessConfig = ReadinessConfig()
