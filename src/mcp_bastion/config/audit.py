"""The durable audit spool and the destinations behind it (`audit/spool.py`, `docs/audit.md`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Model, SecretRef, http_url

__all__ = ["OtlpLogsConfig", "RotateConfig", "SpoolConfig", "WebhookConfig"]

MIB = 1_048_576


class SpoolConfig(Model):
    """Events are appended here before the answer's last byte is sent, and delivered from here."""

    dir: str = Field(description="Folder of the spool (one `lane-N` per worker process); created if absent.")
    max_bytes: int = Field(
        default=1024 * MIB,
        ge=2 * MIB,
        description="Disk the spool may use. Full: `audit.on_failure: refuse` answers 503 until events "
        "are delivered; `buffer` drops the oldest segment, its events counted and logged.",
    )
    segment_bytes: int = Field(default=16 * MIB, ge=64 * 1024, le=1024 * MIB)
    # every_batch: one fdatasync per event-loop turn that wrote events (power loss loses at most
    # that turn); interval: at most every `fsync_interval_seconds`; never: the kernel's choice.
    # A process crash (kill -9) loses nothing under any policy: events are written before the answer.
    fsync: Literal["every_batch", "interval", "never"] = "every_batch"
    fsync_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    batch_events: int = Field(default=500, ge=1, le=100_000, description="Events per delivery at most.")
    retry_max_seconds: float = Field(
        default=30.0, ge=0.01, le=3600, description="Longest wait between retries of a failing destination."
    )


class RotateConfig(Model):
    """`sink: file` through the spool: the file is renamed `path.1` (… `path.N`) past `max_bytes`."""

    max_bytes: int = Field(default=100 * MIB, ge=4096)
    keep: int = Field(default=5, ge=1, le=1000)


class WebhookConfig(Model):
    """A SIEM's HTTP collector: batches POSTed, retried with backoff until a 2xx."""

    url: str
    format: Literal["ndjson", "array"] = Field(
        default="ndjson", description="`ndjson`: one event per line; `array`: one JSON array per batch."
    )
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    secret: SecretRef | None = Field(
        default=None, description="The header's value (e.g. `Bearer …` or a Splunk HEC token line)."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value, "put the secret in `secret`")


class OtlpLogsConfig(Model):
    """An OpenTelemetry collector: each event one OTLP LogRecord, a batch one protobuf POST."""

    endpoint: str = Field(
        description="The OTLP/HTTP logs URL, path included (e.g. `http://collector:4318/v1/logs`)."
    )
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    secret: SecretRef | None = Field(default=None, description="The header's value (e.g. `Bearer …`).")
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return http_url(value, "put the secret in `secret`")
