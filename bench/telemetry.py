"""µs per whole MCP exchange through the gateway in one process, telemetry off and on.

`python -m bench.telemetry [N]` drives the gateway's ASGI app directly (no sockets, no
HTTP parsing: what is left is the chain itself, where telemetry adds its cost) with a
`tools/call` that is authenticated, authorized, forwarded to an in-memory upstream and
audited (to a sink that drops events), N times per round, the variants interleaved over
several rounds; the best round of each is reported, as timeit does. Time is this process's
CPU time (all its threads: the SDK's export thread counts), not wall time, so other processes
on the shared cores disturb it less:

- `off`: no `telemetry:` section (the gateway calls nothing);
- `metrics`: Prometheus metrics on, as configured by default (counters, the end-to-end and
  the Forward histograms, the stream gauge);
- `metrics_stages`: the same with `stage_histograms: true` (a timer around every stage);
- `traces`: OpenTelemetry spans, every trace recorded (`sample_ratio: 1`), exported by the
  SDK's batch processor to an exporter that drops them (the OTLP encoding and HTTP export
  run on the SDK's thread and are not in this number);
- `traces_unsampled`: `sample_ratio: 0` (ids still made and propagated, nothing recorded);
- `both`: metrics (as configured by default) and traces.

The verifier is a stand-in that knows the token (the real one's cost is the same in every
variant); the caller sends a `traceparent`, as an instrumented client does.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from mcp_bastion.app import build_gateway
from mcp_bastion.asgi import Headers, Message
from mcp_bastion.audit import NullSink
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.pipeline.gateway import Gateway
from mcp_bastion.telemetry import GatewayMetrics, Telemetry
from mcp_bastion.upstream.transport import ResponseHeaders, UpstreamResponse

PUBLIC = "https://gw.example"
CALLER = Principal("bench", "https://idp.example", "bench", frozenset({"tools.read"}), "h", 4e9)
BODY = orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "search"}})
ANSWER = orjson.dumps({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "found"}]}})
HEADERS: Headers = [
    (b"host", b"gw.example"),
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
    (b"authorization", b"Bearer bench-token"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"content-length", str(len(BODY)).encode()),
]
VARIANTS = ("off", "metrics", "metrics_stages", "traces", "traces_unsampled", "both")


class KnownToken:
    def remembered(self, authorization: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        return CALLER

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        return CALLER


class Answer:
    status = 200
    headers = ResponseHeaders([(b"content-type", b"application/json")])

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    async def read_all(self, cap: int) -> bytes | None:
        return self._body


def _tool_list(request: bytes) -> bytes:
    """The upstream's list, asked once when the gateway first needs the tool's annotations."""
    tools = [{"name": "search", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}}]
    return orjson.dumps({"jsonrpc": "2.0", "id": orjson.loads(request)["id"], "result": {"tools": tools}})


class MemoryUpstream:
    target = "http://upstream.test/mcp"

    async def open(
        self, method: str, headers: Headers, body: bytes, read_timeout: float | None
    ) -> UpstreamResponse:
        return Answer(_tool_list(body) if b'"tools/list"' in body else ANSWER)

    def close(self, response: UpstreamResponse) -> None:
        return None


def _telemetry(variant: str) -> Telemetry | None:
    if variant == "off":
        return None
    tracing = None
    if variant in ("traces", "traces_unsampled", "both"):
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        from mcp_bastion.config.telemetry import TracesConfig
        from mcp_bastion.telemetry.tracing import Tracing

        class Dropped(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        ratio = 0.0 if variant == "traces_unsampled" else 1.0
        tracing = Tracing(TracesConfig(enabled=True, sample_ratio=ratio), exporter=Dropped())
    metrics = (
        GatewayMetrics(stage_histograms=variant == "metrics_stages")
        if variant in ("metrics", "metrics_stages", "both")
        else None
    )
    return Telemetry(metrics, tracing)


def _gateway(variant: str) -> Gateway:
    config = parse_config(
        {
            "public_base_url": PUBLIC,
            "identity_providers": [{"name": "idp", "issuer": "https://idp.example"}],
            "servers": [
                {"name": "bench", "upstream": MemoryUpstream.target, "upstream_auth": {"type": "none"}}
            ],
            "audit": {"sink": "none"},
            "sessions": {"key": {"env": "UNUSED"}},
        }
    )
    return build_gateway(
        LoadedConfig(config, {"sessions.key": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="}),
        audit=NullSink(),
        verifier=KnownToken(),
        transport_for=lambda server: MemoryUpstream(),
        telemetry=_telemetry(variant),
    )


async def _exchanges(gateway: Gateway, number: int) -> float:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/bench/mcp",
        "headers": HEADERS,
        "client": ("127.0.0.1", 1),
    }
    request: Message = {"type": "http.request", "body": BODY, "more_body": False}
    status = 0

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    started = time.process_time()
    for _ in range(number):
        await gateway(scope, receive, send)
    elapsed = time.process_time() - started
    assert status == 200, status
    return elapsed / number * 1e6


def measure_telemetry(number: int = 5_000, rounds: int = 5) -> dict[str, float]:
    gateways = {variant: _gateway(variant) for variant in VARIANTS}
    best = dict.fromkeys(VARIANTS, float("inf"))

    async def run() -> None:
        for gateway in gateways.values():
            await _exchanges(gateway, 200)  # warm: key caches, memos, first spans
        for _ in range(rounds):
            for variant, gateway in gateways.items():
                gc.collect()
                best[variant] = min(best[variant], await _exchanges(gateway, number))

    asyncio.run(run())
    for gateway in gateways.values():
        telemetry = gateway.telemetry
        if isinstance(telemetry, Telemetry) and telemetry.tracing is not None:
            telemetry.tracing.shutdown()
    return {f"{variant}_us": round(value, 2) for variant, value in best.items()}


if __name__ == "__main__":
    from mcp_bastion.native import build_description

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    print(json.dumps({**measure_telemetry(count), "build": build_description(), "exchanges": count}))
