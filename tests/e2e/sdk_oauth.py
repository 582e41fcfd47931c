"""The official MCP SDK client running its full OAuth flow headless, with a record of the flow.

``OAuthClientProvider`` does discovery, registration, PKCE and the token exchange itself;
what it needs from its host is a browser. :class:`HeadlessBrowser` is that browser: it
follows the authorization server's redirects with a cookie-keeping client until one points
at the registered redirect URI (nothing listens there, nothing is contacted) and hands the
``code``, ``state`` and ``iss`` (RFC 9207) it found back to the SDK.

Everything the flow did is kept in :class:`FlowRecord`, so a test can assert on it::

    async with oauth_client(url, mode="legacy") as (client, flow):
        await client.list_tools()
    assert flow.authorizations[0].scope == "tools.read"
    assert flow.token_requests[0].resource == url
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, parse_qsl, urljoin, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from pydantic import AnyUrl

__all__ = [
    "REDIRECT_URI",
    "AuthorizationSeen",
    "ChallengeSeen",
    "FlowRecord",
    "HeadlessBrowser",
    "MemoryTokenStorage",
    "TokenRequestSeen",
    "bearer_client",
    "client_metadata",
    "oauth_client",
    "post_tools_list",
    "preregistered",
]

# A loopback redirect URI on a port nobody listens on: the browser stops before using it.
REDIRECT_URI = "http://127.0.0.1:9/callback"
# oidc-provider needs four hops (login, its resume, consent, its resume); a loop is a bug.
MAX_REDIRECTS = 10
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class AuthorizationSeen:
    """One authorization request the SDK sent the user's browser to."""

    url: str
    params: dict[str, str]

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @property
    def scopes(self) -> set[str]:
        return set((self.scope or "").split())

    @property
    def resource(self) -> str | None:
        return self.params.get("resource")


@dataclass(frozen=True)
class TokenRequestSeen:
    """One request the SDK made to a token endpoint (authorization_code or refresh_token)."""

    url: str
    form: dict[str, str]

    @property
    def grant_type(self) -> str | None:
        return self.form.get("grant_type")

    @property
    def resource(self) -> str | None:
        return self.form.get("resource")


@dataclass(frozen=True)
class ChallengeSeen:
    """A 401 or 403 the client got, with its ``WWW-Authenticate`` header."""

    status: int
    url: str
    www_authenticate: str

    def param(self, name: str) -> str | None:
        """One auth-param of the Bearer challenge (quoted-string values, RFC 9110 §11.2)."""
        match = re.search(rf'(?:^|[ ,]){re.escape(name)}="([^"]*)"', self.www_authenticate)
        return match.group(1) if match else None


@dataclass
class FlowRecord:
    """What one OAuth-enabled client did, seen from its HTTP client (the OAuth provider's
    own requests included) and from its browser."""

    authorizations: list[AuthorizationSeen] = field(default_factory=list)
    token_requests: list[TokenRequestSeen] = field(default_factory=list)
    registrations: list[str] = field(default_factory=list)
    challenges: list[ChallengeSeen] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    async def on_request(self, request: httpx2.Request) -> None:
        """An httpx2 request hook."""
        self.requests.append((request.method, str(request.url)))
        if request.method != "POST":
            return
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(request.content.decode("ascii")))
            if form.get("grant_type") in ("authorization_code", "refresh_token"):
                self.token_requests.append(TokenRequestSeen(str(request.url), form))
        elif content_type.startswith("application/json") and b'"redirect_uris"' in request.content:
            self.registrations.append(str(request.url))  # RFC 7591: only a registration has these

    async def on_response(self, response: httpx2.Response) -> None:
        """An httpx2 response hook."""
        if response.status_code in (401, 403):
            header = response.headers.get("www-authenticate", "")
            self.challenges.append(ChallengeSeen(response.status_code, str(response.request.url), header))


class MemoryTokenStorage:
    """The SDK's ``TokenStorage`` protocol, in memory."""

    def __init__(self, client_info: OAuthClientInformationFull | None = None) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info = client_info

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info

    @property
    def access_token(self) -> str:
        assert self.tokens is not None, "no token was issued"
        return self.tokens.access_token


