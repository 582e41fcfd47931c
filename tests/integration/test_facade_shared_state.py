"""The facade's state shared by replicas (`facade.state.store: redis`): two gateways, each with
its own facade, one real Valkey between them, and an IdP on loopback that signs users in. A
flow that moves between the replicas completes; what must happen once (a code's redemption, a
refresh token's rotation, an ID-JAG's jti) happens once across both; a store that is down
fails closed and recovers without a restart.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.devidp import JWT_BEARER

from ..devidp.conftest import pkce_pair
from ..e2e.demo_stack import running_demo_upstreams
from ..support.gateway import serve_gateway
from ..support.servers import bind_loopback, serve_asgi
from ..support.valkey import Valkey, running_valkey

TIMEOUT_S = 10.0
IDP_KEY = ECKey.generate_key("P-256", parameters={"kid": "idp-1"})
GATEWAY_KEY = ECKey.generate_key("P-256", parameters={"kid": "gw-1"})  # signing.key both share
CLIENT_REDIRECT = "http://127.0.0.1:9/cb"
USER = "dana@corp.example"


@dataclass
class FakeIdp:
    """An IdP that signs every browser in as USER at once: authorization, token, discovery, keys."""

    nonces: dict[str, str] = field(default_factory=dict)

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            issuer = str(request.base_url).rstrip("/")
            return JSONResponse(
                {
                    "issuer": issuer,
                    "authorization_endpoint": f"{issuer}/authorize",
                    "token_endpoint": f"{issuer}/token",
                    "jwks_uri": f"{issuer}/jwks",
                }
            )

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [{**IDP_KEY.as_dict(private=False), "alg": "ES256"}]})

        async def authorize(request: Request) -> Response:
            code = secrets.token_urlsafe(16)
            self.nonces[code] = request.query_params["nonce"]
            query = httpx.QueryParams({"code": code, "state": request.query_params["state"]})
            return RedirectResponse(f"{request.query_params['redirect_uri']}?{query}", 302)

        async def token(request: Request) -> Response:
            form = await request.form()
            nonce = self.nonces.pop(str(form["code"]))
            issuer = str(request.base_url).rstrip("/")
            now = int(time.time())
            claims = {
                "iss": issuer,
                "sub": USER,
                "aud": "bastion",
                "nonce": nonce,
                "iat": now,
                "exp": now + 60,
            }
            id_token = jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, IDP_KEY, algorithms=["ES256"])
            return JSONResponse({"id_token": id_token, "access_token": "opaque", "token_type": "Bearer"})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


@dataclass(frozen=True)
class Replicas:
    public: str  # the public base URL both replicas are configured with (a load balancer's)
    a: str
    b: str
    idp: str
    valkey: Valkey

    def facade(self, base: str) -> str:
        return f"{base}/oauth/corp"

    @property
    def issuer(self) -> str:
        return f"{self.public}/oauth/corp"

    @property
    def resource(self) -> str:
        return f"{self.public}/demo/mcp"


@pytest.fixture(scope="module")
def replicas() -> Iterator[Replicas]:
    sock_a, sock_b = bind_loopback(), bind_loopback()
    base_a = f"http://127.0.0.1:{sock_a.getsockname()[1]}"
    base_b = f"http://127.0.0.1:{sock_b.getsockname()[1]}"
    with (
        running_demo_upstreams() as upstreams,
        serve_asgi(FakeIdp().app()) as idp,
        running_valkey() as valkey,
    ):
        config = parse_config(
            {
                "public_base_url": base_a,
                "signing": {"key": {"env": "SIGNING_KEY"}},
                "identity_providers": [
                    {
                        "name": "corp",
                        "issuer": idp.base_url,
                        "allow_insecure_http": True,
                        "facade": {
                            "client_id": "bastion",
                            "client_secret": {"env": "SECRET"},
                            "accept_id_jag": True,
                            "state": {"store": "redis", "redis": {"url": valkey.url, "timeout_seconds": 2}},
                        },
                    }
                ],
                "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
                "audit": {"sink": "none"},
            }
        )
        secrets_ = {
            "identity_providers[0].facade.client_secret": "s3cret",
            "signing.key": orjson.dumps(GATEWAY_KEY.as_dict(private=True)).decode(),
        }
        # Two gateways, each with its own facade object: nothing shared but the Valkey.
        with (
            serve_gateway(build_gateway(LoadedConfig(config, secrets_)), sock_a, config),
            serve_gateway(build_gateway(LoadedConfig(config, secrets_)), sock_b, config),
        ):
            yield Replicas(base_a, base_a, base_b, idp.base_url, valkey)


def _on(base: str, url: str) -> str:
    """``url`` sent to the replica at ``base`` instead (as a load balancer may)."""
    parts = urlsplit(url)
    return f"{base}{parts.path}{'?' + parts.query if parts.query else ''}"


def _register(http: httpx.Client, facade: str) -> str:
    body = {
        "redirect_uris": [CLIENT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    response = http.post(f"{facade}/register", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def _code(http: httpx.Client, r: Replicas, client_id: str, challenge: str) -> str:
    """Authorize at A, come back from the IdP at B, consent at A: the code."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CLIENT_REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": r.resource,
        "state": "st",
    }
    to_idp = http.get(f"{r.facade(r.a)}/authorize", params=params)
    assert to_idp.status_code == 302, to_idp.text
    from_idp = http.get(to_idp.headers["location"])
    assert from_idp.status_code == 302
    callback = from_idp.headers["location"]
    assert callback.startswith(f"{r.issuer}/callback?")
    consent = http.get(_on(r.b, callback))  # the sign-in waited in the shared store
    assert consent.status_code == 200, consent.text
    fields = dict(
        (name, value)
        for name, value in (
            (part.split('name="')[1].split('"')[0], part.split('value="')[1].split('"')[0])
            for part in consent.text.split("<input")[1:]
            if 'type="hidden"' in part
        )
    )
    answer = http.post(f"{r.facade(r.a)}/consent", data={**fields, "decision": "approve"})
    assert answer.status_code == 303, answer.text
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    return query["code"]


