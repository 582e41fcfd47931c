"""Dynamic Client Registration (RFC 7591) and AS-04."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_bastion.devidp import StaticClient
from tests.support.servers import serve_asgi

from .conftest import REDIRECT, MakeIdp, RunningIdp


def _register(running: RunningIdp, body: Any) -> Any:
    return running.http.post("/idp/register", json=body)


def test_registration_response(running: RunningIdp) -> None:
    response = _register(
        running,
        {
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "client_name": "Notes app",
            "scope": "notes:read",
            "logo_uri": "https://app.example.com/logo.png",
            "application_type": "native",
        },
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_id"]
    assert body["client_id_issued_at"] == int(running.clock())
    assert body["redirect_uris"] == [REDIRECT]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "none"
    assert body["client_name"] == "Notes app"
    assert body["scope"] == "notes:read"
    assert "client_secret" not in body


def test_default_grant_type_is_authorization_code(running: RunningIdp) -> None:
    body = _register(running, {"redirect_uris": [REDIRECT]}).json()
    assert body["grant_types"] == ["authorization_code"]
    assert body["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
def test_code_clients_are_registered_public(running: RunningIdp, method: str) -> None:
    # RFC 7591 §3.2.1: the server may substitute metadata; PKCE protects public clients.
    body = _register(running, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": method}).json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body


@pytest.mark.parametrize(
    "body",
    [
        {"redirect_uris": [REDIRECT], "grant_types": ["password"]},
        {"redirect_uris": [REDIRECT], "grant_types": ["implicit"]},
        {"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "password"]},
        {"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "client_credentials"]},
        {"redirect_uris": [REDIRECT], "grant_types": ["refresh_token"]},
        {"redirect_uris": [REDIRECT], "grant_types": []},
        {"redirect_uris": [REDIRECT], "grant_types": "authorization_code"},
        {"redirect_uris": [REDIRECT], "response_types": ["token"]},
        {"redirect_uris": [REDIRECT], "response_types": ["code", "token"]},
        {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": 5},
        {"redirect_uris": [REDIRECT], "client_name": "x" * 201},
        {"redirect_uris": [REDIRECT], "client_name": ""},
        {"redirect_uris": [REDIRECT], "client_name": 7},
        {"redirect_uris": [REDIRECT], "scope": ["notes:read"]},
        {"redirect_uris": [REDIRECT], "scope": 'bad"scope'},
        {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"},
        {"grant_types": ["client_credentials"], "redirect_uris": [REDIRECT]},
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
    ],
)
def test_as04_invalid_client_metadata(running: RunningIdp, body: dict[str, Any]) -> None:
    response = _register(running, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_as04_100kb_client_name_hits_the_body_cap(running: RunningIdp) -> None:
    response = _register(running, {"redirect_uris": [REDIRECT], "client_name": "x" * 100_000})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"[1]", "application/json"),
        (b"{", "application/json"),
        (b"redirect_uris=x", "application/x-www-form-urlencoded"),
    ],
)
def test_registration_body_must_be_a_json_object(
    running: RunningIdp, content: bytes, content_type: str
) -> None:
    response = running.http.post("/idp/register", content=content, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_as04_rate_limit_per_address(make_idp: MakeIdp) -> None:
    running = make_idp(registration_limit_per_minute=3)
    for _ in range(3):
        assert _register(running, {"redirect_uris": [REDIRECT]}).status_code == 201
    limited = _register(running, {"redirect_uris": [REDIRECT]})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"
    running.clock.advance(61)
    assert _register(running, {"redirect_uris": [REDIRECT]}).status_code == 201


def test_as04_logo_uri_is_never_fetched(make_idp: MakeIdp) -> None:
    hits: list[str] = []

    async def logo(request: Request) -> Response:
        hits.append(request.url.path)
        return Response(b"png")

    with serve_asgi(Starlette(routes=[Route("/logo.png", logo)])) as logo_server:
        running = make_idp(auto_approve=None)
        client_id = running.register(
            logo_uri=f"{logo_server.base_url}/logo.png",
            client_uri=f"{logo_server.base_url}/",
            policy_uri=f"{logo_server.base_url}/p",
            tos_uri=f"{logo_server.base_url}/t",
            jwks_uri=f"{logo_server.base_url}/jwks",
        )["client_id"]
        page = running.authorize(client_id)
        assert page.status_code == 200
        assert logo_server.base_url not in page.text
    assert hits == []


def test_dcr_client_credentials_client(running: RunningIdp) -> None:
    body = _register(running, {"grant_types": ["client_credentials"], "scope": "notes:read"}).json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["redirect_uris"] == []
    assert body["client_secret_expires_at"] == 0
    response = running.http.post(
        "/idp/token",
        data={
            "grant_type": "client_credentials",
            "resource": running.resource,
            "scope": "notes:read notes:write",
        },
        auth=(body["client_id"], body["client_secret"]),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "notes:read"
    assert running.claims(response.json()["access_token"])["sub"] == body["client_id"]


def test_dcr_client_credentials_client_may_not_use_the_code_flow(running: RunningIdp) -> None:
    client_id = _register(running, {"grant_types": ["client_credentials"]}).json()["client_id"]
    response = running.authorize(client_id)
    assert response.status_code == 400
    assert "unauthorized_client" in response.text


def test_dcr_client_credentials_refused_when_users_are_restricted(make_idp: MakeIdp) -> None:
    running = make_idp(users={"alice": ("notes:read",)})
    response = _register(running, {"grant_types": ["client_credentials"]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_static_clients_may_not_use_the_code_flow(make_idp: MakeIdp) -> None:
    running = make_idp(
        clients=lambda base: (StaticClient("svc", "s3cret", ("notes:read",), (f"{base}/mcp",)),),
    )
    assert running.authorize("svc").status_code == 400
