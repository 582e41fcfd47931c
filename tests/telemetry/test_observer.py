"""What the gateway calls, and what it does not: off means unwrapped stages and no call;
telemetry that fails never costs the exchange its answer or its audit event."""

from __future__ import annotations

import asyncio

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import MemorySink
from mcp_bastion.config import LoadedConfig
from mcp_bastion.config.model import ServerConfig
from mcp_bastion.pipeline.exchange import Exchange
from mcp_bastion.pipeline.gateway import Gateway
from mcp_bastion.telemetry import GatewayMetrics, Telemetry, telemetry_for

from ..pipeline.fakes import POST_HEADERS, SESSION_KEY, CannedTransport, Received, Sent, config, json_response

PING = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}'
SERVER = {
    "name": "demo",
    "upstream": "http://upstream.test/mcp",
    "auth": False,
    "upstream_auth": {"type": "none"},
}


class BrokenMetrics(GatewayMetrics):
    def finished(self, ex: Exchange) -> None:
        raise RuntimeError("a bug in telemetry")


def _gateway(telemetry: Telemetry | None, audit: MemorySink) -> Gateway:
    transport = CannedTransport(json_response(200, {"jsonrpc": "2.0", "id": 1, "result": {}}))

    def transport_for(server: ServerConfig) -> CannedTransport:
        return transport

    return build_gateway(
        LoadedConfig(config(SERVER), {"sessions.key": SESSION_KEY}),
        audit=audit,
        transport_for=transport_for,
        telemetry=telemetry,
    )


def _ping(gateway: Gateway) -> Sent:
    sent = Sent()
    headers = [(k.encode(), v.encode()) for k, v in POST_HEADERS.items()]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/demo/mcp",
        "headers": headers,
        "client": ("203.0.113.9", 1),
    }
    receive = Received({"type": "http.request", "body": PING, "more_body": False})
    asyncio.run(gateway(scope, receive, sent))
    return sent


def test_with_telemetry_off_nothing_is_called_and_no_stage_is_wrapped() -> None:
    gateway = _gateway(None, MemorySink())
    assert gateway.telemetry is None
    names = [type(stage).__name__ for stage in gateway._stages]
    assert names == [
        "EdgeChecks",
        "Authenticate",
        "ReadBody",
        "ParseMcp",
        "OpenRequestState",
        "Authorize",
        "Forward",
    ]


def test_with_metrics_on_forward_is_timed_and_with_stage_histograms_every_stage() -> None:
    default = telemetry_for(config(SERVER, telemetry={"metrics": {"enabled": True}}).telemetry)
    names = [type(stage).__name__ for stage in _gateway(default, MemorySink())._stages]
    assert names == [
        "EdgeChecks",
        "Authenticate",
        "ReadBody",
        "ParseMcp",
        "OpenRequestState",
        "Authorize",
        "_MeteredForward",
    ]
    every = _gateway(Telemetry(GatewayMetrics(stage_histograms=True)), MemorySink())
    assert {type(stage).__name__ for stage in every._stages} == {"_TimedStage", "_MeteredForward"}


def test_telemetry_that_fails_costs_neither_the_answer_nor_the_audit_event() -> None:
    audit = MemorySink()
    sent = _ping(_gateway(Telemetry(BrokenMetrics()), audit))
    assert sent.status == 200
    assert [(event.method, event.decision) for event in audit.events] == [("ping", "allow")]
