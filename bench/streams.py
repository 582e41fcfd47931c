"""Idle SSE streams: hold N long `tools/call` SSE answers open at once, weigh the target.

Each stream is a session-era `tools/call` of the fixture's `hold` tool, which answers with
an SSE stream, sends one event, then stays silent until the client leaves. A stream counts
as open once the target has sent its response head; the bench then waits until the target
has finished its work for them (its CPU idle, the fixture's request counter still), reads
the target's RSS, and reports (RSS with the streams - RSS before) / N.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .targets import Target
from .workloads import HOLD

BATCH = 100
PRIME = 10
DRAIN_SECONDS = 3.0
# Unique over the whole bench run and far from the load runs' ids (bench.load).
_stream_ids = itertools.count(900_000_000_000)


@dataclass(frozen=True)
class StreamSample:
    target: str
    streams: int
    opened: int
    upstream_held: int
    rss_before_mb: float
    rss_after_mb: float
    kb_per_stream: float | None
    seconds_to_open: float  # until every response head arrived
    seconds_to_settle: float  # until the target went idle (FastMCP opens its upstream session late)
    settled: bool
    left_open_upstream: int  # upstream streams still open DRAIN_SECONDS after the clients hung up

    def to_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def measure_idle_streams(
    target: Target, count: int, *, prime: bool = True, timeout: float = 90.0
) -> StreamSample:
    if prime:
        # A first small batch, closed again, so one-time costs (lazy imports, first buffers)
        # are in the baseline rather than charged to the streams.
        asyncio.run(_measure(target, PRIME, timeout))
    return asyncio.run(_measure(target, count, timeout))


async def _measure(target: Target, count: int, timeout: float) -> StreamSample:
    held_before = target.upstream.stats()["holding"]
    rss_before = target.process.rss_bytes()
    started = time.monotonic()
    writers: list[asyncio.StreamWriter] = []
    opened = 0
    try:
        for first in range(0, count, BATCH):
            results = await asyncio.gather(
                *(_open(target, next(_stream_ids), timeout) for _ in range(min(BATCH, count - first))),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, asyncio.StreamWriter):
                    writers.append(result)
                    opened += 1
        seconds = time.monotonic() - started
        held, settled = await _settle(target, held_before, time.monotonic() + timeout)
        rss_after = target.process.rss_bytes()
        settle = time.monotonic() - started
    finally:
        for writer in writers:
            writer.close()
    left_open = await _drain(target, held_before)
    return StreamSample(
        target=target.key,
        streams=count,
        opened=opened,
        upstream_held=held,
        rss_before_mb=round(rss_before / 2**20, 1),
        rss_after_mb=round(rss_after / 2**20, 1),
        kb_per_stream=round((rss_after - rss_before) / 1024 / opened, 1) if opened else None,
        seconds_to_open=round(seconds, 2),
        seconds_to_settle=round(settle, 2),
        settled=settled,
        left_open_upstream=left_open,
    )


async def _open(target: Target, number: int, timeout: float) -> asyncio.StreamWriter:
    url = urlsplit(target.url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port), timeout)
    body = HOLD.replace("@N@", str(number)).encode()
    writer.write(_request(url.path, f"{url.hostname}:{url.port}", target.headers("legacy"), body))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    if not head.startswith(b"HTTP/1.1 200"):
        writer.close()
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode("latin-1"))
    return writer


def _request(path: str, host: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _settle(target: Target, held_before: int, deadline: float) -> tuple[int, bool]:
    """Wait until the target has done all its work for the streams: its CPU idle, the upstream quiet.

    Proxies may open several upstream requests per stream (FastMCP opens a whole session),
    so the number held upstream is reported, not waited for.
    """
    last = (-1, -1.0)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = (target.upstream.requests(), target.cpu_seconds())
        if now[0] != last[0] or now[1] - last[1] > 0.02:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0:
            return target.upstream.stats()["holding"] - held_before, True
    return target.upstream.stats()["holding"] - held_before, False


async def _drain(target: Target, held_before: int) -> int:
    """Wait for the target to close its upstream streams once the clients are gone."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        left = target.upstream.stats()["holding"] - held_before
        if left <= 0:
            return 0
        await asyncio.sleep(0.2)
    return int(target.upstream.stats()["holding"] - held_before)