def _redeem(base: str, r: Replicas, client_id: str, code: str, verifier: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": CLIENT_REDIRECT,
        "code_verifier": verifier,
        "resource": r.resource,
    }
    return httpx.post(f"{r.facade(base)}/token", data=form, timeout=TIMEOUT_S)


def _refresh(base: str, r: Replicas, client_id: str, token: str) -> httpx.Response:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": client_id,
        "resource": r.resource,
    }
    return httpx.post(f"{r.facade(base)}/token", data=form, timeout=TIMEOUT_S)


def _mcp_status(base: str, public: str, token: str) -> int:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {
        "authorization": f"Bearer {token}",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
        "host": urlsplit(public).netloc,  # behind a load balancer: the public host, either replica
    }
    return httpx.post(f"{base}/demo/mcp", json=body, headers=headers, timeout=TIMEOUT_S).status_code


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as http:
        yield http


def test_a_flow_moves_between_replicas(replicas: Replicas, browser: httpx.Client) -> None:
    # Registered at B, authorized at A (signed in at B's callback), redeemed at B, used at A.
    client_id = _register(browser, replicas.facade(replicas.b))
    verifier, challenge = pkce_pair()
    code = _code(browser, replicas, client_id, challenge)
    tokens = _redeem(replicas.b, replicas, client_id, code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert _mcp_status(replicas.a, replicas.public, tokens.json()["access_token"]) == 200
    assert _mcp_status(replicas.b, replicas.public, tokens.json()["access_token"]) == 200


def test_a_code_redeemed_at_one_replica_is_refused_at_the_other(
    replicas: Replicas, browser: httpx.Client
) -> None:
    client_id = _register(browser, replicas.facade(replicas.a))
    verifier, challenge = pkce_pair()
    code = _code(browser, replicas, client_id, challenge)
    first = _redeem(replicas.a, replicas, client_id, code, verifier)
    assert first.status_code == 200
    replay = _redeem(replicas.b, replicas, client_id, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: the replay at B revoked what A issued for the code.
    assert _refresh(replicas.a, replicas, client_id, first.json()["refresh_token"]).status_code == 400


def test_a_code_redeemed_concurrently_at_both_replicas_succeeds_once(
    replicas: Replicas, browser: httpx.Client
) -> None:
    client_id = _register(browser, replicas.facade(replicas.a))
    for _ in range(5):  # several races: one winner each time, whichever replica it is
        verifier, challenge = pkce_pair()
        code = _code(browser, replicas, client_id, challenge)
        start = threading.Barrier(2)
        statuses: list[int] = []

        def redeem(
            base: str,
            code: str = code,
            verifier: str = verifier,
            start: Any = start,
            statuses: list[int] = statuses,
        ) -> None:
            start.wait(TIMEOUT_S)
            statuses.append(_redeem(base, replicas, client_id, code, verifier).status_code)

        threads = [threading.Thread(target=redeem, args=(base,)) for base in (replicas.a, replicas.b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT_S * 2)
        assert sorted(statuses) == [200, 400]


def test_a_refresh_token_reused_at_the_other_replica_revokes_the_family(
    replicas: Replicas, browser: httpx.Client
) -> None:
    client_id = _register(browser, replicas.facade(replicas.a))
    verifier, challenge = pkce_pair()
    first = _redeem(replicas.a, replicas, client_id, _code(browser, replicas, client_id, challenge), verifier)
    old = first.json()["refresh_token"]
    rotated = _refresh(replicas.a, replicas, client_id, old)
    assert rotated.status_code == 200
    reused = _refresh(replicas.b, replicas, client_id, old)  # the stolen, rotated-away token
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # RFC 9700 §4.14.2: the whole family is gone, at both replicas.
    assert _refresh(replicas.a, replicas, client_id, rotated.json()["refresh_token"]).status_code == 400


def _id_jag(r: Replicas, client_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": r.idp,
        "sub": USER,
        "aud": r.issuer,
        "client_id": client_id,
        "resource": r.resource,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 120,
    }
    header = {"alg": "ES256", "kid": "idp-1", "typ": "oauth-id-jag+jwt"}
    return jwt.encode(header, claims, IDP_KEY, algorithms=["ES256"])


def test_an_id_jag_replayed_at_the_other_replica_is_refused(
    replicas: Replicas, browser: httpx.Client
) -> None:
    client_id = _register(browser, replicas.facade(replicas.a))
    assertion = _id_jag(replicas, client_id)
    form = {
        "grant_type": JWT_BEARER,
        "assertion": assertion,
        "client_id": client_id,
        "resource": replicas.resource,
    }
    first = httpx.post(f"{replicas.facade(replicas.a)}/token", data=form, timeout=TIMEOUT_S)
    assert first.status_code == 200, first.text
    replay = httpx.post(f"{replicas.facade(replicas.b)}/token", data=form, timeout=TIMEOUT_S)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


def test_the_store_down_fails_closed_and_recovers_without_a_restart(
    replicas: Replicas, browser: httpx.Client
) -> None:
    client_id = _register(browser, replicas.facade(replicas.a))
    verifier, challenge = pkce_pair()
    code = _code(browser, replicas, client_id, challenge)
    replicas.valkey.kill()
    try:
        # The code cannot be checked for a replay: nothing is issued, in OAuth's words.
        down = _redeem(replicas.b, replicas, client_id, code, verifier)
        assert down.status_code == 503
        assert down.json()["error"] == "temporarily_unavailable"
        assert code not in down.text
        registering = browser.post(
            f"{replicas.facade(replicas.a)}/register", json={"redirect_uris": [CLIENT_REDIRECT]}
        )
        assert registering.status_code == 503
    finally:
        replicas.valkey.restart()
    # The same gateways, a new (empty) store: the next requests work again.
    client_id = _register(browser, replicas.facade(replicas.b))
    verifier, challenge = pkce_pair()
    tokens = _redeem(
        replicas.a, replicas, client_id, _code(browser, replicas, client_id, challenge), verifier
    )
    assert tokens.status_code == 200, tokens.text


def test_the_store_holds_no_code_or_token(replicas: Replicas, browser: httpx.Client) -> None:
    client_id = _register(browser, replicas.facade(replicas.a))
    verifier, challenge = pkce_pair()
    code = _code(browser, replicas, client_id, challenge)
    tokens = _redeem(replicas.a, replicas, client_id, code, verifier).json()
    dump = _dump_store(replicas.valkey)
    assert code.encode() not in dump
    assert tokens["refresh_token"].encode() not in dump
    assert tokens["access_token"].encode() not in dump
    assert verifier.encode() not in dump
    assert b"mcp-bastion:facade:corp:" in dump  # everything under the facade's prefix


def _dump_store(valkey: Valkey) -> bytes:
    import redis

    with redis.Redis.from_url(valkey.url) as client:
        keys = list(client.scan_iter(match="*"))
        out = b"".join(keys)
        for key in keys:
            kind = client.type(key)
            if kind == b"string":
                out += client.get(key) or b""
            elif kind == b"hash":
                out += b"".join(k + v for k, v in client.hgetall(key).items())
        return out
