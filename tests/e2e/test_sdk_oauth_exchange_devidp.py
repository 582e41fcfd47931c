"""RFC 8693 token exchange end to end: the official MCP SDK client does its OAuth flow against
the demo (``mcp-bastion demo --exchange``); the gateway trades the user's token at the dev IdP
for one addressed to the ``whoami`` upstream, which verifies it and says whom it names.

What is proven at the upstream: the token it received is the development IdP's, its audience
is the upstream itself, ``sub`` is the user, ``act`` the gateway's client (RFC 8693 §4.1), and
the client's own token never arrived there (MCP authorization, "Token Passthrough").
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest

from mcp_bastion.demo.stack import GATEWAY_CLIENT_ID, DemoStack

from .demo_stack import running_exchange_demo_stack
from .sdk_oauth import MemoryTokenStorage, oauth_client

pytestmark = pytest.mark.e2e

MODES = ["legacy", "2026-07-28"]


@pytest.fixture(scope="module")
def exchange_demo() -> Iterator[tuple[DemoStack, list[str]]]:
    with running_exchange_demo_stack() as running:
        yield running


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", MODES)
async def test_the_upstream_receives_an_exchanged_token_naming_user_and_gateway(
    exchange_demo: tuple[DemoStack, list[str]], mode: str
) -> None:
    demo, received = exchange_demo
    received.clear()
    url = demo.server_url("whoami")
    upstream = demo.config.servers[2].upstream
    storage = MemoryTokenStorage()
    async with oauth_client(url, mode=mode, storage=storage) as (client, flow):
        result = await client.call_tool("whoami", {})

    assert not result.is_error, result
    seen = result.structured_content
    assert seen is not None
    assert seen["accepted"] is True, seen  # signature, typ, iss, aud and exp checked upstream
    assert seen["sub"] == "alice"
    assert seen["aud"] == upstream
    assert seen["act"] == {"sub": GATEWAY_CLIENT_ID}
    assert seen["client_id"] == GATEWAY_CLIENT_ID
    assert seen["iss"] == demo.issuer
    assert seen["scope"] == "tools.read"
    client_token = storage.access_token
    assert _claims(client_token)["aud"] == url  # the client's token was for the gateway...
    assert client_token not in str(result.model_dump())  # ...and the tool never echoes a token
    # ...and it never reached the upstream: every request there carried an exchanged token.
    assert received
    assert all(header != f"Bearer {client_token}" for header in received)
    assert all(_claims(header.removeprefix("Bearer "))["aud"] == upstream for header in received)
    assert [t.grant_type for t in flow.token_requests] == ["authorization_code"]


async def test_the_metadata_advertises_the_grant_and_the_client_alone_cannot_use_it(
    exchange_demo: tuple[DemoStack, list[str]],
) -> None:
    import httpx

    demo, _ = exchange_demo
    grant = "urn:ietf:params:oauth:grant-type:token-exchange"
    storage = MemoryTokenStorage()
    async with oauth_client(demo.server_url("whoami"), mode="legacy", storage=storage) as (client, _):
        await client.list_tools()
    async with httpx.AsyncClient(trust_env=False) as http:
        meta = (await http.get(f"{demo.base_url}/.well-known/oauth-authorization-server/idp")).json()
        assert grant in meta["grant_types_supported"]
        # The MCP client is public: it cannot exchange its own token for the upstream's.
        assert storage.client_info is not None
        answer = await http.post(
            f"{demo.issuer}/token",
            data={
                "grant_type": grant,
                "client_id": storage.client_info.client_id or "",
                "subject_token": storage.access_token,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "resource": str(demo.config.servers[2].upstream),
            },
        )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
