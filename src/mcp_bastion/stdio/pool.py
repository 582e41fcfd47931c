"""A server's plug-in processes: which process serves a caller, the caps, idle stop, restarts.

`per_subject`: one process per verified subject (the key is a digest of issuer and subject),
so one user's process never holds another user's data. `shared`: one process for everyone
(the key is empty); isolation then rests on the gateway-unique request ids (`process.py`).
Either way: at most `max_processes` processes (an idle one is stopped to make room, else
503), at most `max_requests_per_subject` calls in flight per caller, a process idle for
`idle_timeout_seconds` is stopped, and a key whose process crashed waits out a backoff
(doubling to 60 s) before the next start, so a plug-in that dies at once is not respawned
in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..config.stdio import StdioOptions
from ..errors import UpstreamError
from .process import PluginProcess, ProcessSpec

__all__ = ["PluginsBusy", "ProcessPool"]

log = logging.getLogger("mcp_bastion.stdio")
MAX_BACKOFF_S = 60.0
HEALTHY_AFTER_S = 60.0  # a process that lived this long resets its key's backoff


class PluginsBusy(UpstreamError):
    """The process or per-caller cap is reached: try again later."""

    status = 503
    error = "temporarily_unavailable"


class ProcessPool:
    def __init__(
        self, spec: ProcessSpec, options: StdioOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.spec = spec
        self._options = options
        self._clock = clock
        self.processes: dict[str, PluginProcess] = {}
        self._starting: dict[str, asyncio.Future[PluginProcess]] = {}
        self._crashes: dict[str, tuple[int, float]] = {}
        self._subject_calls: dict[str, int] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._dying: set[PluginProcess] = set()
        self._closed = False

    def key_for(self, subject: str) -> str:
        return subject if self._options.process == "per_subject" else ""

    def enter(self, subject: str) -> None:
        """Count one call in flight for `subject`; PluginsBusy past the cap."""
        count = self._subject_calls.get(subject, 0)
        if count >= self._options.max_requests_per_subject:
            raise PluginsBusy("too many calls in flight for this caller on this stdio server")
        self._subject_calls[subject] = count + 1

    def leave(self, subject: str) -> None:
        count = self._subject_calls.get(subject, 1) - 1
        if count:
            self._subject_calls[subject] = count
        else:
            self._subject_calls.pop(subject, None)

    async def process(self, key: str, identity: str | None) -> PluginProcess:
        """The running process for `key`, started (once, however many wait) if there is none."""
        if self._closed:
            raise UpstreamError("the gateway is shutting down")
        running = self.processes.get(key)
        if running is not None and not running.stopping:
            return running
        starting = self._starting.get(key)
        if starting is None:
            self._check_backoff(key)
            self._make_room()
            # Only a per-subject process is told at start whom it serves (a shared one serves all).
            told = identity if self._options.process == "per_subject" else None
            starting = self._starting[key] = asyncio.ensure_future(self._start(key, told))
            starting.add_done_callback(lambda _: self._starting.pop(key, None))
        return await asyncio.shield(starting)

    async def _start(self, key: str, identity: str | None) -> PluginProcess:
        process = PluginProcess(self.spec, lambda p: self._failed(key, p))
        try:
            await process.start(identity)
        except UpstreamError:
            if not process.failed:  # else the process told us already
                self._record_crash(key)
            raise
        self.processes[key] = process
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())
        return process

    def _check_backoff(self, key: str) -> None:
        crashes = self._crashes.get(key)
        if crashes is not None and self._clock() < crashes[1]:
            wait = crashes[1] - self._clock()
            raise UpstreamError(f"the stdio plug-in crashed and restarts in {wait:.0f} s")

    def _record_crash(self, key: str) -> None:
        count = self._crashes.get(key, (0, 0.0))[0] + 1
        delay = min(self._options.restart_backoff_seconds * 2 ** (count - 1), MAX_BACKOFF_S)
        self._crashes[key] = (count, self._clock() + delay)

    def _failed(self, key: str, process: PluginProcess) -> None:
        if self.processes.get(key) is process:
            del self.processes[key]
        # Still stopping: shutdown waits for it too (never a process left unreaped at exit).
        self._dying = {p for p in self._dying if not p.exited.is_set()} | {process}
        if time.monotonic() - process.started_at >= HEALTHY_AFTER_S:
            self._crashes.pop(key, None)
        self._record_crash(key)

    def _make_room(self) -> None:
        if len(self.processes) + len(self._starting) < self._options.max_processes:
            return
        idle = [p for p in self.processes.values() if p.in_flight == 0 and not p.stopping]
        if not idle:
            raise PluginsBusy("every process of this stdio server is busy")
        oldest = min(idle, key=lambda p: p.last_used)
        self._stop_later(oldest)

    def _stop_later(self, process: PluginProcess) -> None:
        for key, running in list(self.processes.items()):
            if running is process:
                del self.processes[key]
        task = asyncio.ensure_future(process.stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _sweep(self) -> None:
        idle_after = self._options.idle_timeout_seconds
        while True:
            await asyncio.sleep(min(idle_after / 4, 30.0))
            now = time.monotonic()
            for process in list(self.processes.values()):
                if process.in_flight == 0 and now - process.last_used >= idle_after:
                    log.info("stopping the idle plug-in of %s (pid %s)", self.spec.server, process.pid)
                    self._stop_later(process)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for starting in list(self._starting.values()):
            with contextlib.suppress(BaseException):
                await starting
        processes = [*self.processes.values(), *self._dying]
        self.processes.clear()
        await asyncio.gather(*(p.stop() for p in processes), *self._stopping, return_exceptions=True)
