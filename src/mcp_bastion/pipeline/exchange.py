"""One request's journey through the chain: what each stage learned, in one place.

Stages read and fill this object in order; the audit stage reads it at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..asgi import Headers, Receive, Scope, Send
from ..auth.principal import Principal
from ..errors import RequestRejected
from ..mcp.calls import Call
from ..mcp.era import Era
from ..mcp.jsonrpc import Message
from ..route import ServerRoute
from ..trace import TraceContext

__all__ = ["CYCLE_EXTENSION", "Exchange", "RequestHeaders", "ServerCycle", "read_headers"]

CYCLE_EXTENSION = "mcp_bastion.cycle"  # scope["extensions"] key set by the gateway's own server

# The request headers any stage looks at; everything else is ignored (and never forwarded).
_KNOWN = {
    name.encode(): name
    for name in (
        "host",
        "origin",
        "authorization",
        "content-type",
        "content-length",
        "accept",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "mcp-session-id",
        "last-event-id",
        "traceparent",
        "tracestate",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-for",
    )
}


class RequestHeaders(dict[str, str]):
    """The known request headers by lower-case name (a dict: lookups are C-speed), plus the
    `Mcp-Param-*` headers, forwarded untouched (transports §Custom Headers)."""

    __slots__ = ("params", "size")

    def __init__(self, values: dict[str, str], params: Headers, size: int) -> None:
        super().__init__(values)
        self.params = params
        self.size = size


def read_headers(raw: Headers, max_bytes: int) -> RequestHeaders:
    """Pick out the headers we use; refuse oversized sets (431) and duplicated known headers (400)."""
    values: dict[str, str] = {}
    params: Headers = []
    size = 0
    for name_b, value_b in raw:
        size += len(name_b) + len(value_b) + 4
        name = _KNOWN.get(name_b)
        if name is None:
            if name_b.startswith(b"mcp-param-"):
                params.append((name_b, value_b))
            continue
        if name in values:
            # Two Authorization or Mcp-* headers: which one would the upstream believe? Neither.
            raise RequestRejected(f"duplicate {name} header", status=400)
        # RFC 9110 §5.5: surrounding whitespace is not part of a field value (httptools keeps it).
        values[name] = value_b.decode("latin-1").strip(" \t")
    if size > max_bytes:
        raise RequestRejected("request headers too large", status=431)
    return RequestHeaders(values, params, size)


class ServerCycle(Protocol):
    """What the gateway's own server offers beyond ASGI (`server/connection.py`); under any
    other ASGI server the stages fall back to plain `receive()`."""

    @property
    def body_complete(self) -> bool: ...
    @property
    def gone(self) -> bool: ...
    def on_disconnect(self, callback: Callable[[], None]) -> None: ...
    def forget_disconnect(self, callback: Callable[[], None]) -> None: ...


@dataclass(slots=True)
class Exchange:
    scope: Scope
    receive: Receive
    send: Send
    route: ServerRoute
    headers: RequestHeaders
    trace: TraceContext
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    body: bytes = b""
    era: Era | None = None
    messages: tuple[Message, ...] = ()
    calls: tuple[Call, ...] = ()
    upstream_session: str | None = None
    required: tuple[tuple[str, ...], ...] = ()  # per call
    policy_ids: tuple[tuple[str, ...], ...] = ()  # per call: the policies that refused it
    status: int = 0
    # Set only when the gateway itself answered with an error; an upstream's own error status
    # is still an allowed call as far as the gateway's decision goes.
    outcome: Literal["deny", "error"] | None = None
    reason: str = ""
    cycle: ServerCycle | None = None  # set when served by the gateway's own server
    # Safety filter verdicts by call index, for the audit (`pipeline/screen.py`); None: none ran.
    filters: dict[int, tuple[str, ...]] | None = None
    quota: str | None = None  # the quota rule or cap that refused the request (quota/)

    @property
    def http_method(self) -> str:
        method: str = self.scope["method"]
        return method
