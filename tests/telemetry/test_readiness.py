"""/readyz: ready only with every IdP's keys, a healthy audit sink and (when asked) answering
upstreams; /healthz stays liveness. Real JWKS endpoint, real upstream, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx

from mcp_bastion.audit import MemorySink
from mcp_bastion.telemetry import Readiness
from mcp_bastion.upstream.transport import ResponseHeaders, UpstreamResponse

from ..support.gateway import post_mcp
from ..support.issuer import LocalIssuer
from ..support.observed import observed_gateway
from ..support.prometheus import parse_exposition
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, refused_port, serve_asgi

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}


class FlakyIdP:
    """An IdP whose metadata and JWKS answer 503 until `failing` is cleared."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer
        self.failing = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.failing:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"down"})
            return
        await self.issuer.app(scope, receive, send)


@contextlib.contextmanager
def flaky_idp() -> Iterator[FlakyIdP]:
    sock = bind_loopback()
    idp = FlakyIdP(LocalIssuer(f"http://127.0.0.1:{sock.getsockname()[1]}"))
    with serve_asgi(idp, sock=sock):
        yield idp


def test_not_ready_while_no_idp_keys_could_be_fetched_then_ready_once_the_jwks_recovers() -> None:
    # The case the issue names: the log says no keys could be fetched, /healthz says 200.
    now = [time.time()]
    with (
        flaky_idp() as idp,
        serve_asgi(RecordingUpstream()) as up,
        observed_gateway(
            idp.issuer.issuer,
            {"rec": f"{up.base_url}/mcp"},
            telemetry={"metrics": {"enabled": True}},
            clock=lambda: now[0],
        ) as gw,
        httpx.Client(timeout=10) as http,
    ):
        assert http.get(f"{gw.base_url}/healthz").status_code == 200  # liveness: the process runs
        probe = http.get(f"{gw.base_url}/readyz")
        assert probe.status_code == 503
        assert probe.json() == {"status": "not ready", "keys": {"test": False}, "audit": True}
        token = idp.issuer.token(audience=gw.url("rec"), scopes="tools.read")
        assert post_mcp(http, gw.url("rec"), PING, token=token).status_code == 401  # what not ready means
        metrics = parse_exposition(http.get(gw.metrics_url).text)
        assert metrics.value("mcp_bastion_jwks_refreshes_total", idp="test", result="failure") >= 1
        assert metrics.value("mcp_bastion_jwks_keys_loaded", idp="test") == 0

        idp.failing = False
        now[0] += 2  # past the key set's one-second pause between forced attempts
        probe = http.get(f"{gw.base_url}/readyz")
        assert probe.status_code == 200
        assert probe.json() == {"status": "ready", "keys": {"test": True}, "audit": True}
        assert post_mcp(http, gw.url("rec"), PING, token=token).status_code == 200
        metrics = parse_exposition(http.get(gw.metrics_url).text)
        assert metrics.value("mcp_bastion_jwks_refreshes_total", idp="test", result="ok") == 1
        assert metrics.value("mcp_bastion_jwks_keys_loaded", idp="test") == 1


def test_readiness_is_served_with_telemetry_off_and_names_no_url_or_error_text() -> None:
    with (
        flaky_idp() as idp,
        observed_gateway(idp.issuer.issuer, {"rec": "http://127.0.0.1:9/mcp"}, telemetry={}) as gw,
    ):
        assert gw.gateway.telemetry is None  # nothing on the request path
        probe = httpx.get(f"{gw.base_url}/readyz")
    assert probe.status_code == 503
    assert "127.0.0.1" not in probe.text
    assert "503" not in probe.text


class FailingSink(MemorySink):
    healthy = False


def test_not_ready_while_the_audit_sink_fails() -> None:
    issuer = LocalIssuer("http://127.0.0.1:9")
    with serve_asgi(issuer.app) as idp_server:
        issuer.issuer = idp_server.base_url
        with observed_gateway(
            issuer.issuer, {"rec": "http://127.0.0.1:9/mcp"}, telemetry={}, audit=FailingSink()
        ) as gw:
            probe = httpx.get(f"{gw.base_url}/readyz")
    assert probe.status_code == 503
    assert probe.json()["audit"] is False


def test_upstreams_are_checked_when_asked() -> None:
    readiness = {"readiness": {"check_upstreams": True, "upstream_timeout_seconds": 2}}
    issuer = LocalIssuer("http://127.0.0.1:9")
    with serve_asgi(issuer.app) as idp_server, serve_asgi(RecordingUpstream()) as up, refused_port() as down:
        issuer.issuer = idp_server.base_url
        upstreams = {"up": f"{up.base_url}/mcp", "down": f"http://127.0.0.1:{down}/mcp"}
        with observed_gateway(issuer.issuer, upstreams, telemetry=readiness) as gw:
            probe = httpx.get(f"{gw.base_url}/readyz")
    assert probe.status_code == 503
    assert probe.json()["upstreams"] == {"up": True, "down": False}
    assert probe.json()["keys"] == {"test": True}


class CountingTransport:
    """An upstream that answers after the test lets it (to gather concurrent probes)."""

    target = "http://upstream.test/mcp"

    def __init__(self) -> None:
        self.opened = 0
        self.release = asyncio.Event()

    async def open(
        self, method: str, headers: Any, body: bytes, read_timeout: float | None
    ) -> UpstreamResponse:
        self.opened += 1
        await self.release.wait()
        return _Answer()

    def close(self, response: UpstreamResponse) -> None:
        pass


class _Answer:
    status = 405
    headers = ResponseHeaders([])

    def chunks(self) -> Any:
        raise NotImplementedError

    async def read_all(self, cap: int) -> bytes | None:
        return b""


def test_a_flood_of_probes_sends_one_upstream_request_per_cache_period() -> None:
    # /readyz is unauthenticated: it must not turn into an upstream amplifier.
    async def scenario() -> tuple[int, int, int]:
        transport = CountingTransport()
        now = [0.0]
        readiness = Readiness({}, MemorySink(), {"up": transport}, cache_seconds=2, clock=lambda: now[0])  # type: ignore[dict-item]
        probes = [asyncio.ensure_future(readiness.check()) for _ in range(50)]
        await asyncio.sleep(0)  # every probe is waiting on the one check
        transport.release.set()
        answers = await asyncio.gather(*probes)
        assert all(ready for ready, _ in answers)
        first = transport.opened
        now[0] = 1.5
        await readiness.check()
        cached = transport.opened
        now[0] = 2.5
        await readiness.check()
        return first, cached, transport.opened

    assert asyncio.run(scenario()) == (1, 1, 2)
