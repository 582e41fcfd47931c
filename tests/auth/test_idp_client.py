"""Where the gateway sends a caller's token: only to endpoints of the configured issuer.

A subject token sent to a "token endpoint" someone else chose is a stolen token, so the
endpoints come from the config or from the issuer's own metadata (whose `issuer` must match,
RFC 8414 §3.3), and a metadata document naming an internal address is refused (DM-06).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from mcp_bastion.auth.idp_client import IdpCallError, IdpClient
from mcp_bastion.config.identity import IdpClientConfig
from mcp_bastion.config.model import IdentityProviderConfig, SecretRef

from ..support.servers import RunningServer, read_body, serve_asgi


@dataclass
class Metadata:
    document: dict[str, Any] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        if scope["method"] == "POST":
            self.posts.append(scope["path"])
            body = orjson.dumps({"access_token": "t", "token_type": "Bearer", "expires_in": 60})
        elif scope["path"].startswith("/.well-known/"):
            body = orjson.dumps(self.document)
        else:
            body = b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def idp() -> Iterator[tuple[Metadata, RunningServer]]:
    metadata = Metadata()
    with serve_asgi(metadata) as server:
        yield metadata, server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def client_of(server: RunningServer, http: httpx.AsyncClient) -> IdpClient:
    provider = IdentityProviderConfig(name="idp", issuer=server.base_url, allow_insecure_http=True)
    config = IdpClientConfig(client_id="gw", secret=SecretRef(env="S"))
    return IdpClient(provider, config, http, secret="s", private_key=None, clock=lambda: 0.0)


async def test_the_token_endpoint_comes_from_the_issuers_metadata(
    idp: tuple[Metadata, RunningServer], http: httpx.AsyncClient
) -> None:
    metadata, server = idp
    metadata.document = {"issuer": server.base_url, "token_endpoint": f"{server.base_url}/oauth/token"}
    status, _ = await client_of(server, http).post("token_endpoint", {"grant_type": "client_credentials"})
    assert (status, metadata.posts) == (200, ["/oauth/token"])


@pytest.mark.parametrize(
    ("document", "refusal"),
    [
        (
            {"issuer": "https://attacker.example", "token_endpoint": "https://attacker.example/token"},
            "another issuer",
        ),
        ({"token_endpoint": "http://10.0.0.7/token"}, "non-https"),
        ({"token_endpoint": "https://169.254.169.254/token"}, "non-public address"),
        ({}, "names no token_endpoint"),
    ],
)
async def test_a_hostile_metadata_document_gets_no_token(
    idp: tuple[Metadata, RunningServer], http: httpx.AsyncClient, document: dict[str, Any], refusal: str
) -> None:
    metadata, server = idp
    metadata.document = {"issuer": server.base_url, **document}
    with pytest.raises(IdpCallError, match=refusal):
        await client_of(server, http).post("token_endpoint", {"subject_token": "the caller's token"})
    assert metadata.posts == []  # nothing was sent anywhere
