"""The audit sink in front of the spool: events go to disk at once, a background task delivers them.

`emit` appends the event to the spool before the gateway sends the answer's last byte
(`pipeline/gateway.py`), so a process killed at any instant has on disk the event of every
answer a client received. The fsync policy decides what a power loss may take (the last
event-loop turn with `every_batch`, up to `fsync_interval_seconds` with `interval`).

When the spool cannot take an event (its disk full or failing, or `max_bytes` reached with
`on_failure: refuse`), the event waits in memory, bounded (`MAX_PENDING_BYTES`; past it
the oldest go, each one counted in `lost` and logged), `healthy` turns false (/readyz,
/healthz and the metrics say so; with `on_failure: refuse` new MCP requests get 503), and the spool is retried
every second. A destination that fails only makes events wait in the spool: the sink stays
healthy while the spool has room.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from typing import Literal

from ..config.model import AuditConfig
from ..errors import ConfigError
from .destinations import Destination, RotatingFileDestination, StreamDestination
from .events import AuditEvent
from .spool import Spool, SpoolFull

__all__ = ["SpooledSink", "spooled_sink"]

log = logging.getLogger("mcp_bastion.audit")

MAX_PENDING_BYTES = 16 * 1_048_576
RETRY_SECONDS = 1.0
FIRST_BACKOFF_SECONDS = 0.05
LINGER_SECONDS = 0.01

FsyncPolicy = Literal["every_batch", "interval", "never"]


class SpooledSink:
    def __init__(
        self,
        spool: Spool,
        destination: Destination,
        *,
        fsync: FsyncPolicy = "every_batch",
        fsync_interval: float = 1.0,
        batch_events: int = 500,
        retry_max: float = 30.0,
    ) -> None:
        self.spool = spool
        self.destination = destination
        self.healthy = True
        self.lost = 0  # events never stored: memory bound passed while the spool was failing
        self.delivered = 0
        self._fsync = fsync
        self._fsync_interval = fsync_interval
        self._last_sync = time.monotonic()
        self._sync_handle: asyncio.Handle | None = None
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_bytes = 0
        self._retry: asyncio.TimerHandle | None = None
        self._batch_events = batch_events
        self._retry_max = retry_max
        self._wake: asyncio.Event | None = None
        self.destination_failing = False
        self._closed = False
        self._syncing: asyncio.Future[None] | None = None
        self._dirty = False

    # -- the request path ----------------------------------------------------------------

    def emit(self, event: AuditEvent) -> None:
        line = event.to_json()
        if self._pending:
            self._hold(line)
            return
        try:
            self.spool.append(line)
        except (SpoolFull, OSError) as exc:
            self._hold(line)
            self._failing(exc)
            return
        self._written()

    def flush(self) -> None:
        """Store what waits in memory, and sync the spool (shutdown, and the retry timer)."""
        self._retry = None
        if self._closed:
            return
        while self._pending:
            try:
                self.spool.append(self._pending[0])
            except (SpoolFull, OSError) as exc:
                self._failing(exc)
                return
            self._pending_bytes -= len(self._pending.popleft())
        if not self.healthy:
            log.error("audit spool recovered; events held in memory are stored")
            self.healthy = True
        if self._fsync != "never":
            self._sync()
        if self._wake is not None:
            self._wake.set()

    def _written(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._fsync == "never" or self._sync_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._sync()
            return
        if self._fsync == "every_batch":
            self._sync_handle = loop.call_soon(self._sync)
        else:
            delay = max(0.0, self._last_sync + self._fsync_interval - time.monotonic())
            self._sync_handle = loop.call_later(delay, self._sync)

    def _sync(self) -> None:
        """fdatasync the segment, in a worker thread when a loop runs (the loop does not stop
        for the disk); one at a time, and one more after it if events came meanwhile."""
        self._sync_handle = None
        self._last_sync = time.monotonic()
        if self._syncing is not None:
            self._dirty = True
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        try:
            if loop is None:
                self.spool.sync()
                return
            fd = self.spool.writer_fd()
        except OSError as exc:
            self._failing(exc)
            return
        self._syncing = loop.run_in_executor(None, _sync_and_close, fd)
        self._syncing.add_done_callback(self._synced)

    def _synced(self, future: asyncio.Future[None]) -> None:
        self._syncing = None
        if future.cancelled():
            return
        failure = future.exception()
        if failure is not None:
            self._failing(failure)
        elif self._dirty:
            self._dirty = False
            self._sync()

    def _hold(self, line: bytes) -> None:
        self._pending.append(line)
        self._pending_bytes += len(line)
        while self._pending_bytes > MAX_PENDING_BYTES:
            self._pending_bytes -= len(self._pending.popleft())
            self.lost += 1
            if self.lost % 1000 == 1:
                log.error(
                    "audit events lost: the spool cannot store them and memory is full; %d so far", self.lost
                )

    def _failing(self, exc: BaseException) -> None:
        if self.healthy:
            reason = "full" if isinstance(exc, SpoolFull) else f"failing ({_why(exc)})"
            log.error("audit spool %s; holding events in memory and retrying", reason)
            self.healthy = False
        if self._retry is None:
            try:
                self._retry = asyncio.get_running_loop().call_later(RETRY_SECONDS, self.flush)
            except RuntimeError:
                self._retry = None  # no loop: the next flush retries

    # -- delivery ------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver from the spool until cancelled: batches in order, retried with backoff."""
        self._wake = wake = asyncio.Event()
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            if not await self.deliver_once():
                wake.clear()
                if self.spool.backlog:  # failed: wait, then try the same batch again
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._retry_max)
                    continue
                await wake.wait()
                # Linger: events of the next few loop turns go in the same batch (one read,
                # one write or POST, one cursor save for all of them, not one per turn).
                await asyncio.sleep(LINGER_SECONDS)
            backoff = FIRST_BACKOFF_SECONDS

    async def deliver_once(self) -> bool:
        """Deliver every waiting batch; False if none waited or the destination failed."""
        any_delivered = False
        while (batch := self.spool.read(self._batch_events)) is not None:
            try:
                if batch.lines:
                    await self.destination.deliver(batch)
            except Exception as exc:  # any failure of a destination is a retry
                if not self.destination_failing:
                    log.error(
                        "audit destination failing (%s); events wait in the spool at %s",
                        type(exc).__name__,
                        self.spool.path,
                    )
                    self.destination_failing = True
                return False
            self.spool.commit(batch)
            self.delivered += len(batch.lines)
            any_delivered = True
            if self.destination_failing:
                log.error("audit destination recovered; delivering the spool")
                self.destination_failing = False
        return any_delivered

    async def aclose(self) -> None:
        """At shutdown: store what waits, deliver what the destination takes now, close."""
        self.flush()
        if self._sync_handle is not None:
            self._sync_handle.cancel()
        while (syncing := self._syncing) is not None:
            # A sync that finished has its `_synced` callback queued, not run: awaiting the
            # finished future does not yield, so this loop would spin forever without the
            # sleep(0) that lets the callback run. Its failure is the callback's to report.
            with contextlib.suppress(Exception):
                await asyncio.shield(syncing)
            await asyncio.sleep(0)
        if self._retry is not None:
            self._retry.cancel()
        try:
            await asyncio.wait_for(self.deliver_once(), timeout=5.0)
        except TimeoutError:
            log.error("audit: delivery at shutdown timed out; the rest waits in the spool")
        await self.destination.aclose()
        self._closed = True
        self.spool.close()


