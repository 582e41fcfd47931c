"""Enterprise-Managed Authorization end to end, with panva's oidc-provider as the enterprise IdP.

The user signs in at oidc-provider (authorization code + PKCE, headless) and the MCP client
keeps the ID token. The client trades it at oidc-provider for an Identity Assertion JWT
Authorization Grant (RFC 8693 token exchange, tests/e2e/oidc_provider/idjag.mjs), presents
the ID-JAG to the gateway's facade (RFC 7523 jwt-bearer grant) and calls a tool through the
gateway with the facade's access token, using the official MCP SDK client. Then the hostile
cases against the same real stack: the ID-JAG replayed, stolen by another client, addressed
to another authorization server, and the ID token itself presented as the assertion.

The facade is configured as in test_facade_oidc_provider.py, plus ``accept_id_jag``. The
MCP clients are known at the facade by their metadata-document URLs (CIMD); the IdP's policy
maps its own client ids to those, as an IdP administrator would.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from mcp_bastion.app import build_gateway
from mcp_bastion.audit import AuditEvent
from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.connect.grants import ClientAuth, IdJagGrant
from mcp_bastion.connect.oauth import AuthOptions, Authorizer
from mcp_bastion.connect.relay import Relay
from mcp_bastion.devidp import JWT_BEARER

from ..support.gateway import AuditFeed, serve_gateway
from ..support.sdk_client import bearer_client
from ..support.servers import bind_loopback
from .demo_stack import running_demo_upstreams
from .oidc_provider.fixture import OidcProvider, StaticClient, start_oidc_provider
from .oidc_provider.flows import Pkce, authorization_url, follow_to_redirect_uri

pytestmark = [pytest.mark.e2e, pytest.mark.node]

EXTENSION = str(Path(__file__).with_name("oidc_provider").joinpath("idjag.mjs"))
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
FACADE_CLIENT_ID = "bastion-facade"
FACADE_SECRET = "facade-secret-for-tests"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the chain stops at it
# Two MCP clients as the IdP knows them (confidential clients there) ...
APP_A, APP_B = ("mcp-app-a", "app-a-secret"), ("mcp-app-b", "app-b-secret")
# ... and as the facade knows them: their Client ID Metadata Document URLs.
CLIENT_A, CLIENT_B = "https://app-a.example/client.json", "https://app-b.example/client.json"
# Another authorization server the IdP also issues ID-JAGs for (never contacted).
OTHER_AS = "https://other-as.example"
TIMEOUT_S = 20.0
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "id-jag-e2e", "version": "1"},
    },
}
ECHO = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "from connect"}},
}
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

    def id_jag_events(self, client_id: str) -> list[AuditEvent]:
        return [e for e in self.audit.events if e.event == "facade.id_jag" and e.client_id == client_id]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    facade = f"{base}/oauth/op"
    demo = f"{base}/demo/mcp"
    facade_client = StaticClient(
        FACADE_CLIENT_ID,
        FACADE_SECRET,
        grant_types=("authorization_code",),
        redirect_uris=(f"{facade}/callback",),
    )
    apps = tuple(
        StaticClient(
            app, secret, grant_types=("authorization_code", TOKEN_EXCHANGE), redirect_uris=(REDIRECT_URI,)
        )
        for app, secret in (APP_A, APP_B)
    )
    # The IdP administrator's policy: app A may reach the demo server through the facade and
    # through another authorization server; app B the demo server through the facade.
    policy = {
        "ttl": 300,
        "grants": {
            APP_A[0]: {
                facade: {"client_id": CLIENT_A, "resources": {demo: "tools.read"}},
                OTHER_AS: {"client_id": CLIENT_A, "resources": {demo: "tools.read"}},
            },
            APP_B[0]: {facade: {"client_id": CLIENT_B, "resources": {demo: "tools.read"}}},
        },
    }
    with (
        running_demo_upstreams() as upstreams,
        start_oidc_provider(
            {},
            clients=(facade_client, *apps),
            registration=False,
            extra_config={"extension": EXTENSION, "id_jag": policy},
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
                        "allow_insecure_http_cimd": True,
                        "accept_id_jag": True,
                    },
                }
            ],
            "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
            "audit": {"sink": "none"},
        }
        audit = AuditFeed()
        parsed = parse_config(config)
        secrets_ = {"identity_providers[0].facade.client_secret": FACADE_SECRET}
        gateway = build_gateway(LoadedConfig(parsed, secrets_), audit=audit)
        with serve_gateway(gateway, sock, parsed):
            yield Stack(base, op, audit)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        yield client


def sign_in(http: httpx.Client, stack: Stack, app: tuple[str, str]) -> str:
    """The user's single sign-on at the IdP, as the MCP client does it: the ID token."""
    pkce, state = Pkce.new(), secrets.token_urlsafe(16)
    url = authorization_url(
        stack.op.authorization_endpoint,
        client_id=app[0],
        redirect_uri=REDIRECT_URI,
        pkce=pkce,
        state=state,
        scope="openid",
    )
    answer = follow_to_redirect_uri(http, url, REDIRECT_URI)
    assert answer.state == state
    assert answer.code is not None, answer.params
    tokens = http.post(
        stack.op.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": answer.code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=app,
    )
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["id_token"])


