"""The official MCP SDK client with a Client ID Metadata Document, through the facade in front of
panva's oidc-provider (no DCR): the SDK's client_id is an https URL on loopback, served with a
certificate from a throwaway CA that the facade trusts by `facade.cimd.ca_file` (verification
stays on), at an address the facade accepts only because `facade.cimd.allow_loopback` says so.
The SDK signs in headlessly, consents at the facade and calls a tool; it never registers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_bastion.app import build_gateway
from mcp_bastion.config import LoadedConfig, parse_config

from ..support.certificates import make_ca, make_leaf
from ..support.gateway import AuditFeed, serve_gateway
from ..support.servers import bind_loopback, serve_asgi
from .demo_stack import running_demo_upstreams
from .oidc_provider.fixture import StaticClient, start_oidc_provider
from .sdk_oauth import REDIRECT_URI, FlowRecord, MemoryTokenStorage, client_metadata
from .test_facade_oidc_provider import FACADE_CLIENT_ID, FACADE_SECRET, ConsentingBrowser

pytestmark = [pytest.mark.e2e, pytest.mark.node]

TIMEOUT_S = 20.0


def _documents() -> Starlette:
    async def document(request: Request) -> Response:
        return JSONResponse(
            {
                "client_id": str(request.url),
                "client_name": "SDK over CIMD",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }
        )

    return Starlette(routes=[Route("/mcp-client.json", document)])


@dataclass(frozen=True)
class Stack:
    base_url: str
    document_url: str
    audit: AuditFeed

    @property
    def facade(self) -> str:
        return f"{self.base_url}/oauth/op"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    pki: Path = tmp_path_factory.mktemp("pki")
    ca = make_ca(pki)
    leaf = make_leaf(ca, pki, "documents")
    sock = bind_loopback()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    facade_client = StaticClient(
        FACADE_CLIENT_ID,
        FACADE_SECRET,
        grant_types=("authorization_code",),
        redirect_uris=(f"{base}/oauth/op/callback",),
    )
    tls = {"ssl_certfile": str(leaf.certificate), "ssl_keyfile": str(leaf.key)}
    with (
        running_demo_upstreams() as upstreams,
        start_oidc_provider({}, clients=(facade_client,), registration=False) as op,
        serve_asgi(_documents(), **tls) as documents,
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
                        "cimd": {"ca_file": str(ca.certificate), "allow_loopback": True},
                    },
                }
            ],
            "servers": [{"name": name, "upstream": url} for name, url in upstreams.items()],
            "audit": {"sink": "none"},
        }
        audit = AuditFeed()
        parsed = parse_config(config)
        secrets = {"identity_providers[0].facade.client_secret": FACADE_SECRET}
        with serve_gateway(build_gateway(LoadedConfig(parsed, secrets), audit=audit), sock, parsed):
            yield Stack(base, f"https://127.0.0.1:{documents.port}/mcp-client.json", audit)


@contextlib.asynccontextmanager
async def sdk_client(server_url: str, document_url: str, record: FlowRecord) -> AsyncIterator[Client]:
    browser = ConsentingBrowser(record)
    provider = OAuthClientProvider(
        server_url,
        client_metadata(),
        MemoryTokenStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
        client_metadata_url=document_url,
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


async def test_the_sdk_client_uses_its_https_metadata_document_at_the_facade(stack: Stack) -> None:
    record = FlowRecord()
    async with sdk_client(f"{stack.base_url}/demo/mcp", stack.document_url, record) as client:
        result = await client.call_tool("echo", {"text": "over CIMD"})
    assert not result.is_error
    assert result.structured_content == {"result": "over CIMD"}
    assert record.registrations == []  # no DCR: the document URL is the client_id
    [authorization] = record.authorizations
    assert authorization.url.startswith(f"{stack.facade}/authorize?")
    echo = stack.audit.wait_for(lambda e: e.method == "tools/call" and e.target == "echo")
    assert echo.decision == "allow"
    assert echo.issuer == stack.facade
    assert echo.client_id == stack.document_url
