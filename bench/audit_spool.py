"""µs per audit event: the direct stream sink against the spool with each fsync policy.

One process, one event loop, as a loaded worker runs it: each loop turn emits `turn` events
(the requests answered in that turn), then yields, so the end-of-turn work runs (the stream
sink's one write, the spool's fdatasync with `every_batch`) and the deliverer moves events
from the spool to the file. The clock runs from the first emit until the last event is in
the destination file, so delivery is in the cost. Printed per configuration:

- `emit_us`: time inside `emit` per event (what the request path pays before its last byte);
- `total_us`: wall time per event, delivery and fsync included;
- `fsyncs`: fdatasync calls made.

    python -m bench.audit_spool [EVENTS] [TURN] [--dir PATH]

`--dir` puts the spool and the file on the disk to measure (default: a temporary folder).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp_bastion.audit import AuditEvent, Spool, SpooledSink, StreamSink
from mcp_bastion.audit.destinations import RotatingFileDestination


def _events(count: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            time.time(),
            os.urandom(16).hex(),
            "demo",
            "tools/call",
            "search",
            "allow",
            "ok",
            200,
            1.234,
            "alice@example.com",
            "client-1",
            "https://idp.example.com",
            os.urandom(16).hex(),
            "2025-11-25",
            ("tools.read",),
        )
        for _ in range(count)
    ]


class _Counting:
    def __init__(self) -> None:
        self.calls = 0
        self._real = os.fdatasync

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self._real(fd)


async def _spooled(folder: Path, events: list[AuditEvent], turn: int, fsync: Any) -> dict[str, float]:
    spool = Spool(
        folder / "spool",
        max_bytes=1 << 34,
        segment_bytes=64 << 20,
        drop_oldest=False,
        durable=fsync != "never",
    )
    target = folder / "audit.jsonl"
    sink = SpooledSink(spool, RotatingFileDestination(str(target)), fsync=fsync, fsync_interval=1.0)
    runner = asyncio.create_task(sink.run())
    await asyncio.sleep(0)
    counting = _Counting()
    os.fdatasync = counting  # type: ignore[assignment]
    try:
        emit_ns = 0
        start = time.perf_counter_ns()
        for i in range(0, len(events), turn):
            before = time.perf_counter_ns()
            for event in events[i : i + turn]:
                sink.emit(event)
            emit_ns += time.perf_counter_ns() - before
            await asyncio.sleep(0)
        while sink.delivered < len(events):
            await asyncio.sleep(0)
        total_ns = time.perf_counter_ns() - start
    finally:
        os.fdatasync = counting._real  # type: ignore[assignment]
    runner.cancel()
    await sink.aclose()
    return _result(events, emit_ns, total_ns, counting.calls)


async def _direct(folder: Path, events: list[AuditEvent], turn: int) -> dict[str, float]:
    with (folder / "direct.jsonl").open("ab", buffering=0) as stream:
        sink = StreamSink(stream)
        emit_ns = 0
        start = time.perf_counter_ns()
        for i in range(0, len(events), turn):
            before = time.perf_counter_ns()
            for event in events[i : i + turn]:
                sink.emit(event)
            emit_ns += time.perf_counter_ns() - before
            await asyncio.sleep(0)
        sink.flush()
        total_ns = time.perf_counter_ns() - start
    return _result(events, emit_ns, total_ns, 0)


def _result(events: list[AuditEvent], emit_ns: int, total_ns: int, fsyncs: int) -> dict[str, float]:
    return {
        "emit_us": round(emit_ns / len(events) / 1000, 2),
        "total_us": round(total_ns / len(events) / 1000, 2),
        "fsyncs": fsyncs,
    }


def main(argv: list[str]) -> None:
    folder_arg = None
    if "--dir" in argv:
        at = argv.index("--dir")
        folder_arg = argv[at + 1]
        argv = argv[:at] + argv[at + 2 :]
    count = int(argv[0]) if argv else 100_000
    turn = int(argv[1]) if len(argv) > 1 else 32
    events = _events(count)
    results: dict[str, dict[str, float]] = {}
    for name in ("direct", "never", "interval", "every_batch"):
        with tempfile.TemporaryDirectory(dir=folder_arg) as folder:
            if name == "direct":
                results[name] = asyncio.run(_direct(Path(folder), events, turn))
            else:
                results[name] = asyncio.run(_spooled(Path(folder), events, turn, name))
    print(json.dumps({"events": count, "per_turn": turn, "results": results}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
