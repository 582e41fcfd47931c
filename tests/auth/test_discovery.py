"""Authorization-server metadata discovery: probe order, issuer check (DM-05), fetch rules (DM-06)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from mcp_bastion.auth.discovery import discover_jwks_uri, metadata_urls
from mcp_bastion.errors import KeySourceError


@pytest.mark.parametrize(
    ("issuer", "urls"),
    [
        (
            "https://idp.example",
            (
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration",
            ),
        ),
        (
            "https://idp.example/",
            (
                "https://idp.example/.well-known/oauth-authorization-server",
                "https://idp.example/.well-known/openid-configuration",
            ),
        ),
        (
            "https://idp.example:8443",
            (
                "https://idp.example:8443/.well-known/oauth-authorization-server",
                "https://idp.example:8443/.well-known/openid-configuration",
            ),
        ),
        # With a path: RFC 8414 path insertion, OIDC path insertion, then OIDC path appending.
        (
            "https://idp.example/tenant1",
            (
                "https://idp.example/.well-known/oauth-authorization-server/tenant1",
                "https://idp.example/.well-known/openid-configuration/tenant1",
                "https://idp.example/tenant1/.well-known/openid-configuration",
            ),
        ),
        (
            "https://idp.example/realms/acme/",
            (
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme",
                "https://idp.example/.well-known/openid-configuration/realms/acme",
                "https://idp.example/realms/acme/.well-known/openid-configuration",
            ),
        ),
    ],
)
def test_metadata_urls_order(issuer: str, urls: tuple[str, ...]) -> None:
    assert metadata_urls(issuer) == urls


def _client(documents: dict[str, object], seen: list[str]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if str(request.url) in documents:
            return httpx.Response(200, content=orjson.dumps(documents[str(request.url)]))
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_discovery_falls_through_to_the_first_document_found() -> None:
    seen: list[str] = []
    issuer = "https://idp.example/tenant1"
    documents = {
        "https://idp.example/.well-known/openid-configuration/tenant1": {
            "issuer": issuer,
            "jwks_uri": "https://idp.example/tenant1/keys",
        }
    }
    async with _client(documents, seen) as http:
        jwks_uri = await discover_jwks_uri(http, issuer, timeout=5, allow_insecure_http=False)
    assert jwks_uri == "https://idp.example/tenant1/keys"
    assert seen == list(metadata_urls(issuer)[:2])


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (
            {"issuer": "https://idp.example/", "jwks_uri": "https://idp.example/keys"},
            "differs from the configured",
        ),
        (
            {"issuer": "https://evil.example", "jwks_uri": "https://idp.example/keys"},
            "differs from the configured",
        ),
        ({"jwks_uri": "https://idp.example/keys"}, "differs from the configured"),
        ({"issuer": "https://idp.example"}, "has no `jwks_uri`"),
        ({"issuer": "https://idp.example", "jwks_uri": 5}, "has no `jwks_uri`"),
        ({"issuer": "https://idp.example", "jwks_uri": "http://169.254.169.254/keys"}, "non-https URL"),
        ({"issuer": "https://idp.example", "jwks_uri": "file:///etc/passwd"}, "refusing"),
        (["issuer"], "not a JSON object"),
    ],
)
async def test_dm05_dm06_bad_metadata_refused(document: object, fragment: str) -> None:
    seen: list[str] = []
    documents = {"https://idp.example/.well-known/oauth-authorization-server": document}
    async with _client(documents, seen) as http:
        with pytest.raises(KeySourceError) as caught:
            await discover_jwks_uri(http, "https://idp.example", timeout=5, allow_insecure_http=False)
    assert fragment in caught.value.message
    assert caught.value.status == 503


async def test_no_metadata_anywhere_reports_the_last_failure() -> None:
    seen: list[str] = []
    async with _client({}, seen) as http:
        with pytest.raises(KeySourceError, match="answered HTTP 404"):
            await discover_jwks_uri(http, "https://idp.example", timeout=5, allow_insecure_http=False)
    assert seen == list(metadata_urls("https://idp.example"))
