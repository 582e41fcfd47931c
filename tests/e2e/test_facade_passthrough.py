"""The facade's `issue: idp_when_audience_fits` against panva's oidc-provider (no DCR, as Entra
ID): at sign-in the facade asks the provider for the requested MCP server (RFC 8707); when the
provider's access token names exactly that server as its audience, the client gets the
provider's token, which the gateway accepts as the provider's. For a server the provider
answers with an opaque token (no audience to check) the facade's own token is issued. Either
way the refresh token is the facade's, and a refresh returns the facade's own token.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config

from ..devidp.conftest import pkce_pair
from ..support.gateway import AuditFeed, serve_gateway
from ..support.servers import bind_loopback
from .demo_stack import running_demo_upstreams
from .oidc_provider.fixture import StaticClient, start_oidc_provider
from .test_facade_oidc_provider import FACADE_CLIENT_ID, FACADE_SECRET, Browser, Stack, _mcp_status

pytestmark = [pytest.mark.e2e, pytest.mark.node]

SCOPES = ("tools.read", "tools.write")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    facade_client = StaticClient(
        FACADE_CLIENT_ID,
        FACADE_SECRET,
        grant_types=("authorization_code",),
        redirect_uris=(f"{base}/oauth/op/callback",),
    )
    resources = {f"{base}/demo/mcp": SCOPES, f"{base}/notes/mcp": SCOPES}
    extra = {"opaque_resources": [f"{base}/notes/mcp"]}  # no audience the facade could check
    with (
        running_demo_upstreams() as upstreams,
        start_oidc_provider(
            resources, clients=(facade_client,), registration=False, extra_config=extra
        ) as op,
    ):
        config = {
            "public_base_url": base,
            "identity_providers": [
                {
                    "name": "op",
                    "issuer": op.issuer,
                    "allow_insecure_http": True,
                    "facade": {
                        "client_id": FACADE_CLIENT_ID,
                        "client_secret": {"env": "FACADE_SECRET"},
                        "issue": "idp_when_audience_fits",
                    },
                }
            ],
            "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
            "audit": {"sink": "none"},
        }
        parsed = parse_config(config)
        secrets = {"identity_providers[0].facade.client_secret": FACADE_SECRET}
        with serve_gateway(build_gateway(LoadedConfig(parsed, secrets)), sock, parsed):
            yield Stack(base, op, AuditFeed())


@pytest.fixture
def browser(stack: Stack) -> Iterator[Browser]:
    b = Browser(stack)
    yield b
    b.http.close()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _tokens(browser: Browser, server: str) -> tuple[str, dict[str, Any]]:
    client_id = browser.register()
    verifier, challenge = pkce_pair()
    resource = browser.stack.url(server)
    form, _ = browser.to_consent(browser.authorize_url(client_id, challenge, resource=resource))
    answer = browser.approve(form)
    assert answer.status_code == 303
    code = dict(part.split("=", 1) for part in answer.headers["location"].split("?", 1)[1].split("&"))["code"]
    tokens = browser.redeem(client_id, code, verifier, resource=resource)
    assert tokens.status_code == 200, tokens.text
    return client_id, tokens.json()


def _refresh(browser: Browser, client_id: str, server: str, token: str) -> dict[str, Any]:
    response = browser.token(
        grant_type="refresh_token",
        refresh_token=token,
        client_id=client_id,
        resource=browser.stack.url(server),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_idps_token_is_passed_through_when_its_audience_is_the_server(
    browser: Browser, stack: Stack
) -> None:
    client_id, tokens = _tokens(browser, "demo")
    claims = _claims(tokens["access_token"])
    assert claims["iss"] == stack.op.issuer  # the provider's own token, not the facade's
    assert claims["aud"] == stack.url("demo")
    assert claims["sub"] == stack.op.account
    assert tokens["scope"] == "tools.read"
    assert 0 < tokens["expires_in"] <= 3600
    assert _mcp_status(stack, "demo", tokens["access_token"]) == 200  # accepted as the provider's
    assert _mcp_status(stack, "notes", tokens["access_token"]) == 401  # and for that server only
    # The refresh token is the facade's: a refresh returns the facade's own token.
    refreshed = _refresh(browser, client_id, "demo", tokens["refresh_token"])
    assert _claims(refreshed["access_token"])["iss"] == stack.facade
    assert _claims(refreshed["access_token"])["sub"] == stack.op.account
    assert _mcp_status(stack, "demo", refreshed["access_token"]) == 200


def test_the_facades_own_token_when_the_audience_does_not_fit(browser: Browser, stack: Stack) -> None:
    client_id, tokens = _tokens(browser, "notes")
    claims = _claims(tokens["access_token"])  # the provider's was opaque: ours is a JWT
    assert claims["iss"] == stack.facade
    assert claims["aud"] == stack.url("notes")
    assert _mcp_status(stack, "notes", tokens["access_token"]) == 200
    refreshed = _refresh(browser, client_id, "notes", tokens["refresh_token"])
    assert _claims(refreshed["access_token"])["iss"] == stack.facade
    assert _mcp_status(stack, "notes", refreshed["access_token"]) == 200
