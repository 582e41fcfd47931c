"""The client credentials grant for pre-registered confidential clients."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import httpx
import pytest

from mcp_bastion.devidp import StaticClient

from .conftest import MakeIdp, RunningIdp

SECRET = "s3cret:with/odd+chars"


@pytest.fixture
def machine(make_idp: MakeIdp) -> RunningIdp:
    return make_idp(
        resources=lambda base: {f"{base}/mcp": ("notes:read", "notes:write"), f"{base}/other": ("x",)},
        clients=lambda base: (StaticClient("svc", SECRET, ("notes:read",), (f"{base}/mcp",)),),
    )


def _basic(client_id: str, secret: str) -> dict[str, str]:
    # RFC 6749 §2.3.1: form-encode, then base64.
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}


def _cc(running: RunningIdp, headers: dict[str, str] | None = None, **form: str | None) -> httpx.Response:
    data = {"grant_type": "client_credentials", "resource": running.resource, **form}
    return running.http.post("/idp/token", data={k: v for k, v in data.items() if v}, headers=headers)


def test_client_secret_basic(machine: RunningIdp) -> None:
    response = _cc(machine, _basic("svc", SECRET))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["scope"] == "notes:read"
    assert "refresh_token" not in body
    claims = machine.claims(body["access_token"])
    assert claims["sub"] == claims["client_id"] == "svc"
    assert claims["aud"] == machine.resource


def test_client_secret_post(machine: RunningIdp) -> None:
    response = _cc(machine, client_id="svc", client_secret=SECRET, scope="notes:read")
    assert response.status_code == 200


def test_scopes_limited_to_the_clients(machine: RunningIdp) -> None:
    assert _cc(machine, _basic("svc", SECRET), scope="notes:read notes:write").json()["scope"] == "notes:read"
    assert _cc(machine, _basic("svc", SECRET), scope="notes:write").json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("resource", "error"),
    [
        (None, "invalid_target"),
        ("OTHER", "invalid_target"),
        ("https://unknown.example/mcp", "invalid_target"),
    ],
)
def test_resource_required_and_allowed(machine: RunningIdp, resource: str | None, error: str) -> None:
    value = f"{machine.base}/other" if resource == "OTHER" else resource
    data = {"grant_type": "client_credentials", **({"resource": value} if value else {})}
    response = machine.http.post("/idp/token", data=data, headers=_basic("svc", SECRET))
    assert response.json()["error"] == error


def test_wrong_secret_is_401_with_basic_challenge(machine: RunningIdp) -> None:
    response = _cc(machine, _basic("svc", "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "form",
    [
        {"client_id": "svc", "client_secret": "wrong"},
        {"client_id": "svc"},
        {"client_id": "nobody", "client_secret": "x"},
    ],
)
def test_failed_post_authentication_is_401(machine: RunningIdp, form: dict[str, str]) -> None:
    response = _cc(machine, **form)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize(
    "authorization",
    ["Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic"],
)
def test_malformed_authorization_header_is_401(machine: RunningIdp, authorization: str) -> None:
    response = _cc(machine, {"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_two_authentication_methods_is_invalid_request(machine: RunningIdp) -> None:
    response = _cc(machine, _basic("svc", SECRET), client_secret=SECRET)
    assert response.json()["error"] == "invalid_request"
    mismatch = _cc(machine, _basic("svc", SECRET), client_id="other")
    assert mismatch.json()["error"] == "invalid_request"


def test_public_client_may_not_use_client_credentials(machine: RunningIdp) -> None:
    client_id = machine.register()["client_id"]
    response = _cc(machine, client_id=client_id)
    assert response.json()["error"] == "unauthorized_client"
    with_secret = _cc(machine, client_id=client_id, client_secret="guess")
    assert with_secret.status_code == 401


def test_confidential_client_may_not_redeem_codes(machine: RunningIdp) -> None:
    response = machine.http.post(
        "/idp/token",
        data={"grant_type": "authorization_code", "code": "x", "resource": machine.resource},
        headers=_basic("svc", SECRET),
    )
    assert response.json()["error"] == "unauthorized_client"


def test_static_client_secret_is_not_in_repr() -> None:
    assert SECRET not in repr(StaticClient("svc", SECRET, (), ()))