def _sync_and_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _why(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return f"{type(exc).__name__}: {strerror}" if strerror else type(exc).__name__


def _otlp_destination(config: AuditConfig, secret: str | None) -> Destination:
    try:
        from .otlp import OtlpLogsDestination  # the [otel] extra: imported only for this sink
    except ImportError:
        raise ConfigError(
            "sink 'otlp' needs opentelemetry-proto, which is not installed",
            path="audit.sink",
            hint="pip install 'mcp-bastion[otel]', or choose another audit.sink",
        ) from None
    assert config.otlp is not None
    return OtlpLogsDestination(config.otlp, secret)


def spooled_sink(config: AuditConfig, secret: str | None = None) -> SpooledSink:
    """The sink `audit.spool` configures: the spool, and the destination `audit.sink` names."""
    spool_config = config.spool
    assert spool_config is not None
    destination: Destination
    if config.sink == "webhook":
        from .webhook import WebhookDestination

        assert config.webhook is not None
        destination = WebhookDestination(config.webhook, secret)
    elif config.sink == "otlp":
        destination = _otlp_destination(config, secret)
    elif config.sink == "file":
        assert config.path is not None
        rotate = config.rotate
        destination = RotatingFileDestination(
            config.path, max_bytes=rotate.max_bytes if rotate else 0, keep=rotate.keep if rotate else 0
        )
    else:
        destination = StreamDestination(1)
    spool = Spool(
        spool_config.dir,
        max_bytes=spool_config.max_bytes,
        segment_bytes=spool_config.segment_bytes,
        drop_oldest=config.on_failure == "buffer",
        durable=spool_config.fsync != "never",
    )
    return SpooledSink(
        spool,
        destination,
        fsync=spool_config.fsync,
        fsync_interval=spool_config.fsync_interval_seconds,
        batch_events=spool_config.batch_events,
        retry_max=spool_config.retry_max_seconds,
    )
