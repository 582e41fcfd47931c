"""One plug-in process: spawned without a shell, initialized once, supervised until it stops.

The gateway is the plug-in's only MCP client. It sends its own `initialize` (declaring no
client capabilities, so the plug-in never asks it for roots, sampling or elicitation) and
then writes requests whose ids it chose: every id the plug-in sees is gateway-unique, so a
response is matched to exactly the call that is waiting for it, whatever ids the callers
used. Notifications the plug-in sends go only to the call they belong to (`relay.py`:
progress by the gateway's own progress token, logging only from a per-subject process), and
a caller's `notifications/cancelled` reaches the plug-in only for a call of that caller's
(`cancel_for`); a request the plug-in sends is answered here (`ping`) or refused (-32601).

Supervision: when the process exits, or its stdout closes, every call in flight fails at
once with a JSON-RPC error; stderr goes to the gateway's log, line by line, bounded and
escaped, never to a client. `stop()` is the MCP stdio close sequence: close stdin, wait,
SIGTERM, wait, SIGKILL (to the process group while its leader lives: an `npx` wrapper's
children get the signals too).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import UpstreamError, UpstreamTimeout
from ..mcp.era import LEGACY_VERSIONS
from ..mcp.jsonrpc import INTERNAL_ERROR, METHOD_NOT_FOUND
from .framing import LineReader, Oversize
from .relay import NoteStream, Notifications, progress_token_of

__all__ = ["CANCELLED", "IDENTITY_META", "PluginProcess", "ProcessSpec", "error_response"]

log = logging.getLogger("mcp_bastion.stdio")

IDENTITY_META = "io.github.mcp-bastion/identity"
CLIENT_INFO = {"name": "mcp-bastion", "version": "0.1"}
STDERR_LINE_BYTES = 2048
STDERR_LINES_PER_MINUTE = 120  # beyond this a chatty (or hostile) plug-in cannot flood the log
_ID_IN_EDGE = re.compile(rb'"id"\s*:\s*(\d{1,18})')
CANCELLED = "the request was cancelled by the client"
REASON_CHARS = 200


@dataclass(frozen=True)
class ProcessSpec:
    """What to run: argv, working directory, the whole environment, and the bounds."""

    server: str
    argv: tuple[str, ...]
    cwd: str | None
    env: Mapping[str, str]
    max_line_bytes: int
    start_timeout: float
    stop_timeout: float


def _progress_rewritten(params: dict[str, Any], gateway_id: int, call: _Call) -> dict[str, Any]:
    """The params the plug-in sees: the caller's progress token replaced by the call's
    gateway-unique id (kept on the call), or removed when the caller reads no stream."""
    meta = params["_meta"]
    if "progressToken" not in meta:
        return params
    rest = {k: v for k, v in meta.items() if k != "progressToken"}
    token = progress_token_of(meta)
    if token is not None and call.stream is not None:
        call.progress_token = token
        rest["progressToken"] = gateway_id
    return {**params, "_meta": rest}


def error_response(request_id: Any, message: str, code: int = INTERNAL_ERROR) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class _Call:
    __slots__ = ("future", "original_id", "owner", "progress_token", "sent_at", "stream")

    def __init__(
        self, original_id: Any, sent_at: float, owner: str | None, stream: NoteStream | None
    ) -> None:
        self.original_id = original_id
        self.sent_at = sent_at
        self.owner = owner  # the caller's subject key: whose cancel may reach this call
        self.stream = stream  # where this call's notifications go (None: the caller reads none)
        self.progress_token: str | int | None = None  # the caller's own token, put back on progress
        self.future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()


class PluginProcess:
    """A running plug-in. `call()` sends one request and awaits its response (id restored)."""

    def __init__(self, spec: ProcessSpec, on_fail: Callable[[PluginProcess], None]) -> None:
        self.spec = spec
        self._on_fail = on_fail
        self._proc: asyncio.subprocess.Process | None = None
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self.initialize_result: dict[str, Any] = {}
        self.protocol_version = LEGACY_VERSIONS[0]
        self.started_at = 0.0
        self.last_used = time.monotonic()
        self.last_read = 0.0
        self.stopping = False
        self.failed = False
        self.exited = asyncio.Event()
        self._stderr_budget = (0.0, 0)
        self.notifications = Notifications(spec.server, per_subject=False)
        self.logs_wanted = False  # a session-era caller asked this per-subject process for logs

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: the signal that ended it)."""
        return self._proc.returncode if self._proc is not None else None

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def start(self, identity: str | None) -> None:
        """Spawn and run the initialize handshake; UpstreamError if either fails."""
        spec = self.spec
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=spec.cwd,
                env=dict(spec.env),
                start_new_session=True,  # its own process group, so stop() reaches its children
            )
        except OSError as exc:
            log.error("cannot start the plug-in of %s: %s", spec.server, exc.strerror or exc)
            raise UpstreamError("the stdio plug-in could not be started") from None
        self.started_at = time.monotonic()
        self.notifications.per_subject = identity is not None  # only a per-subject process is told
        proc = self._proc
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._tasks = [
            asyncio.ensure_future(self._read_stdout(LineReader(proc.stdout, spec.max_line_bytes))),
            asyncio.ensure_future(self._read_stderr(LineReader(proc.stderr, STDERR_LINE_BYTES))),
            asyncio.ensure_future(self._watch()),
        ]
        params: dict[str, Any] = {
            "protocolVersion": LEGACY_VERSIONS[0],
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        if identity is not None:
            params["_meta"] = {IDENTITY_META: identity}  # a per-subject process learns who it serves
        try:
            answer = await self.call("initialize", params, None, spec.start_timeout)
        except UpstreamError:
            await self.stop()
            raise UpstreamError("the stdio plug-in did not complete initialize") from None
        result = answer.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        if not isinstance(result, dict) or version not in LEGACY_VERSIONS:
            await self.stop()
            raise UpstreamError("the stdio plug-in refused initialize or speaks an unknown protocol version")
        self.initialize_result = result
        self.protocol_version = str(version)
        await self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        log.info("started the plug-in of %s (pid %s, protocol %s)", spec.server, proc.pid, version)

    async def call(
        self,
        method: str,
        params: Any,
        original_id: Any,
        timeout: float | None,
        *,
        owner: str | None = None,
        stream: NoteStream | None = None,
    ) -> dict[str, Any]:
        """One request with a gateway-chosen id; its response with `original_id` put back.
        `stream` receives the call's progress (and a per-subject process's logs)."""
        if method == "logging/setLevel" and not self.notifications.per_subject:
            # A shared process's logs reach no client (relay.py): its level is not any one
            # caller's to set for all the others. Answered here, as the plug-in would.
            return {"jsonrpc": "2.0", "id": original_id, "result": {}}
        gateway_id = next(self._ids)
        call = _Call(original_id, time.monotonic(), owner, stream)
        self._calls[gateway_id] = call
        self.last_used = call.sent_at
        if isinstance(params, dict) and isinstance(params.get("_meta"), dict):
            params = _progress_rewritten(params, gateway_id, call)
        if method == "logging/setLevel" and self.notifications.per_subject:
            self.logs_wanted = True
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": gateway_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            # One deadline over the write (a plug-in that stops reading stdin blocks it) and
            # the answer; asyncio.timeout arms a timer, where wait_for would start a task.
            async with asyncio.timeout(timeout):
                await self._write(message)
                return await call.future
        except TimeoutError:
            await self._timed_out(gateway_id, call)
            raise UpstreamTimeout("the stdio plug-in did not answer in time") from None
        except asyncio.CancelledError:
            # The client went away (JR-12): tell the plug-in, as an HTTP upstream's socket closing would.
            if self._calls.pop(gateway_id, None) is not None and not self.stopping:
                self._later(self.cancel(gateway_id, "the client disconnected"))
            raise
        finally:
            self._calls.pop(gateway_id, None)
            self.last_used = time.monotonic()

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def cancel_for(self, owner: str, original_id: Any, reason: Any) -> bool:
        """A caller's `notifications/cancelled`: forwarded, with the gateway's id, only for a
        call in flight that is that caller's own and the only one of theirs with that id (ids
        of different callers collide by design; a caller's two calls with one id are ambiguous).
        The call is answered at once with an error: the plug-in will not answer it."""
        if isinstance(original_id, bool) or not isinstance(original_id, (str, int)):
            return False
        mine = [
            (gid, call)
            for gid, call in self._calls.items()
            if call.owner == owner
            and type(call.original_id) is type(original_id)
            and call.original_id == original_id
        ]
        if len(mine) != 1:
            return False
        gateway_id, call = mine[0]
        del self._calls[gateway_id]
        if not call.future.done():
            call.future.set_result(error_response(call.original_id, CANCELLED))
        text = reason[:REASON_CHARS] if isinstance(reason, str) else "cancelled by the client"
        await self.cancel(gateway_id, text)
        return True

    async def cancel(self, gateway_id: int, reason: str) -> None:
        note = {"requestId": gateway_id, "reason": reason}
        # Bounded: a plug-in that stops reading stdin must not hold a client's cancel POST open.
        with contextlib.suppress(UpstreamError, TimeoutError):
            async with asyncio.timeout(self.spec.stop_timeout):
                await self._write({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": note})

    def _fail(self) -> None:
        """Misbehaving (exited unasked, wedged, an unattributable line, stdout closed): told to
        the pool at once, so the next call meets the backoff, not this dying process; then stopped."""
        if self.failed:
            return
        self.failed = self.stopping = True
        self._on_fail(self)
        self._later(self.stop())

    async def stop(self) -> None:
        """The MCP stdio close sequence: stdin closed, then SIGTERM, then SIGKILL; always reaped."""
        self.stopping = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            proc.stdin.close()
            if not await self._exited_within(self.spec.stop_timeout):
                self._signal(signal.SIGTERM)
                if not await self._exited_within(self.spec.stop_timeout):
                    self._signal(signal.SIGKILL)
        await proc.wait()  # reaped: no zombie stays behind
        for task in self._tasks:
            task.cancel()
        self._fail_all("the stdio plug-in was stopped")

    async def _exited_within(self, seconds: float) -> bool:
        assert self._proc is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.exited.wait()), seconds)
        except TimeoutError:
            return False
        return True

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def _write(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None or self.exited.is_set():
            raise UpstreamError("the stdio plug-in is not running")
        async with self._write_lock:
            try:
                proc.stdin.write(orjson.dumps(message) + b"\n")
                await proc.stdin.drain()  # a plug-in that stops reading stdin blocks only this call
            except (BrokenPipeError, ConnectionResetError):
                raise UpstreamError("the stdio plug-in is not running") from None

    async def _timed_out(self, gateway_id: int, call: _Call) -> None:
        self._calls.pop(gateway_id, None)
        if self.last_read < call.sent_at and not self.stopping:
            # Not one line since this call was written: the plug-in is wedged, not slow.
            log.warning(
                "the plug-in of %s wrote nothing during a call's whole timeout: restarting it",
                self.spec.server,
            )
            self._fail()
            return
        await self.cancel(gateway_id, "timed out at the gateway")

    async def _watch(self) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        self.exited.set()
        if not self.stopping or self.failed:
            log.warning(
                "the plug-in of %s (pid %s) exited with status %s", self.spec.server, self._proc.pid, code
            )
        self._fail_all("the stdio plug-in exited")
        if not self.stopping:
            self._fail()  # exited unasked: a crash

    def _fail_all(self, message: str) -> None:
        calls, self._calls = self._calls, {}
        for call in calls.values():
            if not call.future.done():
                call.future.set_result(error_response(call.original_id, message))

    async def _read_stdout(self, reader: LineReader) -> None:
        while (line := await reader.next()) is not None:
            self.last_read = time.monotonic()
            if isinstance(line, Oversize):
                self._oversize(line)
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                if line.strip():
                    # Banners, debug prints, NUL bytes: not MCP; dropped, never relayed.
                    log.warning(
                        "the plug-in of %s wrote a line that is not JSON (%d bytes): ignored",
                        self.spec.server,
                        len(line),
                    )
                continue
            for item in message if isinstance(message, list) else (message,):
                if isinstance(item, dict):
                    await self._dispatch(item)
        # stdout closed: whatever was in flight will never be answered.
        self._fail_all("the stdio plug-in closed its output")
        if not self.stopping:
            self._fail()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if isinstance(method, str):
            if "id" in message:  # a request from the plug-in to its client
                answer: dict[str, Any] = (
                    {"jsonrpc": "2.0", "id": message["id"], "result": {}}
                    if method == "ping"
                    else error_response(message["id"], "not supported through mcp-bastion", METHOD_NOT_FOUND)
                )
                with contextlib.suppress(UpstreamError):
                    await self._write(answer)
            else:
                self.notifications.route(message, self._calls)  # to its own caller, or no one
            return
        gateway_id = message.get("id")
        call = self._calls.pop(gateway_id, None) if isinstance(gateway_id, int) else None
        if call is None or call.future.done():
            return  # an answer to nothing we asked, or asked twice: dropped
        message["id"] = call.original_id
        call.future.set_result(message)

    def _oversize(self, line: Oversize) -> None:
        server = self.spec.server
        for edge in (line.head, line.tail):
            for match in _ID_IN_EDGE.finditer(edge):
                call = self._calls.pop(int(match.group(1)), None)
                if call is not None and not call.future.done():
                    log.warning(
                        "the plug-in of %s wrote a %d-byte line: dropped, the call fails", server, line.size
                    )
                    call.future.set_result(
                        error_response(
                            call.original_id, "the stdio plug-in's answer exceeds stdio.max_line_bytes"
                        )
                    )
                    return
        # A dropped line nobody can be matched to may have been someone's answer: start afresh.
        log.warning(
            "the plug-in of %s wrote a %d-byte line of unknown purpose: restarting it", server, line.size
        )
        if not self.stopping:
            self._fail()

    async def _read_stderr(self, reader: LineReader) -> None:
        pid = self.pid
        while (line := await reader.next()) is not None:
            now = time.monotonic()
            window, count = self._stderr_budget
            if now - window > 60:
                if count > STDERR_LINES_PER_MINUTE:
                    log.warning(
                        "plug-in %s[%s]: %d stderr lines not logged",
                        self.spec.server,
                        pid,
                        count - STDERR_LINES_PER_MINUTE,
                    )
                window, count = now, 0
            count += 1
            self._stderr_budget = (window, count)
            if count > STDERR_LINES_PER_MINUTE:
                continue
            if isinstance(line, Oversize):
                text = line.head[:200].decode("utf-8", "replace") + f"… ({line.size} bytes)"
            else:
                text = line.decode("utf-8", "replace")
            # Escaped: a plug-in cannot forge log lines (CR, ANSI escapes) through its stderr.
            log.info(
                "plug-in %s[%s]: %s", self.spec.server, pid, text.encode("unicode_escape").decode("ascii")
            )
