"""RFC 7662 introspection as a `TokenVerifier`, against a scripted introspection endpoint on
loopback (real HTTP: the hostile answers an IdP, or whoever sits in its place, could give).
The happy path and revocation against oidc-provider are in tests/e2e/test_identity_oidc_provider.py.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.auth.idp_client import IdpClient
from mcp_bastion.auth.introspection import Introspecting, IntrospectionVerifier, JwtOrOpaque
from mcp_bastion.auth.principal import Principal
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.config.identity import IdpClientConfig, IntrospectionConfig
from mcp_bastion.config.model import IdentityProviderConfig, SecretRef
from mcp_bastion.errors import ConfigError, InvalidToken, KeySourceError

from ..support.servers import RunningServer, read_body, serve_asgi

RESOURCE = "https://gw.example/files/mcp"


@dataclass
class Endpoint:
    """An introspection endpoint whose answer per token the test writes."""

    answers: dict[str, Any] = field(default_factory=dict)
    seen: list[tuple[dict[str, list[str]], str | None]] = field(default_factory=list)
    issuer: str = ""
    arrived: threading.Event = field(default_factory=threading.Event)

    def active(self, token: str, **claims: Any) -> None:
        body = {"active": True, "iss": self.issuer, "sub": "alice", "client_id": "app", "scope": "tools.read"}
        body.update(aud=RESOURCE, exp=int(time.time()) + 300)
        body.update(claims)
        self.answers[token] = {k: v for k, v in body.items() if v is not None}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        form = parse_qs((await read_body(receive)).decode())
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization")
        self.seen.append((form, auth.decode() if auth else None))
        self.arrived.set()
        answer = self.answers.get(form.get("token", [""])[0], {"active": False})
        status, body = 200, b""
        if answer == "hang":
            while (await receive())["type"] != "http.disconnect":  # until the gateway gives up
                pass
            return
        if isinstance(answer, tuple):
            status, body = answer
        else:
            body = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, RunningServer]]:
    scripted = Endpoint()
    with serve_asgi(scripted) as server:
        scripted.issuer = server.base_url
        yield scripted, server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def verifier(
    server: RunningServer, http: httpx.AsyncClient, clock: Clock, *, timeout: float = 2, **settings: Any
) -> IntrospectionVerifier:
    provider = IdentityProviderConfig(
        name="idp", issuer=server.base_url, allow_insecure_http=True, fetch_timeout_seconds=timeout
    )
    client = IdpClientConfig(
        client_id="gateway", secret=SecretRef(env="X"), introspection_endpoint=f"{server.base_url}/introspect"
    )
    idp = IdpClient(provider, client, http, secret="gateway secret", private_key=None, clock=clock)
    introspecting = Introspecting(idp, IntrospectionConfig(**settings))
    return IntrospectionVerifier({server.base_url: introspecting}, clock=clock, max_token_bytes=4096)


async def test_active_token_becomes_a_principal_and_the_gateway_authenticates(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    scripted.active("opaque-1", scope="tools.read tools.write")
    principal = await verifier(server, http, Clock()).verify(
        "opaque-1", RESOURCE, frozenset({server.base_url})
    )
    assert (principal.subject, principal.client_id) == ("alice", "app")
    assert principal.scopes == frozenset({"tools.read", "tools.write"})
    form, auth = scripted.seen[-1]
    assert form == {"token": ["opaque-1"], "token_type_hint": ["access_token"]}
    # RFC 6749 §2.3.1: id and secret form-encoded, then Basic (the space becomes "+").
    assert auth == "Basic " + base64.b64encode(b"gateway:gateway+secret").decode()


async def test_verdict_is_cached_then_asked_again(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    scripted.active("opaque-2")
    clock = Clock()
    check = verifier(server, http, clock, cache_seconds=30)
    issuers = frozenset({server.base_url})
    await check.verify("opaque-2", RESOURCE, issuers)
    assert check.remembered("Bearer opaque-2", RESOURCE, issuers) is not None
    await check.verify("opaque-2", RESOURCE, issuers)
    assert len(scripted.seen) == 1
    clock.now += 31  # a revocation is seen within cache_seconds
    assert check.remembered("Bearer opaque-2", RESOURCE, issuers) is None
    await check.verify("opaque-2", RESOURCE, issuers)
    assert len(scripted.seen) == 2


async def test_cache_never_outlives_exp(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    clock = Clock()
    scripted.active("opaque-3", exp=int(clock.now) + 5)
    check = verifier(server, http, clock, cache_seconds=300)
    issuers = frozenset({server.base_url})
    await check.verify("opaque-3", RESOURCE, issuers)
    clock.now += 6
    assert check.remembered("Bearer opaque-3", RESOURCE, issuers) is None
    with pytest.raises(InvalidToken, match="expired"):  # the IdP still says active: exp decides
        await check.verify("opaque-3", RESOURCE, issuers)


async def test_inactive_token_is_refused_and_remembered_briefly(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    clock = Clock()
    check = verifier(server, http, clock, negative_cache_seconds=5)
    issuers = frozenset({server.base_url})
    for _ in range(3):
        with pytest.raises(InvalidToken, match="not active"):
            await check.verify("revoked", RESOURCE, issuers)
    assert len(scripted.seen) == 1  # a junk token in a loop costs one introspection
    with pytest.raises(InvalidToken, match="not active"):
        check.remembered("Bearer revoked", RESOURCE, issuers)
    clock.now += 6
    with pytest.raises(InvalidToken):
        await check.verify("revoked", RESOURCE, issuers)
    assert len(scripted.seen) == 2


@pytest.mark.parametrize(
    ("claims", "refusal"),
    [
        ({"active": "true"}, "not active"),  # RFC 7662 §2.2: a boolean, not a string
        ({"active": 1}, "not active"),
        ({"iss": "https://another-issuer.example"}, "issuer"),
        ({"exp": None}, "no expiry"),
        ({"token_type": "refresh_token"}, "not an access token"),
        ({"aud": "https://gw.example/other/mcp"}, "audience"),
        ({"sub": None}, "no subject"),
    ],
)
async def test_hostile_or_incomplete_answers_are_refused(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient, claims: dict[str, Any], refusal: str
) -> None:
    scripted, server = endpoint
    scripted.active("opaque-4", **claims)
    with pytest.raises(InvalidToken, match=refusal):
        await verifier(server, http, Clock()).verify("opaque-4", RESOURCE, frozenset({server.base_url}))


@pytest.mark.parametrize(
    ("answer", "refusal"),
    [
        ((500, b'{"error":"server_error"}'), "HTTP 500"),
        ((401, b'{"error":"invalid_client"}'), "HTTP 401"),
        ((200, b"<html>not json</html>"), "not JSON"),
        ((200, b"[true]"), "not an object"),
        ((200, b'{"active":true,"pad":"' + b"x" * 70_000 + b'"}'), "over 65536 bytes"),
        ("hang", "did not answer within 0.5 s"),
    ],
)
async def test_an_idp_that_cannot_answer_fails_closed(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient, answer: Any, refusal: str
) -> None:
    scripted, server = endpoint
    scripted.answers["opaque-5"] = answer
    check = verifier(server, http, Clock(), timeout=0.5)
    with pytest.raises(KeySourceError, match=refusal):  # 503: never a pass
        await check.verify("opaque-5", RESOURCE, frozenset({server.base_url}))


async def test_unreachable_idp_fails_closed(http: httpx.AsyncClient) -> None:
    with serve_asgi(Endpoint()) as server:
        pass  # stopped: nothing listens on that port any more
    with pytest.raises(KeySourceError, match="cannot reach"):
        await verifier(server, http, Clock()).verify("opaque-6", RESOURCE, frozenset({server.base_url}))


async def test_introspections_in_flight_are_bounded(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    scripted.answers["slow"] = "hang"
    check = verifier(server, http, Clock(), timeout=2, max_concurrent=1)
    issuers = frozenset({server.base_url})
    first = asyncio.ensure_future(check.verify("slow", RESOURCE, issuers))
    assert await asyncio.to_thread(scripted.arrived.wait, 5)  # the endpoint holds the first one
    with pytest.raises(KeySourceError, match="too many"):
        await check.verify("another", RESOURCE, issuers)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_concurrent_requests_with_one_token_share_one_introspection(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    scripted.active("opaque-7")
    check = verifier(server, http, Clock())
    issuers = frozenset({server.base_url})
    principals = await asyncio.gather(*(check.verify("opaque-7", RESOURCE, issuers) for _ in range(10)))
    assert {p.subject for p in principals} == {"alice"}
    assert len(scripted.seen) == 1


async def test_a_token_is_introspected_only_where_its_idp_is_trusted(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    with pytest.raises(InvalidToken, match="introspects"):
        await verifier(server, http, Clock()).verify(
            "opaque-8", RESOURCE, frozenset({"https://other.example"})
        )
    assert scripted.seen == []  # the token never left for an IdP this server does not trust


@dataclass
class Recorder:
    seen: list[str] = field(default_factory=list)

    def remembered(
        self, authorization: str, resource: str, allowed_issuers: frozenset[str]
    ) -> Principal | None:
        return None

    async def verify(self, token: str, resource: str, allowed_issuers: frozenset[str]) -> Principal:
        self.seen.append(token)
        return Principal("jwt", "iss", None, frozenset(), "h", 0.0)


async def test_jws_shaped_tokens_go_to_the_jwt_verifier(
    endpoint: tuple[Endpoint, RunningServer], http: httpx.AsyncClient
) -> None:
    scripted, server = endpoint
    scripted.active("opaque-9")
    jwts = Recorder()
    both = JwtOrOpaque(jwts, verifier(server, http, Clock()))
    issuers = frozenset({server.base_url})
    assert (await both.verify("a.b.c", RESOURCE, issuers)).subject == "jwt"
    assert (await both.verify("opaque-9", RESOURCE, issuers)).subject == "alice"
    assert jwts.seen == ["a.b.c"]
    assert len(scripted.seen) == 1


def test_two_introspecting_idps_for_one_server_are_refused() -> None:
    def idp(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "issuer": f"https://{name}.example",
            "client": {"client_id": "gw", "secret": {"env": "S"}},
            "introspection": {},
        }

    config = parse_config(
        {
            "public_base_url": "https://gw.example",
            "identity_providers": [idp("one"), idp("two")],
            "servers": [{"name": "files", "upstream": "https://up.example/mcp"}],
        }
    )
    secrets = {"identity_providers[0].client.secret": "s", "identity_providers[1].client.secret": "s"}
    # An opaque token names no issuer: which IdP would hear it would be a guess.
    with pytest.raises(ConfigError, match="several identity providers that introspect"):
        build_gateway(LoadedConfig(config, secrets))


def test_introspection_needs_a_client() -> None:
    with pytest.raises(ValueError, match="introspection authenticates as this client"):
        IdentityProviderConfig(name="idp", issuer="https://idp.example", introspection=IntrospectionConfig())
