"""The authorization facade in front of panva's oidc-provider configured WITHOUT Dynamic Client
Registration (as Entra ID is): the official MCP SDK client registers at the facade, signs in
at the provider through the facade's one confidential client, consents at the facade, and
calls tools with the facade's own tokens. Then the hostile cases, each against the same
real stack: consent replayed across clients, code replay, refresh reuse after rotation,
redirect URI mismatch, login CSRF, CIMD at private addresses and a 50 MB document.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import httpx2
import jsonschema
import orjson
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import AuditEvent
from mcp_bastion.config import LoadedConfig, parse_config

from ..devidp.conftest import pkce_pair
from ..support.gateway import AuditFeed, serve_gateway
from ..support.servers import RunningServer, bind_loopback, serve_asgi
from .demo_stack import running_demo_upstreams
from .oidc_provider.fixture import OidcProvider, StaticClient, start_oidc_provider
from .sdk_oauth import REDIRECT_URI, FlowRecord, HeadlessBrowser, MemoryTokenStorage, client_metadata

pytestmark = [pytest.mark.e2e, pytest.mark.node]

FACADE_CLIENT_ID = "bastion-facade"
FACADE_SECRET = "facade-secret-for-tests"
TIMEOUT_S = 20.0
MAX_HOPS = 10
_HIDDEN = re.compile(r'<input type="hidden" name="(request_id|csrf_token)" value="([^"]*)">')
_ACTION = re.compile(r'<form method="post" action="([^"]*)">')
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "audit.schema.json").read_text())


@dataclass(frozen=True)
class Stack:
    base_url: str
    op: OidcProvider
    audit: AuditFeed

    @property
    def facade(self) -> str:
        return f"{self.base_url}/oauth/op"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}/mcp"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The gateway is one confidential client at the provider, redirecting to the facade.
    facade_client = StaticClient(
        FACADE_CLIENT_ID,
        FACADE_SECRET,
        grant_types=("authorization_code",),
        redirect_uris=(f"{base}/oauth/op/callback",),
    )
    with (
        running_demo_upstreams() as upstreams,
        start_oidc_provider({}, clients=(facade_client,), registration=False) as op,
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
                        "allow_insecure_http_cimd": True,
                    },
                }
            ],
            "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
            "audit": {"sink": "none"},
        }
        audit = AuditFeed()
        parsed = parse_config(config)
        secrets = {"identity_providers[0].facade.client_secret": FACADE_SECRET}
        gateway = build_gateway(LoadedConfig(parsed, secrets), audit=audit)
        with serve_gateway(gateway, sock, parsed):
            yield Stack(base, op, audit)


def test_the_provider_really_has_no_registration(stack: Stack) -> None:
    # The premise: MCP clients cannot register at this IdP.
    metadata = httpx.get(stack.op.metadata_url, timeout=TIMEOUT_S).json()
    assert "registration_endpoint" not in metadata
    refused = httpx.post(f"{stack.op.issuer}/reg", json={"redirect_uris": [REDIRECT_URI]}, timeout=TIMEOUT_S)
    assert refused.status_code == 404


def test_protected_resource_metadata_points_at_the_facade(stack: Stack) -> None:
    prm = httpx.get(
        f"{stack.base_url}/.well-known/oauth-protected-resource/demo/mcp", timeout=TIMEOUT_S
    ).json()
    assert prm["authorization_servers"] == [stack.facade]
    metadata = httpx.get(
        f"{stack.base_url}/.well-known/oauth-authorization-server/oauth/op", timeout=TIMEOUT_S
    ).json()
    assert metadata["issuer"] == stack.facade
    assert metadata["registration_endpoint"] == f"{stack.facade}/register"
    assert metadata["client_id_metadata_document_supported"] is True
    assert metadata["revocation_endpoint"] == f"{stack.facade}/revoke"


# -- the official SDK client, headless, with DCR ---------------------------------------------


class ConsentingBrowser(HeadlessBrowser):
    """The SDK's browser that, like a user, approves the facade's consent page when shown."""

    async def _follow(self, url: str) -> dict[str, str]:
        for _ in range(MAX_HOPS):
            response = await self._http.get(url)
            if response.status_code == 200 and "csrf_token" in response.text:
                form = _consent_form(response.text)
                response = await self._http.post(
                    urljoin(url, form.pop("action")), data={**form, "decision": "approve"}
                )
            location = response.headers.get("location")
            if not response.is_redirect or location is None:
                raise AssertionError(f"no redirect from {url}: {response.status_code} {response.text[:300]}")
            url = urljoin(url, location)
            if url.startswith(REDIRECT_URI):
                return dict(parse_qsl(urlsplit(url).query))
        raise AssertionError("too many redirects")


@contextlib.asynccontextmanager
async def sdk_client(server_url: str, record: FlowRecord) -> AsyncIterator[Client]:
    browser = ConsentingBrowser(record)
    provider = OAuthClientProvider(
        server_url,
        client_metadata(),
        MemoryTokenStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    try:
        async with httpx2.AsyncClient(
            auth=provider,
            timeout=TIMEOUT_S,
            trust_env=False,
            event_hooks={"request": [record.on_request], "response": [record.on_response]},
        ) as http:
            async with Client(streamable_http_client(server_url, http_client=http), mode="legacy") as client:
                yield client
    finally:
        await browser.aclose()


async def test_sdk_client_registers_at_the_facade_signs_in_upstream_and_calls_tools(stack: Stack) -> None:
    record = FlowRecord()
    async with sdk_client(stack.url("demo"), record) as client:
        result = await client.call_tool("echo", {"text": "through the facade"})
    assert not result.is_error
    assert result.structured_content == {"result": "through the facade"}
    assert record.registrations == [f"{stack.facade}/register"]  # DCR at the facade, not the IdP
    [authorization] = record.authorizations
    assert authorization.url.startswith(f"{stack.facade}/authorize?")
    assert {t.url for t in record.token_requests} == {f"{stack.facade}/token"}
    echo = stack.audit.wait_for(lambda e: e.method == "tools/call" and e.target == "echo")
    # The facade's token: its own issuer, the user the provider signed in, the dynamic client.
    assert echo.decision == "allow"
    assert echo.issuer == stack.facade
    assert echo.subject == stack.op.account
    assert echo.client_id is not None
    assert echo.client_id != FACADE_CLIENT_ID
    # The facade's own endpoints are in the same feed: registration, sign-in, consent, token.
    events = _facade_events(stack, echo.client_id)
    kinds = [(e.event, e.method, e.decision) for e in events]
    assert kinds == [
        ("facade.registration", "dcr", "allow"),
        ("facade.sign_in", "callback", "allow"),
        ("facade.consent", "consent", "allow"),
        ("facade.token", "authorization_code", "allow"),
    ]
    assert all(e.server == "op" and e.issuer == stack.facade for e in events)
    assert [e.subject for e in events[1:]] == [stack.op.account] * 3
    [issued] = [e for e in events if e.event == "facade.token"]
    assert issued.target == stack.url("demo")
    # The token is named by the same hash as in the request events, never by itself.
    assert issued.token_hash == echo.token_hash


# -- a scripted browser for the hostile cases ------------------------------------------------


def _consent_form(page: str) -> dict[str, str]:
    fields = dict(_HIDDEN.findall(page))
    action = _ACTION.search(page)
    assert action is not None, page[:500]
    assert set(fields) == {"request_id", "csrf_token"}, page[:500]
    return {"action": action.group(1), **fields}


class Browser:
    """A cookie-keeping browser stepping through the facade and the provider by hand."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False)

    def register(self, redirect_uri: str = REDIRECT_URI) -> str:
        body = {
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "client_name": "hostile-test",
        }
        response = self.http.post(f"{self.stack.facade}/register", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["client_id"])

    def authorize_url(self, client_id: str, challenge: str, **overrides: str) -> str:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.stack.url("demo"),
            "scope": "tools.read",
            "state": "s1",
            **overrides,
        }
        return str(httpx.URL(f"{self.stack.facade}/authorize", params=params))

    def to_consent(self, url: str) -> tuple[dict[str, str], str]:
        """Follow redirects (through the provider's sign-in) to the facade's consent page."""
        for _ in range(MAX_HOPS):
            response = self.http.get(url)
            if response.status_code == 200:
                return _consent_form(response.text), response.text
            location = response.headers.get("location")
            assert response.is_redirect, (response.status_code, response.text[:300])
            assert location is not None
            url = urljoin(url, location)
        raise AssertionError("too many redirects")

    def approve(self, form: dict[str, str], decision: str = "approve") -> httpx.Response:
        data = {key: value for key, value in form.items() if key != "action"}
        return self.http.post(urljoin(self.stack.facade, form["action"]), data={**data, "decision": decision})

    def code_for(self, client_id: str, challenge: str) -> str:
        form, _ = self.to_consent(self.authorize_url(client_id, challenge))
        answer = self.approve(form)
        assert answer.status_code == 303
        params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
        assert params["iss"] == self.stack.facade  # RFC 9207
        return params["code"]

    def token(self, **form: str) -> httpx.Response:
        return self.http.post(f"{self.stack.facade}/token", data=form)

    def redeem(self, client_id: str, code: str, verifier: str, **overrides: str) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "resource": self.stack.url("demo"),
            **overrides,
        }
        return self.token(**form)


