"""Key refresh against a slow IdP: a real JWKS server on loopback that holds its answers.

Issue 12 measured the stall this guards against: with a slow IdP, every in-flight request
waited for each TTL refresh (64 calls, 4.2 s, throughput 0). Now a refresh runs behind the
requests; only a token whose `kid` the gateway does not know waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from joserfc.jwk import ECKey

from ..support.gateway import RunningGateway, post_mcp, running_gateway
from ..support.issuer import LocalIssuer
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi

CALLS = 32
WAIT_S = 10.0  # a bound on each wait, never a sleep: everything here answers in milliseconds


@dataclass
class SlowJwks:
    """Answers the first key request at once; holds each later one until `release` is set."""

    issuer: LocalIssuer
    refresh_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    # What a held refresh answers with (the IdP may have rotated meanwhile).
    next_keys: list[dict[str, Any]] = field(default_factory=list)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        if self.requests > 1:
            self.refresh_started.set()
            await asyncio.to_thread(self.release.wait, 30)
            self.issuer.extra_keys = self.next_keys
        body = orjson.dumps(self.issuer.jwks())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class Stack:
    idp: SlowJwks
    gateway: RunningGateway

    @property
    def url(self) -> str:
        return self.gateway.url("rec")

    def call(self, http: httpx.Client, token: str, id: int = 1) -> httpx.Response:
        body = {"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}}
        return post_mcp(http, self.url, body, token=token)


@contextlib.contextmanager
def slow_idp_stack(**idp_overrides: Any) -> Iterator[Stack]:
    sock = bind_loopback()
    idp = SlowJwks(LocalIssuer(f"http://127.0.0.1:{sock.getsockname()[1]}"))
    provider = {
        "name": "test",
        "issuer": idp.issuer.issuer,
        "allow_insecure_http": True,
        "discovery": False,
        "jwks_uri": f"{idp.issuer.issuer}/jwks",
        # Stale right after the first load, and no cooldown: the next request starts a refresh.
        "jwks_ttl_seconds": 0.001,
        "jwks_refetch_cooldown_seconds": 0,
        # Longer than any client waits here: a request held by the refresh cannot pass by the
        # fetch giving up.
        "fetch_timeout_seconds": 60,
        **idp_overrides,
    }
    with serve_asgi(idp.app, sock=sock), serve_asgi(RecordingUpstream()) as up:
        servers = [{"name": "rec", "upstream": f"{up.base_url}/mcp"}]
        try:
            with running_gateway(
                idp.issuer.issuer, {}, identity_providers=[provider], servers=servers
            ) as gateway:
                yield Stack(idp, gateway)
        finally:
            idp.release.set()  # let a held answer go, so the IdP server can stop


def test_known_kid_calls_are_not_held_by_a_refresh_in_flight() -> None:
    with slow_idp_stack() as stack, httpx.Client(timeout=WAIT_S) as http:
        token = stack.idp.issuer.token(audience=stack.url)
        assert stack.call(http, token).status_code == 200  # the first load, answered at once
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: stack.call(http, token, i), range(CALLS)))
        # Every call was answered while the IdP still held the refresh they started.
        assert stack.idp.refresh_started.is_set()
        assert not stack.idp.release.is_set()
        assert [a.status_code for a in answers] == [200] * CALLS
        assert stack.idp.requests == 2  # one refresh, shared, still in flight


def test_an_unknown_kid_waits_for_the_refresh_and_verifies_with_the_rotated_key() -> None:
    rotated = ECKey.generate_key("P-256")
    with slow_idp_stack() as stack, httpx.Client(timeout=WAIT_S) as http:
        issuer = stack.idp.issuer
        stack.idp.next_keys = [dict(rotated.as_dict(private=False), kid="rotated", use="sig", alg="ES256")]
        assert stack.call(http, issuer.token(audience=stack.url)).status_code == 200
        assert stack.call(http, issuer.token(audience=stack.url)).status_code == 200  # starts the refresh
        assert stack.idp.refresh_started.wait(WAIT_S)
        new_token = LocalIssuer(issuer.issuer, key=rotated, kid="rotated").token(audience=stack.url)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(stack.call, http, new_token)
            # The IdP answers only now: the call can only succeed by having waited for the fetch.
            stack.idp.release.set()
            assert waiting.result(WAIT_S).status_code == 200
        assert stack.idp.requests == 2


def test_an_unknown_kid_is_refused_within_the_fetch_timeout_when_the_idp_hangs() -> None:
    # Bounded: the IdP never answers the refresh; the unknown kid gets its 401 once the fetch
    # timeout passes, and known kids were answered all along.
    with slow_idp_stack(fetch_timeout_seconds=0.5) as stack, httpx.Client(timeout=WAIT_S) as http:
        issuer = stack.idp.issuer
        assert stack.call(http, issuer.token(audience=stack.url)).status_code == 200
        assert stack.call(http, issuer.token(audience=stack.url)).status_code == 200
        assert stack.idp.refresh_started.wait(WAIT_S)
        stranger = LocalIssuer(issuer.issuer, kid="unknown-kid").token(audience=stack.url)
        answer = stack.call(http, stranger)
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
        assert not stack.idp.release.is_set()
