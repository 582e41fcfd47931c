"""A graceful stop (SIGTERM): answers in flight finish, nothing that arrives is left unanswered.

The order, each step for a reason measured or specified:

1. **Closing.** From now on every answer says `Connection: close` (RFC 9112 §9.6), so a
   kept-alive connection ends after its last answer instead of being cut under a request
   the client is sending. A request that arrives meanwhile (on an idle kept-alive connection,
   or a new connection) gets `503` with `Connection: close` rather than a closed socket:
   before, a stop closed idle connections and the listener at once, and requests racing with
   it (16 under load) were dropped unanswered, indistinguishable from a crash.
2. **Streams.** An open-ended event stream (an SSE answer to a GET) never finishes on its
   own: after `stream_grace` it is ended cleanly, its chunked body closed with the last
   chunk, so the client reads a complete response and reconnects (elsewhere).
3. **Everything else** gets until `grace`; what is still running then is stopped: a
   request not yet answered gets `503`, a streamed answer is ended as in 2.
4. **Listener and idle connections** close last. The listener stayed open so connections
   already queued in the kernel's backlog were answered (503) instead of reset.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from .connection import ServerState
from .cycle import RequestCycle

__all__ = ["DrainPolicy", "drain"]

log = logging.getLogger("mcp_bastion.server")
STOP_WAIT_SECONDS = 1.0  # how long requests stopped at the end of the grace get to unwind


@dataclass(frozen=True, slots=True)
class DrainPolicy:
    grace: float = 25.0  # under Kubernetes' default 30 s between SIGTERM and SIGKILL
    stream_grace: float = 2.0


async def drain(state: ServerState, listener: asyncio.AbstractServer, policy: DrainPolicy) -> None:
    """Stop serving `state`'s connections gracefully (see the module docstring), then close
    `listener` and every connection left."""
    state.closing = True
    loop = state.loop
    began = loop.time()
    log.info(
        "shutting down: draining %d request(s) in flight on %d connection(s) (grace %gs, streams %gs)",
        len(state.tasks),
        len(state.connections),
        policy.grace,
        min(policy.stream_grace, policy.grace),
    )
    if state.tasks:
        await _wait(state, min(policy.stream_grace, policy.grace))
        _end(c for c in _running(state) if _is_stream(c))
        await _wait(state, policy.grace - (loop.time() - began))
        left = list(_running(state))
        if state.tasks:
            log.warning("stopping %d request(s) still running after %gs", len(left), policy.grace)
            _end(left)
            for task in state.tasks:  # a request whose client left: nothing to answer, just stop
                task.cancel()
            await _wait(state, STOP_WAIT_SECONDS)
        log.info("drained in %.1fs", loop.time() - began)
    listener.close()
    for connection in list(state.connections):
        if not connection.transport.is_closing():
            connection.transport.close()


async def _wait(state: ServerState, timeout: float) -> None:
    if state.tasks and timeout > 0:
        await asyncio.wait(set(state.tasks), timeout=timeout)


def _running(state: ServerState) -> Iterator[RequestCycle]:
    for connection in list(state.connections):
        cycle = connection.cycle
        if cycle is not None and cycle.task is not None and not cycle.task.done():
            yield cycle


def _is_stream(cycle: RequestCycle) -> bool:
    """An open-ended stream: a GET whose answer has begun and has no end of its own."""
    return cycle.scope["method"] == "GET" and cycle.response_started and not cycle.response_complete


def _end(cycles: Iterator[RequestCycle] | list[RequestCycle]) -> None:
    for cycle in list(cycles):
        cycle.end()