class HeadlessBrowser:
    """The SDK's ``redirect_handler`` and ``callback_handler``: a browser that approves everything.

    The authorization server must approve without a human (the dev IdP's ``auto_approve``,
    oidc-provider's scripted interactions); the browser only follows redirects and keeps
    cookies, as a real one would.
    """

    def __init__(self, record: FlowRecord, redirect_uri: str = REDIRECT_URI) -> None:
        self._record = record
        self._redirect_uri = redirect_uri
        self._http = httpx2.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False)
        self._callback: dict[str, str] | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        params = {key: values[0] for key, values in parse_qs(urlsplit(authorization_url).query).items()}
        self._record.authorizations.append(AuthorizationSeen(authorization_url, params))
        self._callback = await self._follow(authorization_url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        callback, self._callback = self._callback, None
        assert callback is not None, "the callback was asked for before any redirect"
        if "error" in callback:
            raise AssertionError(f"the authorization server refused: {callback}")
        return AuthorizationCodeResult(
            code=callback["code"], state=callback.get("state"), iss=callback.get("iss")
        )

    async def _follow(self, url: str) -> dict[str, str]:
        for _ in range(MAX_REDIRECTS):
            response = await self._http.get(url)
            location = response.headers.get("location")
            if not response.is_redirect or location is None:
                raise AssertionError(
                    f"expected a redirect from {url}, got {response.status_code}: {response.text[:500]}"
                )
            url = urljoin(url, location)
            if url.startswith(self._redirect_uri):
                return dict(parse_qsl(urlsplit(url).query))
        raise AssertionError(f"no redirect to {self._redirect_uri} within {MAX_REDIRECTS} hops")

    async def aclose(self) -> None:
        await self._http.aclose()


def client_metadata(redirect_uri: str = REDIRECT_URI) -> OAuthClientMetadata:
    """What an MCP desktop client registers: a public client with a loopback redirect URI."""
    return OAuthClientMetadata(
        client_name="mcp-bastion e2e",
        redirect_uris=[AnyUrl(redirect_uri)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )


def preregistered(client_id: str, redirect_uri: str = REDIRECT_URI) -> OAuthClientInformationFull:
    """A public client registered out of band: with it in storage the SDK skips registration."""
    return OAuthClientInformationFull(
        client_id=client_id,
        redirect_uris=[AnyUrl(redirect_uri)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )


@contextlib.asynccontextmanager
async def oauth_client(
    server_url: str,
    *,
    mode: str,
    storage: MemoryTokenStorage | None = None,
    record: FlowRecord | None = None,
) -> AsyncIterator[tuple[Client, FlowRecord]]:
    """An SDK ``Client`` connected to ``server_url`` with the SDK's own OAuth provider.

    Pass ``storage`` to keep the tokens and registration after the block (or to start with
    some); ``record`` to share one record across clients.
    """
    record = record if record is not None else FlowRecord()
    browser = HeadlessBrowser(record)
    provider = OAuthClientProvider(
        server_url,
        client_metadata(),
        storage if storage is not None else MemoryTokenStorage(),
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
            async with Client(streamable_http_client(server_url, http_client=http), mode=mode) as client:
                yield client, record
    finally:
        await browser.aclose()


@contextlib.asynccontextmanager
async def bearer_client(server_url: str, token: str, *, mode: str) -> AsyncIterator[Client]:
    """An SDK ``Client`` that presents a fixed bearer token (no OAuth provider)."""
    headers = {"authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=TIMEOUT_S, trust_env=False) as http:
        async with Client(streamable_http_client(server_url, http_client=http), mode=mode) as client:
            yield client


async def post_tools_list(server_url: str, token: str) -> httpx2.Response:
    """One raw ``tools/list`` POST with ``token``: for asserting on the gateway's HTTP answer."""
    async with httpx2.AsyncClient(timeout=TIMEOUT_S, trust_env=False) as http:
        return await http.post(
            server_url,
            headers={
                "authorization": f"Bearer {token}",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2025-11-25",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
