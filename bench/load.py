"""One measurement: wrk against one target for a few seconds, with the target's own costs.

Around the wrk run the bench reads the CPU time of the target's process tree and the
fixture upstream's counters, so each sample carries CPU µs per call and upstream HTTP
requests per call next to wrk's throughput and latency.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import resource
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from .procs import CLOCK_TICKS

LUA = Path(__file__).with_name("verify.lua")
# Each run (wrk or probe) numbers its requests from its own base: ids never repeat in a bench run.
_ID_BLOCK = 10_000_000
_id_bases = itertools.count(_ID_BLOCK, _ID_BLOCK)


@dataclass(frozen=True)
class Sample:
    target: str
    workload: str
    round: int
    requests: int  # answers received, good or bad
    errors: int  # failed checks + socket errors + timeouts
    seconds: float
    rps: float  # verified answers per second
    p50_ms: float
    p99_ms: float
    cpu_us_per_call: float | None  # CPU until idle / calls the upstream received: the report's figure
    cpu_us_per_request: float | None  # CPU during the run / answers: skewed when latency nears the run
    upstream_per_call: float | None  # upstream requests during the run / answers (in-flight ones add a bit)
    background_cores: float | None  # busy CPU on the machine not spent by the target, its upstream or wrk
    sample_error: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    """What wrk sends: a body template (``@N@`` = request number) and how to check answers."""

    body: str
    check: str  # echo | list | session
    headers: Mapping[str, str]
    expected_tools: int = 0
    method: str = "tools/call"  # what reaches the upstream once per call


Stats = Callable[[], dict[str, Any]]


def run_wrk(
    url: str,
    request: Request,
    *,
    connections: int,
    seconds: float,
    cpu: Callable[[], float],
    upstream: Stats,
    upstream_cpu: Callable[[], float] | None,
    target: str,
    workload: str,
    round_: int,
) -> Sample:
    """Run wrk, then wait for the target to go idle; charge it all the CPU it used until then.

    The CPU per call divides by the calls the fixture upstream received for this workload's
    method (one per proxied call, counted after the target went idle), so requests that
    were in flight when wrk stopped are charged to the target and counted too.
    """
    cpu_before, up_before = cpu(), upstream()
    others_before = (_machine_busy(), _children_cpu(), upstream_cpu() if upstream_cpu else 0.0)
    done = subprocess.run(
        _argv(url, request, connections, seconds),
        env=_env(request),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    cpu_run, up_run = cpu(), upstream()
    others_after = (_machine_busy(), _children_cpu(), upstream_cpu() if upstream_cpu else 0.0)
    wait_idle(cpu)
    cpu_idle, up_idle = cpu(), upstream()
    result, sample_error = _parse(done.stdout, done.stderr)
    requests = int(result["requests"])
    bad = int(result["bad"])
    errors = bad + sum(int(result[k]) for k in ("connect", "read", "write", "timeout"))
    duration = int(result["duration_us"]) / 1e6
    calls = _method_count(up_idle, request.method) - _method_count(up_before, request.method)
    busy, wrk_cpu, upstream_spent = (
        after - before for after, before in zip(others_after, others_before, strict=True)
    )
    background = busy - wrk_cpu - upstream_spent - (cpu_run - cpu_before)
    return Sample(
        target=target,
        workload=workload,
        round=round_,
        requests=requests,
        errors=errors,
        seconds=round(duration, 3),
        rps=round(max(0, requests - bad) / duration, 1) if duration else 0.0,
        p50_ms=round(float(result["p50_us"]) / 1000, 3),
        p99_ms=round(float(result["p99_us"]) / 1000, 3),
        cpu_us_per_call=round((cpu_idle - cpu_before) * 1e6 / calls, 1) if calls > 0 else None,
        cpu_us_per_request=round((cpu_run - cpu_before) * 1e6 / requests, 1) if requests else None,
        upstream_per_call=round((up_run["requests"] - up_before["requests"]) / requests, 3)
        if requests
        else None,
        background_cores=round(max(0.0, background) / duration, 2) if duration else None,
        sample_error=sample_error,
    )


def _argv(url: str, request: Request, connections: int, seconds: float) -> list[str]:
    argv = [
        "wrk",
        "-t1",  # one wrk thread: the servers under test need the other core
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
    ]
    for name, value in request.headers.items():
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url]


def _env(request: Request) -> dict[str, str]:
    return dict(
        os.environ,
        BENCH_ID_BASE=str(next(_id_bases)),
        BENCH_BODY=request.body,
        BENCH_CHECK=request.check,
        BENCH_TOOLS=str(request.expected_tools),
    )


def _machine_busy() -> float:
    """Seconds of busy CPU on the whole machine since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def machine_load(seconds: float = 2.0) -> float:
    """Busy cores on the machine over a short window (before the bench starts anything)."""
    before, started = _machine_busy(), time.monotonic()
    time.sleep(seconds)
    return (_machine_busy() - before) / (time.monotonic() - started)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, once subprocess.run has reaped it
    return usage.ru_utime + usage.ru_stime


def _method_count(stats: dict[str, Any], method: str) -> int:
    return int(stats.get("methods", {}).get(method, 0))


def _parse(stdout: str, stderr: str) -> tuple[dict[str, object], str]:
    result: dict[str, object] | None = None
    sample = ""
    for line in stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            result = json.loads(line[len("BENCH-RESULT ") :])
        elif line.startswith("BENCH-SAMPLE "):
            sample = line[len("BENCH-SAMPLE ") :][:300]
    if result is None:
        raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")
    return result, sample


def wait_idle(cpu: Callable[[], float], timeout: float = 20.0, window: float = 0.1) -> float:
    """Wait until a target stops using CPU (it may still be working on abandoned requests).

    wrk hangs up on the requests in flight when its time is up; a slow target keeps working
    on them and would steal the cores from the next target's measurement. Returns the wait.
    """
    started = time.monotonic()
    last = cpu()
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = cpu()
        if now - last <= 0.011:  # at most one clock tick in the window
            break
        last = now
    return time.monotonic() - started


def probe(url: str, request: Request, upstream: Stats, count: int) -> tuple[float | None, str]:
    """Exact upstream HTTP requests per call: `count` calls one after another, counter around them.

    The wrk runs count the same thing approximately (requests in flight when wrk stops reached
    the upstream but are not among wrk's answers); this is the figure the report uses.
    """
    before = upstream()["requests"]
    base = next(_id_bases)
    with httpx.Client(timeout=30, trust_env=False) as client:
        for n in range(base + 1, base + count + 1):
            reply = client.post(
                url, content=request.body.replace("@N@", str(n)), headers=dict(request.headers)
            )
            if not _verified(request, reply, n):
                return None, f"{reply.status_code} {reply.text[:200]}"
    return round((_settled_count(upstream) - before) / count, 3), ""


def _settled_count(upstream: Stats, window: float = 0.2) -> int:
    """The upstream's request count once it stops moving (FastMCP closes sessions after answering)."""
    last = upstream()["requests"]
    for _ in range(50):
        time.sleep(window)
        now = upstream()["requests"]
        if now == last:
            return int(now)
        last = now
    return int(last)


def _verified(request: Request, reply: httpx.Response, n: int) -> bool:
    """The checks of verify.lua, for one answer whose id must be n."""
    text = reply.text
    if reply.status_code != 200 or not re.search(rf'"id"\s*:\s*{n}\b', text):
        return False
    if request.check == "echo":
        return f'"echo {n}"' in text
    if request.check == "list":
        return text.count('"inputSchema"') == request.expected_tools
    return "mcp-session-id" in reply.headers and '"protocolVersion"' in text
