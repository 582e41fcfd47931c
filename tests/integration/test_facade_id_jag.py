"""Enterprise-Managed Authorization through the gateway's facade: an enterprise IdP on loopback
(discovery and JWKS served over a real socket, its key signing the ID-JAGs), the gateway with a
facade that accepts them, the demo upstream behind it. The client trades an ID-JAG for the
facade's access token at the token endpoint (jwt-bearer grant) and calls the server with it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import AuditEvent
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.devidp import JWT_BEARER

from ..e2e.demo_stack import running_demo_upstreams
from ..support.gateway import AuditFeed, serve_gateway
from ..support.servers import bind_loopback, serve_asgi

TIMEOUT_S = 10.0
KEY = ECKey.generate_key("P-256", parameters={"kid": "enterprise-1"})


def _enterprise_idp() -> Starlette:
    """Just what the facade reads of an IdP for ID-JAGs: its discovery document and keys."""

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
        return JSONResponse({"keys": [{**KEY.as_dict(private=False), "alg": "ES256", "use": "sig"}]})

    return Starlette(routes=[Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)])


@dataclass(frozen=True)
class Stack:
    base: str
    issuer: str
    audit: AuditFeed

    def id_jag_events(self, client_id: str) -> list[AuditEvent]:
        return [e for e in self.audit.events if e.event == "facade.id_jag" and e.client_id == client_id]

    @property
    def facade(self) -> str:
        return f"{self.base}/oauth/corp"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}/mcp"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with running_demo_upstreams() as upstreams, serve_asgi(_enterprise_idp()) as idp:
        config = parse_config(
            {
                "public_base_url": base,
                "identity_providers": [
                    {
                        "name": "corp",
                        "issuer": idp.base_url,
                        "allow_insecure_http": True,
                        "facade": {
                            "client_id": "bastion",
                            "client_secret": {"env": "SECRET"},
                            "accept_id_jag": True,
                        },
                    }
                ],
                "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
                "audit": {"sink": "none"},
            }
        )
        secrets_ = {"identity_providers[0].facade.client_secret": "unused-here"}
        audit = AuditFeed()
        with serve_gateway(build_gateway(LoadedConfig(config, secrets_), audit=audit), sock, config):
            yield Stack(base, idp.base_url, audit)


def _register(stack: Stack) -> str:
    body = {"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}
    response = httpx.post(f"{stack.facade}/register", json=body, timeout=TIMEOUT_S)
    assert response.status_code == 201
    return str(response.json()["client_id"])


def _id_jag(stack: Stack, client_id: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": stack.issuer,
        "sub": "carol@corp.example",
        "aud": stack.facade,
        "client_id": client_id,
        "resource": stack.url("demo"),
        "scope": "tools.read",
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 300,
        **changes,
    }
    header = {"alg": "ES256", "kid": "enterprise-1", "typ": "oauth-id-jag+jwt"}
    return jwt.encode(header, claims, KEY, algorithms=["ES256"])


def _token(stack: Stack, client_id: str, assertion: str, resource: str | None = None) -> httpx.Response:
    form = {"grant_type": JWT_BEARER, "assertion": assertion, "client_id": client_id}
    form["resource"] = resource or stack.url("demo")
    return httpx.post(f"{stack.facade}/token", data=form, timeout=TIMEOUT_S)


def _initialize(stack: Stack, name: str, token: str) -> int:
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
    }
    return httpx.post(stack.url(name), json=body, headers=headers, timeout=TIMEOUT_S).status_code


def test_metadata_offers_the_jwt_bearer_grant(stack: Stack) -> None:
    metadata = httpx.get(f"{stack.base}/.well-known/oauth-authorization-server/oauth/corp", timeout=TIMEOUT_S)
    assert JWT_BEARER in metadata.json()["grant_types_supported"]


def test_an_id_jag_is_traded_for_an_audience_bound_token(stack: Stack) -> None:
    client_id = _register(stack)
    response = _token(stack, client_id, _id_jag(stack, client_id))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "tools.read"
    assert "refresh_token" not in body  # the IdP stays in control: a new ID-JAG for a new token
    assert _initialize(stack, "demo", body["access_token"]) == 200
    assert _initialize(stack, "notes", body["access_token"]) == 401  # aud = the one resource
    [accepted] = stack.id_jag_events(client_id)
    assert (accepted.decision, accepted.subject, accepted.target) == (
        "allow",
        "carol@corp.example",
        stack.url("demo"),
    )
    [issued] = [e for e in stack.audit.events if e.event == "facade.token" and e.client_id == client_id]
    assert (issued.method, issued.decision, issued.subject) == (JWT_BEARER, "allow", "carol@corp.example")


def test_a_replayed_id_jag_is_refused(stack: Stack) -> None:
    client_id = _register(stack)
    assertion = _id_jag(stack, client_id)
    assert _token(stack, client_id, assertion).status_code == 200
    replay = _token(stack, client_id, assertion)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    accepted, refused = stack.id_jag_events(client_id)
    assert (accepted.decision, refused.decision) == ("allow", "deny")
    assert refused.reason == "invalid_grant: ID-JAG jti was already used"  # the specific reason
    assert assertion not in b"".join(e.to_json() for e in stack.audit.events).decode()


def test_an_id_jag_for_another_client_or_resource_is_refused(stack: Stack) -> None:
    client_id, thief = _register(stack), _register(stack)
    stolen = _token(stack, thief, _id_jag(stack, client_id))
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    [refused] = stack.id_jag_events(thief)
    assert (refused.decision, refused.reason) == (
        "deny",
        "invalid_grant: ID-JAG was issued for another client",
    )
    other = _token(stack, client_id, _id_jag(stack, client_id), resource=stack.url("notes"))
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"


def test_the_resource_is_required(stack: Stack) -> None:
    client_id = _register(stack)
    form = {"grant_type": JWT_BEARER, "assertion": _id_jag(stack, client_id), "client_id": client_id}
    response = httpx.post(f"{stack.facade}/token", data=form, timeout=TIMEOUT_S)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


async def test_without_accept_id_jag_the_grant_is_unsupported() -> None:
    config = parse_config(
        {
            "public_base_url": "http://127.0.0.1:1",
            "identity_providers": [
                {
                    "name": "corp",
                    "issuer": "http://127.0.0.1:2",
                    "allow_insecure_http": True,
                    "facade": {"client_id": "bastion", "client_secret": {"env": "SECRET"}},
                }
            ],
            "servers": [{"name": "demo", "upstream": "http://127.0.0.1:3/mcp"}],
            "audit": {"sink": "none"},
        }
    )
    gateway = build_gateway(LoadedConfig(config, {"identity_providers[0].facade.client_secret": "x"}))
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1") as http:
        form = {
            "grant_type": JWT_BEARER,
            "assertion": "x.y.z",
            "client_id": "c",
            "resource": "http://127.0.0.1:1/demo/mcp",
        }
        response = await http.post("/oauth/corp/token", data=form)
    await gateway.shutdown()
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
