"""The audit spool in a real `mcp-bastion serve` process: killed with SIGKILL under load, and
with its audit file unable to grow (the kernel refusing writes past a size, as a full disk
does), no answered request ends without its audit event.

The full disk is simulated with RLIMIT_FSIZE (no tmpfs can be mounted without root): past the
limit the kernel takes part of a write, then fails the next with EFBIG, as it takes part of a
write and then fails with ENOSPC when a disk fills up. The limit is lifted from outside
(`prlimit`), as an operator frees space.
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'


def _free_port() -> int:
    sock = bind_loopback()
    port = int(sock.getsockname()[1])
    sock.close()  # free again for serve to bind (loopback, ephemeral range)
    return port


@contextlib.contextmanager
def _serve(
    tmp_path: Path, upstream: str, audit: dict[str, Any], limit_file_size: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    config = tmp_path / f"bastion-{port}.yaml"
    config.write_text(
        json.dumps(
            {
                "public_base_url": f"http://127.0.0.1:{port}",
                "listen": {"port": port},
                "audit": audit,
                "servers": [{"name": "rec", "upstream": upstream, "auth": False}],
            }
        )
    )

    def limit() -> None:  # in the child, before exec
        if limit_file_size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, resource.RLIM_INFINITY))

    log = tmp_path / f"serve-{port}.log"
    command = [sys.executable, "-m", "mcp_bastion.cli", "serve", "--config", str(config)]
    with (
        log.open("w") as stderr,
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=limit) as process,
    ):
        base = f"http://127.0.0.1:{port}"
        try:
            _until(lambda: _healthy(base, process, log), "serve did not start")
            yield process, base
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)


def _healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"serve exited early: {Path(log).read_text()}")
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _until(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    # Polling a subprocess's port or file: there is no event in this process to wait on.
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        pause.wait(0.05)


def _ping(http: httpx.Client, base: str, trace_id: str) -> bool:
    headers = {**HEADERS, "traceparent": f"00-{trace_id}-{'1' * 16}-01"}
    response = http.post(f"{base}/rec/mcp", content=PING, headers=headers)
    return response.status_code == 200 and response.json().get("result") == {}


def _delivered(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines()]  # every line whole JSON


def test_kill_9_under_load_then_restart_loses_no_answered_event(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    spool = {"dir": str(tmp_path / "spool"), "segment_bytes": 65_536, "retry_max_seconds": 0.2}
    audit = {"sink": "file", "path": str(audit_file), "spool": spool}
    answered: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def load(base: str, worker: int) -> None:
        with httpx.Client(timeout=5) as http:
            for n in range(100_000):
                trace_id = f"{worker + 1:08x}{n:024x}"  # never all zeroes (an invalid trace id)
                try:
                    ok = _ping(http, base, trace_id)
                except httpx.TransportError:
                    return  # the gateway was killed: this answer never arrived
                if ok:
                    with lock:
                        answered.append(trace_id)
                        if len(answered) >= 1200:
                            enough.set()

    with serve_asgi(RecordingUpstream()) as up:
        # The audit file cannot grow past 128 KiB (about 330 events) in the first process, so
        # the crash hits it with hundreds of events waiting in the spool, and others in flight.
        with _serve(tmp_path, f"{up.base_url}/mcp", audit, limit_file_size=131_072) as (process, base):
            clients = [threading.Thread(target=load, args=(base, w)) for w in range(4)]
            for client in clients:
                client.start()
            assert enough.wait(60)
            process.send_signal(signal.SIGKILL)  # mid-load: requests in flight, deliveries under way
            process.wait(timeout=15)
            for client in clients:
                client.join(timeout=30)
        before_restart = len(_delivered(audit_file))
        with _serve(tmp_path, f"{up.base_url}/mcp", audit):  # the same spool, a new process
            wanted = set(answered)
            _until(
                lambda: wanted <= {e["trace_id"] for e in _delivered(audit_file)},
                "events of answered requests are missing after the restart",
            )
    events = _delivered(audit_file)
    by_id: dict[str, str] = {}
    for event in events:
        assert (
            by_id.setdefault(event["id"], event["trace_id"]) == event["trace_id"]
        )  # a duplicate is the same event
    assert len(answered) >= 1200
    assert wanted <= set(by_id.values())  # lost: 0
    assert before_restart < len(answered) // 2  # most waited in the spool across the crash
    print(f"answered {len(answered)}, delivered {len(by_id)} events, {len(events) - len(by_id)} duplicates")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_audit_file_full_events_wait_in_the_spool_and_all_arrive_once_in_order(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    audit = {
        "sink": "file",
        "path": str(audit_file),
        "spool": {"dir": str(tmp_path / "spool"), "segment_bytes": 65_536, "retry_max_seconds": 0.2},
    }
    sent = [f"{n:032x}" for n in range(1, 3001)]  # about 1.3 MB of events: 5 times what fits
    with serve_asgi(RecordingUpstream()) as up:
        with _serve(tmp_path, f"{up.base_url}/mcp", audit, limit_file_size=262_144) as (process, base):
            with httpx.Client(timeout=5) as http:
                assert _ping(http, base, sent[0])
                rss_before = _rss_kib(process.pid)
                assert all(_ping(http, base, trace_id) for trace_id in sent[1:])
                # The spool takes the events: the gateway stays healthy while the file cannot grow.
                assert http.get(f"{base}/healthz").status_code == 200
                assert audit_file.stat().st_size <= 262_144
                assert len(_delivered(audit_file)) < len(sent)  # the outage is real
                rss_grew = _rss_kib(process.pid) - rss_before
                resource.prlimit(
                    process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2
                )  # space again
                _until(lambda: len(_delivered(audit_file)) >= len(sent), "the spool was not delivered")
    events = _delivered(audit_file)
    assert [e["trace_id"] for e in events] == sent  # each once, in order, no half line
    assert len({e["id"] for e in events}) == len(sent)
    assert rss_grew < 20_000  # KiB: the backlog is on disk, not in memory
    log = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert "audit destination failing" in log
    assert "audit destination recovered" in log
