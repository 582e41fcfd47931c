"""How a `command:` server's processes are run (docs/stdio.md): one validated block per server.

Every bound a hostile or broken plug-in could push against has a default here: the line
cap (a plug-in that writes a 50 MB line must not make the gateway buffer it), the process
caps (a stream of new subjects must not fork-bomb the host), the start and stop deadlines.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["StdioOptions"]


class StdioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # One process per verified subject by default: user A's process never holds user B's data.
    process: Literal["per_subject", "shared"] = Field(
        default="per_subject",
        description="`per_subject`: one process per verified caller (isolation); `shared`: one process "
        "for everyone, request ids and progress tokens rewritten so no caller sees another's messages.",
    )
    idle_timeout_seconds: float = Field(
        default=300, gt=0, le=86_400, description="A process with no call in flight for this long is stopped."
    )
    max_processes: int = Field(
        default=32, ge=1, le=4096, description="Processes of this server at once (per worker)."
    )
    max_requests_per_subject: int = Field(
        default=16, ge=1, le=10_000, description="Calls in flight per caller on this server; beyond it, 503."
    )
    # A plug-in's stdout is read in chunks; a line longer than this is dropped as it arrives,
    # never buffered whole, and the call it answered fails (docs/stdio.md "Framing").
    max_line_bytes: int = Field(
        default=16 * 1_048_576,
        ge=4096,
        le=1024 * 1_048_576,
        description="The longest JSON-RPC line a plug-in may write.",
    )
    start_timeout_seconds: float = Field(
        default=30, gt=0, le=600, description="Spawn to the answer of the gateway's own initialize."
    )
    stop_timeout_seconds: float = Field(
        default=5, gt=0, le=300, description="Wait after closing stdin, then after SIGTERM, before SIGKILL."
    )
    restart_backoff_seconds: float = Field(
        default=1,
        gt=0,
        le=300,
        description="First wait before restarting a crashed process; doubles to 60 s.",
    )
