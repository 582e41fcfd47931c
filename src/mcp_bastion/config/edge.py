"""Configuration of the gateway's edge beyond where it binds: how it stops (`listen.drain`).

Referenced from `ListenConfig` in `model.py`; documented in docs/operations.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DrainConfig"]


class DrainConfig(BaseModel):
    """A graceful stop on SIGTERM (server/drain.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Under Kubernetes' default terminationGracePeriodSeconds (30): the drain must end before
    # the SIGKILL that follows, or the answers it was finishing are lost after all.
    grace_seconds: float = Field(
        default=25,
        ge=0,
        le=3600,
        description="How long requests in flight get to finish after SIGTERM; what still runs is then "
        "stopped (503, or a stream ended cleanly).",
    )
    stream_grace_seconds: float = Field(
        default=2,
        ge=0,
        le=3600,
        description="How long an open event stream (an SSE answer to a GET) runs on after SIGTERM before "
        "it is ended cleanly; at most grace_seconds.",
    )

    @model_validator(mode="after")
    def _stream_within_grace(self) -> DrainConfig:
        if self.stream_grace_seconds > self.grace_seconds:
            raise ValueError("stream_grace_seconds must not exceed grace_seconds")
        return self
