"""The login step's upstream token through the core (the facade's passthrough): carried sealed
from the sign-in to the consent to the code, handed out at the code exchange only if it grants
no more than the user approved here, never on refresh."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_bastion.devidp import AuthorizationRequest, DevIdpSettings, LoginResult, build_devidp
from mcp_bastion.devidp._login import UpstreamToken

from .conftest import REDIRECT, SCOPES, FakeClock, pkce_pair

BASE = "http://idp.test"
RESOURCE = f"{BASE}/mcp"
UPSTREAM = "upstream.jwt.token"


class FakeLogin:
    """Signs everyone in as alice, with an IdP token of the given scopes."""

    def __init__(self, scopes: tuple[str, ...] | None, expires_at: float) -> None:
        self._pending: dict[str, AuthorizationRequest] = {}
        self._token = UpstreamToken(UPSTREAM, scopes, expires_at)

    async def begin(self, auth: AuthorizationRequest, request: Request) -> Response:
        self._pending["s"] = auth
        return RedirectResponse(f"{BASE}/idp/callback?state=s", 302)

    async def finish(self, request: Request) -> LoginResult:
        return LoginResult(self._pending.pop("s"), subject="alice", upstream=self._token)


async def _flow(login: FakeLogin, clock: FakeClock) -> tuple[httpx.AsyncClient, dict[str, str], str]:
    idp = build_devidp(
        DevIdpSettings(issuer=f"{BASE}/idp", resources={RESOURCE: SCOPES}), clock=clock, login=login
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=idp.app), base_url=BASE)
    registered = await http.post(
        "/idp/register",
        json={"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"]},
    )
    client_id = registered.json()["client_id"]
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": RESOURCE,
        "scope": "notes:read",
    }
    await http.get("/idp/authorize", params=params)
    page = await http.get("/idp/callback?state=s")
    fields = dict(
        re.findall(r'<input type="hidden" name="(request_id|csrf_token)" value="([^"]*)">', page.text)
    )
    answer = await http.post("/idp/consent", data={**fields, "decision": "approve"})
    code = dict(httpx.URL(answer.headers["location"]).params)["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "resource": RESOURCE,
    }
    tokens = await http.post("/idp/token", data=form)
    assert tokens.status_code == 200, tokens.text
    return http, tokens.json(), client_id


async def test_a_fitting_upstream_token_is_handed_out_and_refresh_is_ours() -> None:
    clock = FakeClock()
    http, tokens, client_id = await _flow(FakeLogin(("notes:read",), clock.now + 600), clock)
    assert tokens["access_token"] == UPSTREAM
    assert tokens["expires_in"] == 600
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id}
    refreshed = await http.post("/idp/token", data={**form, "resource": RESOURCE})
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != UPSTREAM  # the core's own token
    await http.aclose()


@pytest.mark.parametrize(
    ("scopes", "life", "why"),
    [
        (("notes:read", "notes:write"), 600, "more than the user approved on the consent page"),
        (("notes:read",), 5, "about to expire"),
    ],
)
async def test_an_upstream_token_that_does_not_fit_the_consent_is_not_handed_out(
    scopes: tuple[str, ...], life: float, why: str
) -> None:
    clock = FakeClock()
    http, tokens, _ = await _flow(FakeLogin(scopes, clock.now + life), clock)
    assert tokens["access_token"] != UPSTREAM, why
    assert tokens["scope"] == "notes:read"
    await http.aclose()