@pytest.fixture
def browser(stack: Stack) -> Iterator[Browser]:
    b = Browser(stack)
    yield b
    b.http.close()


def _mcp_status(stack: Stack, name: str, token: str) -> int:
    """The gateway's answer to an MCP initialize with ``token``: 200 only for an accepted token."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "facade-test", "version": "1"},
        },
    }
    response = httpx.post(
        stack.url(name),
        headers={
            "authorization": f"Bearer {token}",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        },
        json=initialize,
        timeout=TIMEOUT_S,
    )
    return response.status_code


def test_the_consent_page_names_the_client_and_its_redirect_uri(browser: Browser) -> None:
    client_id = browser.register()
    _, challenge = pkce_pair()
    _, page = browser.to_consent(browser.authorize_url(client_id, challenge))
    # Consent per MCP client: the page says which dynamic client and where the code goes.
    assert client_id in page
    assert REDIRECT_URI in page
    assert "Signed in as <code>alice</code>" in page
    assert 'name="username"' not in page  # the upstream sign-in decided who; the form cannot


def test_facade_tokens_are_audience_bound_and_short_lived(browser: Browser, stack: Stack) -> None:
    client_id = browser.register()
    verifier, challenge = pkce_pair()
    tokens = browser.redeem(client_id, browser.code_for(client_id, challenge), verifier).json()
    assert tokens["expires_in"] == 300
    assert _mcp_status(stack, "demo", tokens["access_token"]) == 200
    # aud is the demo server: the same token is refused by the notes server (RFC 8707).
    assert _mcp_status(stack, "notes", tokens["access_token"]) == 401


def test_consent_for_client_a_cannot_be_replayed_for_client_b(browser: Browser) -> None:
    client_a, client_b = browser.register(), browser.register()
    verifier, challenge = pkce_pair()
    form, _ = browser.to_consent(browser.authorize_url(client_a, challenge))
    answer = browser.approve(form)
    code = dict(parse_qsl(urlsplit(answer.headers["location"]).query))["code"]
    # The same consent answer again (e.g. replayed for another authorization) is refused.
    assert browser.approve(form).status_code == 400
    # A's code, presented by B (confused deputy), is refused and burnt.
    refused = browser.redeem(client_b, code, verifier)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    # B's own authorization asks B's consent afresh: nothing of A's is remembered.
    form_b, page_b = browser.to_consent(browser.authorize_url(client_b, challenge))
    assert client_b in page_b
    assert form_b["request_id"] != form["request_id"]


def test_a_replayed_code_is_refused_and_revokes_what_it_issued(browser: Browser) -> None:
    client_id = browser.register()
    verifier, challenge = pkce_pair()
    code = browser.code_for(client_id, challenge)
    first = browser.redeem(client_id, code, verifier)
    assert first.status_code == 200
    replay = browser.redeem(client_id, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: the refresh token of the first redemption is revoked too.
    refresh = browser.token(
        grant_type="refresh_token",
        refresh_token=first.json()["refresh_token"],
        client_id=client_id,
        resource=browser.stack.url("demo"),
    )
    assert refresh.status_code == 400


def test_a_refresh_token_reused_after_rotation_revokes_the_family(browser: Browser) -> None:
    client_id = browser.register()
    verifier, challenge = pkce_pair()
    first = browser.redeem(client_id, browser.code_for(client_id, challenge), verifier).json()

    def refresh(token: str) -> httpx.Response:
        return browser.token(
            grant_type="refresh_token",
            refresh_token=token,
            client_id=client_id,
            resource=browser.stack.url("demo"),
        )

    second = refresh(first["refresh_token"])
    assert second.status_code == 200
    rotated = second.json()["refresh_token"]
    assert rotated != first["refresh_token"]
    reused = refresh(first["refresh_token"])  # the stolen, rotated-away token
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert refresh(rotated).status_code == 400  # the legitimate holder's token died with the family
    events = _facade_events(browser.stack, client_id)
    [refreshed] = [e for e in events if e.event == "facade.token_refresh" and e.decision == "allow"]
    assert refreshed.subject == browser.stack.op.account
    [reuse] = [e for e in events if e.event == "facade.refresh_token_reuse"]
    assert (reuse.decision, reuse.subject, reuse.target) == (
        "deny",
        browser.stack.op.account,
        browser.stack.url("demo"),
    )
    assert "family is revoked" in reuse.reason
    refused = [e for e in events if e.event == "facade.token_refresh" and e.decision == "deny"]
    assert [e.reason.split(":")[0] for e in refused] == ["invalid_grant", "invalid_grant"]
    _assert_nothing_secret(events, first["refresh_token"], rotated, first["access_token"])


def test_revocation_ends_the_refresh_family(browser: Browser) -> None:
    client_id = browser.register()
    verifier, challenge = pkce_pair()
    tokens = browser.redeem(client_id, browser.code_for(client_id, challenge), verifier).json()
    revoked = browser.http.post(
        f"{browser.stack.facade}/revoke", data={"token": tokens["refresh_token"], "client_id": client_id}
    )
    assert revoked.status_code == 200
    events = _facade_events(browser.stack, client_id)
    [revocation] = [e for e in events if e.event == "facade.revocation"]
    assert (revocation.decision, revocation.reason) == ("allow", "refresh token family revoked")
    assert revocation.subject == browser.stack.op.account
    assert revocation.token_hash is not None
    _assert_nothing_secret(events, tokens["refresh_token"], tokens["access_token"])
    refresh = browser.token(
        grant_type="refresh_token",
        refresh_token=tokens["refresh_token"],
        client_id=client_id,
        resource=browser.stack.url("demo"),
    )
    assert refresh.status_code == 400


def test_a_redirect_uri_mismatch_is_never_followed(browser: Browser, stack: Stack) -> None:
    client_id = browser.register()
    verifier, challenge = pkce_pair()
    evil = "https://attacker.example/cb"
    response = browser.http.get(browser.authorize_url(client_id, challenge, redirect_uri=evil))
    # An error page: no redirect to the unregistered URI, and no trip to the IdP either.
    assert response.status_code == 400
    assert "location" not in response.headers
    # At the token endpoint, a redirect_uri other than the authorization's is refused.
    code = browser.code_for(client_id, challenge)
    refused = browser.redeem(client_id, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_the_sign_in_answer_is_bound_to_the_browser_that_started_it(browser: Browser, stack: Stack) -> None:
    client_id = browser.register()
    _, challenge = pkce_pair()
    # The victim's browser starts; the attacker takes the provider's answer to another browser.
    response = browser.http.get(browser.authorize_url(client_id, challenge))
    url = urljoin(browser.authorize_url(client_id, challenge), response.headers["location"])
    while not url.startswith(f"{stack.facade}/callback"):
        response = browser.http.get(url)
        url = urljoin(url, response.headers["location"])
    with httpx.Client(timeout=TIMEOUT_S, trust_env=False) as other:
        stolen = other.get(url)
    assert stolen.status_code == 403  # RFC 9700 §4.7: login CSRF
    # And the state is single use: the original browser cannot use it afterwards either.
    assert browser.http.get(url).status_code == 400
    failed = [e for e in stack.audit.events if e.event == "facade.sign_in" and e.decision == "deny"]
    assert {403, 400} <= {e.status for e in failed}
    code = dict(parse_qsl(urlsplit(url).query))["code"]
    _assert_nothing_secret(failed, code)


# -- Client ID Metadata Documents --------------------------------------------------------------


def _documents_app() -> Starlette:
    async def document(request: Request) -> Response:
        url = str(request.url)
        return JSONResponse(
            {
                "client_id": url,
                "client_name": "CIMD client",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }
        )

    async def huge(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"client_id": "' + b"x" * 1024
            for _ in range(50 * 1024):  # 50 MB if nobody stopped reading
                yield b"x" * 1024

        return StreamingResponse(chunks(), media_type="application/json")

    return Starlette(routes=[Route("/client.json", document), Route("/huge.json", huge)])


@pytest.fixture(scope="module")
def documents() -> Iterator[RunningServer]:
    with serve_asgi(_documents_app()) as server:
        yield server


def test_a_metadata_document_client_completes_the_flow(browser: Browser, documents: RunningServer) -> None:
    client_id = f"http://127.0.0.1:{documents.port}/client.json"
    verifier, challenge = pkce_pair()
    form, page = browser.to_consent(browser.authorize_url(client_id, challenge))
    assert "CIMD client" in page
    answer = browser.approve(form)
    code = dict(parse_qsl(urlsplit(answer.headers["location"]).query))["code"]
    tokens = browser.redeem(client_id, code, verifier)
    assert tokens.status_code == 200
    assert _mcp_status(browser.stack, "demo", tokens.json()["access_token"]) == 200
    events = _facade_events(browser.stack, client_id)
    assert ("facade.registration", "cimd", "allow") in [(e.event, e.method, e.decision) for e in events]
    _assert_nothing_secret(events, code, tokens.json()["access_token"], tokens.json()["refresh_token"])


@pytest.mark.parametrize(
    "client_id",
    [
        "https://10.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data/client.json",
        "https://[fd00::1]/client.json",
        "https://[::ffff:192.168.0.1]/client.json",
    ],
)
def test_metadata_documents_at_private_addresses_are_refused(browser: Browser, client_id: str) -> None:
    _, challenge = pkce_pair()
    response = browser.http.get(browser.authorize_url(client_id, challenge))
    assert response.status_code == 400
    assert "location" not in response.headers  # no redirect, no trip to the IdP
    assert "not a public address" in response.text  # refused before any connection
    [refused] = _facade_events(browser.stack, client_id)
    assert (refused.event, refused.method, refused.decision) == ("facade.registration", "cimd", "deny")
    assert "not a public address" in refused.reason


def test_a_50_mb_metadata_document_is_cut_off(browser: Browser, documents: RunningServer) -> None:
    client_id = f"http://127.0.0.1:{documents.port}/huge.json"
    _, challenge = pkce_pair()
    response = browser.http.get(browser.authorize_url(client_id, challenge))
    assert response.status_code == 400
    assert "location" not in response.headers
    # Cut off at the 64 KiB cap, not read to the end and then found not to be JSON.
    assert "too large" in response.text


def test_an_idp_refusal_reaches_the_client_in_the_facades_words(browser: Browser, stack: Stack) -> None:
    client_id = browser.register()
    _, challenge = pkce_pair()
    to_idp = browser.http.get(browser.authorize_url(client_id, challenge))
    state = dict(parse_qsl(urlsplit(to_idp.headers["location"]).query))["state"]
    # The IdP's answer as a browser would bring it back, with text the facade must not relay.
    refusal = {
        "state": state,
        "error": "access_denied",
        "error_description": "<script>x</script> tenant 1234",
    }
    answer = browser.http.get(f"{stack.facade}/callback", params=refusal)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(REDIRECT_URI)
    params = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    assert params["error"] == "access_denied"
    assert params["state"] == "s1"  # the client's own state, not the facade's upstream one
    assert params["iss"] == stack.facade
    assert "tenant" not in params["error_description"]
    assert "script" not in params["error_description"]


def test_an_answer_naming_another_issuer_is_refused(browser: Browser, stack: Stack) -> None:
    client_id = browser.register()
    _, challenge = pkce_pair()
    to_idp = browser.http.get(browser.authorize_url(client_id, challenge))
    state = dict(parse_qsl(urlsplit(to_idp.headers["location"]).query))["state"]
    # RFC 9207 mix-up: a code said to come from another authorization server is not redeemed.
    mixed = {"state": state, "code": "anything", "iss": "https://evil.example.com"}
    answer = browser.http.get(f"{stack.facade}/callback", params=mixed)
    assert answer.status_code == 303
    assert dict(parse_qsl(urlsplit(answer.headers["location"]).query))["error"] == "access_denied"


def test_a_denied_consent_is_audited(browser: Browser, stack: Stack) -> None:
    client_id = browser.register()
    _, challenge = pkce_pair()
    form, _ = browser.to_consent(browser.authorize_url(client_id, challenge))
    answer = browser.approve(form, decision="deny")
    assert answer.status_code == 303
    [denied] = [e for e in _facade_events(stack, client_id) if e.event == "facade.consent"]
    assert (denied.decision, denied.subject, denied.target) == ("deny", stack.op.account, stack.url("demo"))
    _assert_nothing_secret([denied], form["csrf_token"], form["request_id"])


def test_every_facade_event_matches_the_published_schema(stack: Stack) -> None:
    # Runs after the others in this module: the shared feed holds every kind they caused.
    events = [e for e in stack.audit.events if e.event.startswith("facade.")]
    assert {e.event for e in events} >= {
        "facade.registration",
        "facade.sign_in",
        "facade.consent",
        "facade.token",
        "facade.token_refresh",
        "facade.refresh_token_reuse",
        "facade.revocation",
    }
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in events:
        record = orjson.loads(event.to_json())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
        assert errors == [], record
    assert FACADE_SECRET not in b"".join(e.to_json() for e in stack.audit.events).decode()


def _facade_events(stack: Stack, client_id: str) -> list[AuditEvent]:
    return [e for e in stack.audit.events if e.event.startswith("facade.") and e.client_id == client_id]


def _assert_nothing_secret(events: list[AuditEvent], *secrets: str) -> None:
    """No token, code, secret or cookie in any event (only hashes name tokens)."""
    text = b"".join(e.to_json() for e in events).decode()
    assert events
    for secret in secrets:
        assert secret not in text
