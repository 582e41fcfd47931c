"""Upstream credentials by exchange and opaque tokens by introspection, against a real IdP.

panva's oidc-provider (tests/e2e/oidc_provider) runs with the token-exchange extension
(exchange.mjs: RFC 8693 and Entra-style on-behalf-of), its built-in client-credentials grant,
introspection and revocation. The gateway authenticates to it as the confidential client
`gateway`; callers are clients of their own (`alice-app`, `bob-app`) whose client-credentials
tokens name them as subject, so "another user" is another client here.

Each upstream resource makes the IdP behave one way (exchange.mjs): the hostile ones are an
IdP answering with another audience, with more scopes than asked, an OAuth error quoting the
subject token, no answer, a 200 kB answer, no expiry.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config

from ..support.gateway import AuditFeed, post_mcp, serve_gateway
from ..support.recording_upstream import RecordingUpstream
from ..support.servers import bind_loopback, serve_asgi
from .oidc_provider.fixture import OidcProvider, StaticClient, start_oidc_provider

pytestmark = [pytest.mark.e2e, pytest.mark.node]

EXTENSION = str(Path(__file__).with_name("oidc_provider").joinpath("exchange.mjs"))
GRANTS = (
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
)
CLIENTS = (
    StaticClient("gateway", "gateway-secret", grant_types=GRANTS),
    StaticClient("alice-app", "alice-secret"),
    StaticClient("bob-app", "bob-secret"),
)
SCOPES = ("tools.read", "tools.write")
# Upstream resource -> how the IdP answers an exchange for it (exchange.mjs).
UPSTREAMS = {
    "ok": "ok",
    "obo": "ok",
    "cc": "ok",
    "other": "other_audience",
    "broad": "broad_scope",
    "refused": "invalid_grant",
    "hang": "hang",
    "huge": "huge",
    "noexp": "no_expiry",
}
TYPES = {"obo": "obo", "cc": "client_credentials"}


def upstream_resource(name: str) -> str:
    return f"https://{name}.upstream.example/mcp"


def exchange_for(name: str) -> dict[str, Any]:
    kind = TYPES.get(name, "exchange")
    if kind == "obo":
        # Entra ID names the upstream in the scope: "<app id URI>/<scope>".
        resource = upstream_resource(name)
        return {
            "type": "obo",
            "exchange": {
                "identity_provider": "idp",
                "audience": resource,
                "scopes": {s: [f"{resource}/{s}"] for s in SCOPES},
            },
        }
    return {"type": kind, "exchange": {"identity_provider": "idp", "resource": upstream_resource(name)}}


@dataclass
class Stack:
    idp: OidcProvider
    upstream: RecordingUpstream
    audit: AuditFeed
    base: str
    http: httpx.Client

    def resource(self, server: str) -> str:
        return f"{self.base}/{server}/mcp"

    def caller_token(self, server: str, client: str = "alice-app", scope: str = "tools.read") -> str:
        secret = {"alice-app": "alice-secret", "bob-app": "bob-secret"}[client]
        answer = self.http.post(
            self.idp.token_endpoint,
            data={"grant_type": "client_credentials", "resource": self.resource(server), "scope": scope},
            auth=(client, secret),
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def call(self, server: str, token: str, tool: str = "read_thing") -> httpx.Response:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
        return post_mcp(self.http, self.resource(server), body, token=token)

    def counts(self) -> dict[str, int]:
        return dict(self.http.get(f"{self.idp.issuer}/test/counts").json())

    def exchanges(self, server: str) -> int:
        grant = {"obo": "on-behalf-of"}.get(server, "token-exchange")
        return self.counts().get(f"{grant} {upstream_resource(server)}", 0)

    def upstream_tokens(self) -> list[str]:
        return [
            r.headers["authorization"].removeprefix("Bearer ")
            for r in self.upstream.calls("tools/call")
            if "authorization" in r.headers
        ]

    def claims_of(self, token: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(self.http.get(self.idp.jwks_uri).json())
        return dict(jwt.decode(token, keys, algorithms=[self.idp.alg]).claims)

    def reason(self, server: str) -> str:
        event = self.audit.wait_for(lambda e: e.server == server and e.method == "tools/call")
        return event.reason


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    upstream = RecordingUpstream()
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    servers = [*UPSTREAMS, "opaque"]
    resources: dict[str, tuple[str, ...]] = {f"{base}/{name}/mcp": SCOPES for name in servers}
    resources.update({upstream_resource(name): SCOPES for name in UPSTREAMS})
    extra = {
        "extension": EXTENSION,
        "exchange": {upstream_resource(name): how for name, how in UPSTREAMS.items()},
        "opaque_resources": [f"{base}/opaque/mcp"],
    }
    with (
        start_oidc_provider(resources, clients=CLIENTS, extra_config=extra) as idp,
        serve_asgi(upstream) as up,
        httpx.Client(timeout=15) as http,
    ):
        config = parse_config(
            {
                "public_base_url": base,
                "identity_providers": [
                    {
                        "name": "idp",
                        "issuer": idp.issuer,
                        "allow_insecure_http": True,
                        "fetch_timeout_seconds": 2,
                        "client": {"client_id": "gateway", "secret": {"env": "GATEWAY_SECRET"}},
                        # cache_seconds 0: a revoked token is refused at once (the test says so)
                        "introspection": {"cache_seconds": 0},
                        # The callers here are client-credentials tokens: machine clients.
                        "machine_clients": servers,
                    }
                ],
                "servers": [
                    {"name": name, "upstream": f"{up.base_url}/mcp", "upstream_auth": exchange_for(name)}
                    for name in UPSTREAMS
                ]
                + [{"name": "opaque", "upstream": f"{up.base_url}/mcp", "upstream_auth": {"type": "none"}}],
                "audit": {"sink": "none"},
            }
        )
        audit = AuditFeed()
        secrets = {"identity_providers[0].client.secret": "gateway-secret"}
        gateway = build_gateway(LoadedConfig(config, secrets), audit=audit)
        with serve_gateway(gateway, sock, config):
            yield Stack(idp, upstream, audit, base, http)


# --- token exchange (RFC 8693) -------------------------------------------------------------


def test_exchange_sends_the_upstream_a_token_of_its_own(stack: Stack) -> None:
    caller = stack.caller_token("ok")
    response = stack.call("ok", caller)
    assert response.status_code == 200, response.text
    sent = stack.upstream_tokens()[-1]
    assert sent != caller  # never the caller's token (MCP: no token passthrough)
    claims = stack.claims_of(sent)  # signed by the IdP, not minted by the gateway
    assert claims["aud"] == upstream_resource("ok")
    assert claims["sub"] == "alice-app"  # still the caller
    assert claims["client_id"] == "gateway"  # obtained by the gateway
    assert claims["scope"] == "tools.read"  # what read_thing needs, nothing more


def test_exchange_asks_only_for_what_the_call_needs(stack: Stack) -> None:
    caller = stack.caller_token("ok", scope="tools.read tools.write")
    assert stack.call("ok", caller, "write_thing").status_code == 200
    assert stack.claims_of(stack.upstream_tokens()[-1])["scope"] == "tools.write"


def test_exchanged_token_is_cached_per_caller_and_never_crosses_users(stack: Stack) -> None:
    alice, bob = stack.caller_token("ok", "alice-app"), stack.caller_token("ok", "bob-app")
    assert stack.call("ok", alice).status_code == 200
    alice_upstream = stack.upstream_tokens()[-1]
    after_alice = stack.exchanges("ok")
    assert stack.call("ok", alice).status_code == 200
    assert stack.upstream_tokens()[-1] == alice_upstream  # cached: the same token again
    assert stack.exchanges("ok") == after_alice
    assert stack.call("ok", bob).status_code == 200
    bob_upstream = stack.upstream_tokens()[-1]
    # Bob's call never rides on Alice's exchanged token (a cache keyed without the subject would).
    assert bob_upstream != alice_upstream
    assert stack.claims_of(bob_upstream)["sub"] == "bob-app"
    assert stack.exchanges("ok") == after_alice + 1


def test_concurrent_calls_share_one_exchange(stack: Stack) -> None:
    caller = stack.caller_token("ok", "bob-app", scope="tools.read tools.write")
    stack.call("ok", caller, "write_thing")  # loads the catalog; caches a tools.write token
    before = stack.exchanges("ok")

    async def burst() -> list[int]:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "drop_thing"}}
        headers = {"authorization": f"Bearer {caller}", "accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(timeout=15) as client:
            answers = await asyncio.gather(
                *(client.post(stack.resource("ok"), json=body, headers=headers) for _ in range(8))
            )
        return [a.status_code for a in answers]

    # drop_thing needs tools.write, like write_thing: the cached token serves all eight.
    assert asyncio.run(burst()) == [200] * 8
    assert stack.exchanges("ok") == before


def test_obo_uses_the_jwt_bearer_grant(stack: Stack) -> None:
    before = stack.exchanges("obo")
    response = stack.call("obo", stack.caller_token("obo"))
    assert response.status_code == 200, stack.reason("obo")
    claims = stack.claims_of(stack.upstream_tokens()[-1])
    assert (claims["aud"], claims["sub"], claims["scope"]) == (
        upstream_resource("obo"),
        "alice-app",
        "tools.read",
    )
    # One for the tool list (no scope needed: "<audience>/.default"), one for the call.
    assert stack.exchanges("obo") == before + 2


def test_client_credentials_sends_the_gateways_own_token(stack: Stack) -> None:
    response = stack.call("cc", stack.caller_token("cc"))
    assert response.status_code == 200, response.text
    claims = stack.claims_of(stack.upstream_tokens()[-1])
    assert (claims["aud"], claims["sub"]) == (upstream_resource("cc"), "gateway")
    event = stack.audit.wait_for(lambda e: e.server == "cc" and e.method == "tools/call")
    assert event.subject == "alice-app"  # the user stays in the audit feed


# --- hostile IdP answers: every one fails closed, the client hears nothing of the IdP --------


@pytest.mark.parametrize(
    ("server", "audited"),
    [
        ("other", "token exchange: the IdP issued a token for another audience"),
        ("broad", "token exchange: the IdP granted scopes beyond those asked for"),
        ("refused", "token exchange refused by the IdP: invalid_grant (HTTP 400)"),
        ("hang", "token exchange: the IdP did not answer within 2 s"),
        ("huge", "token exchange: the IdP sent an answer over 65536 bytes"),
        ("noexp", "token exchange: the IdP's answer has no expires_in"),
    ],
)
def test_idp_misbehaviour_fails_the_call_closed(stack: Stack, server: str, audited: str) -> None:
    seen = len(stack.upstream.calls("tools/call"))
    # Both scopes: where the tool list could not be had either, read_thing needs tools.write.
    caller = stack.caller_token(server, scope="tools.read tools.write")
    response = stack.call(server, caller)
    assert response.status_code == 502
    assert len(stack.upstream.calls("tools/call")) == seen  # nothing went upstream, no fallback
    text = response.text
    assert "the upstream credential could not be obtained" in text
    # The IdP's words (which quote the subject token for `refused`) never reach the client.
    assert caller not in text
    assert "invalid_grant" not in text
    assert "audience" not in text
    reason = stack.reason(server)
    assert reason == audited
    assert caller not in reason


def test_a_failed_exchange_is_not_cached(stack: Stack) -> None:
    caller = stack.caller_token("refused", "bob-app", scope="tools.read tools.write")
    before = stack.exchanges("refused")
    assert stack.call("refused", caller).status_code == 502
    assert stack.call("refused", caller).status_code == 502
    assert stack.exchanges("refused") == before + 2


# --- opaque tokens (RFC 7662) -------------------------------------------------------------


def test_opaque_token_is_accepted_by_introspection(stack: Stack) -> None:
    token = stack.caller_token("opaque")
    assert token.count(".") == 0  # oidc-provider issues opaque tokens for this resource
    response = stack.call("opaque", token)
    assert response.status_code == 200, response.text
    event = stack.audit.wait_for(lambda e: e.server == "opaque" and e.method == "tools/call")
    assert event.subject == "alice-app"  # a client-credentials token: the client is the subject


def test_revoked_opaque_token_is_refused(stack: Stack) -> None:
    token = stack.caller_token("opaque", "bob-app")
    assert stack.call("opaque", token).status_code == 200
    revoked = stack.http.post(
        stack.idp.revocation_endpoint, data={"token": token}, auth=("bob-app", "bob-secret")
    )
    assert revoked.status_code == 200
    response = stack.call("opaque", token)
    assert response.status_code == 401
    assert "not active" in response.headers["www-authenticate"]


def test_opaque_token_for_another_resource_is_refused(stack: Stack) -> None:
    # An opaque token the IdP issued for the gateway's `opaque` server, presented at `ok`:
    # introspection says active, but its audience is not `ok`'s resource.
    token = stack.caller_token("opaque")
    response = stack.call("ok", token)
    assert response.status_code == 401
    assert "audience" in response.headers["www-authenticate"]


def test_unknown_opaque_token_is_refused(stack: Stack) -> None:
    junk = base64.urlsafe_b64encode(orjson.dumps({"not": "a token"})).decode().rstrip("=")
    response = stack.call("opaque", junk)
    assert response.status_code == 401