def exchange(
    http: httpx.Client, stack: Stack, app: tuple[str, str], id_token: str, audience: str | None = None
) -> httpx.Response:
    """The ID token for an ID-JAG at the IdP (RFC 8693 token exchange)."""
    return http.post(
        stack.op.token_endpoint,
        data={
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": ID_JAG_TYPE,
            "subject_token": id_token,
            "subject_token_type": ID_TOKEN_TYPE,
            "audience": audience or stack.facade,
            "resource": stack.url("demo"),
        },
        auth=app,
    )


def id_jag(http: httpx.Client, stack: Stack, app: tuple[str, str], audience: str | None = None) -> str:
    answer = exchange(http, stack, app, sign_in(http, stack, app), audience)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def present(http: httpx.Client, stack: Stack, client_id: str, assertion: str) -> httpx.Response:
    """The ID-JAG at the facade's token endpoint (RFC 7523 jwt-bearer grant), as a public client."""
    form = {
        "grant_type": JWT_BEARER,
        "assertion": assertion,
        "client_id": client_id,
        "resource": stack.url("demo"),
    }
    return http.post(f"{stack.facade}/token", data=form)


async def test_a_user_signed_in_at_the_idp_calls_a_tool_with_an_id_jag(stack: Stack) -> None:
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as http:
        id_token = sign_in(http, stack, APP_A)
        answer = exchange(http, stack, APP_A, id_token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # The ID-JAG draft's token exchange answer: not an access token, so no token type.
        assert (body["issued_token_type"], body["token_type"]) == (ID_JAG_TYPE, "N_A")
        assertion = str(body["access_token"])
        # Signed with the key the IdP publishes (what the facade will check it against).
        published = KeySet.import_key_set(http.get(stack.op.jwks_uri).json())
        decoded = jwt.decode(assertion, published, algorithms=[stack.op.alg])
        claims = decoded.claims
        assert decoded.header["typ"] == "oauth-id-jag+jwt"
        assert (claims["iss"], claims["sub"], claims["aud"]) == (
            stack.op.issuer,
            stack.op.account,
            stack.facade,
        )
        assert (claims["client_id"], claims["resource"]) == (CLIENT_A, stack.url("demo"))
        granted = present(http, stack, CLIENT_A, assertion)
    assert granted.status_code == 200, granted.text
    tokens = granted.json()
    assert tokens["scope"] == "tools.read"
    assert "refresh_token" not in tokens  # a new token means a new ID-JAG: the IdP stays in control

    async with bearer_client(stack.url("demo"), tokens["access_token"], "legacy") as client:
        result = await client.call_tool("echo", {"text": "enterprise-managed"})
    assert not result.is_error
    assert result.structured_content == {"result": "enterprise-managed"}

    echo = stack.audit.wait_for(lambda e: e.method == "tools/call" and e.client_id == CLIENT_A)
    assert (echo.decision, echo.issuer, echo.subject) == ("allow", stack.facade, stack.op.account)
    [accepted] = stack.id_jag_events(CLIENT_A)
    assert (accepted.decision, accepted.method, accepted.subject, accepted.target) == (
        "allow",
        JWT_BEARER,
        stack.op.account,
        stack.url("demo"),
    )
    [issued] = [e for e in stack.audit.events if e.event == "facade.token" and e.client_id == CLIENT_A]
    assert (issued.method, issued.decision, issued.token_hash) == (JWT_BEARER, "allow", echo.token_hash)
    _assert_nothing_secret([accepted, issued, echo], id_token, assertion, tokens["access_token"])


async def test_mcp_bastion_connect_runs_the_same_flow_from_the_id_token(
    stack: Stack, http: httpx.Client, tmp_path: Path
) -> None:
    # The project's own client (`connect --grant id_jag`) against the real IdP: it discovers the
    # facade from the gateway's challenge, exchanges the ID token there, presents the ID-JAG.
    id_token_file = tmp_path / "id-token.jwt"
    id_token_file.write_text(sign_in(http, stack, APP_B))
    grant = IdJagGrant(
        client=ClientAuth(CLIENT_B),  # a public client at the facade, known by its CIMD URL
        idp_issuer=stack.op.issuer,
        idp_client=ClientAuth(*APP_B),
        id_token_file=id_token_file,
    )
    written: list[Any] = []

    async def write(message: Any) -> None:
        written.append(message)

    url = stack.url("demo")
    options = AuthOptions(store_path=tmp_path / "tokens.json", grant=grant)
    async with httpx.AsyncClient(trust_env=False, timeout=TIMEOUT_S) as client:
        relay = Relay(client, url, Authorizer(client, url, options), write)
        try:
            await asyncio.wait_for(relay.forward(INITIALIZE), TIMEOUT_S)
            await asyncio.wait_for(relay.forward(ECHO), TIMEOUT_S)
        finally:
            await relay.close()
    initialized, echoed = written
    assert "result" in initialized, initialized
    assert echoed["result"]["structuredContent"] == {"result": "from connect"}, echoed
    accepted = stack.id_jag_events(CLIENT_B)[-1]
    assert (accepted.decision, accepted.subject) == ("allow", stack.op.account)


def test_a_replayed_id_jag_is_refused(stack: Stack, http: httpx.Client) -> None:
    assertion = id_jag(http, stack, APP_B)
    assert present(http, stack, CLIENT_B, assertion).status_code == 200
    replay = present(http, stack, CLIENT_B, assertion)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    refused = stack.id_jag_events(CLIENT_B)[-1]
    assert (refused.decision, refused.reason) == ("deny", "invalid_grant: ID-JAG jti was already used")
    _assert_nothing_secret(stack.id_jag_events(CLIENT_B), assertion)


def test_an_id_jag_presented_by_another_client_is_refused(stack: Stack, http: httpx.Client) -> None:
    # App A's ID-JAG in app B's hands (a stolen assertion): client_id names A, B presents it.
    stolen = id_jag(http, stack, APP_A)
    refused = present(http, stack, CLIENT_B, stolen)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    denial = stack.id_jag_events(CLIENT_B)[-1]
    assert (denial.decision, denial.reason) == ("deny", "invalid_grant: ID-JAG was issued for another client")
    # The refusal burnt nothing: A itself still redeems it.
    assert present(http, stack, CLIENT_A, stolen).status_code == 200


def test_an_id_jag_for_another_authorization_server_is_refused(stack: Stack, http: httpx.Client) -> None:
    # The IdP really issues it (its policy lets app A reach OTHER_AS), but not for the facade.
    elsewhere = id_jag(http, stack, APP_A, audience=OTHER_AS)
    assert _claims(elsewhere)["aud"] == OTHER_AS
    refused = present(http, stack, CLIENT_A, elsewhere)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    denial = stack.id_jag_events(CLIENT_A)[-1]
    assert (denial.decision, denial.reason) == ("deny", "invalid_grant: ID-JAG audience is not this facade")


def test_the_id_token_itself_is_not_an_id_jag(stack: Stack, http: httpx.Client) -> None:
    # Same issuer, same key, same user: only its type (and audience) say it is no grant.
    id_token = sign_in(http, stack, APP_A)
    refused = present(http, stack, CLIENT_A, id_token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    denial = stack.id_jag_events(CLIENT_A)[-1]
    assert denial.decision == "deny"
    assert "typ" in denial.reason
    _assert_nothing_secret([denial], id_token)


def test_the_idp_issues_id_jags_only_within_its_policy(stack: Stack, http: httpx.Client) -> None:
    # The fixture is no rubber stamp: what the hostile cases above got from it, it was allowed.
    id_token_a = sign_in(http, stack, APP_A)
    other_client = exchange(http, stack, APP_B, id_token_a)  # A's ID token, exchanged by B
    assert (other_client.status_code, other_client.json()["error"]) == (400, "invalid_grant")
    unknown = exchange(http, stack, APP_B, sign_in(http, stack, APP_B), audience=OTHER_AS)
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_target")


def test_every_id_jag_event_matches_the_published_schema(stack: Stack) -> None:
    # Runs after the others in this module: the feed holds accepted and refused ID-JAGs.
    events = [e for e in stack.audit.events if e.event == "facade.id_jag"]
    assert {e.decision for e in events} == {"allow", "deny"}
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in events:
        record = orjson.loads(event.to_json())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(record)]
        assert errors == [], record


def _claims(token: str) -> dict[str, object]:
    """A JWT's claims, unverified (the test only reads what the IdP wrote)."""
    payload = jws.extract_compact(token.encode()).payload
    claims: dict[str, object] = json.loads(payload)
    return claims


def _assert_nothing_secret(events: list[AuditEvent], *secrets_: str) -> None:
    """No ID token, ID-JAG or access token in any event (only hashes name tokens)."""
    text = b"".join(e.to_json() for e in events).decode()
    assert events
    for secret in secrets_:
        assert secret not in text
