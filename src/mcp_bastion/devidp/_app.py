"""Assembling the IdP: keys, stores, endpoints, and the Starlette app that routes them."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..errors import OAuthError
from ._authorization_request import PendingAuthorization
from ._authorize import AuthorizationEndpoint
from ._cimd import ClientMetadataDocuments
from ._clients import ClientLookup
from ._context import IdpContext
from ._endpoints import OAUTH_METADATA, OIDC_METADATA, IdpLocation
from ._events import IdpEvents, NoEvents
from ._keys import SigningKey, load_signing_key
from ._login import Login
from ._policy import CIMD_TIMEOUT_S, MAX_REGISTERED_CLIENTS, REGISTRATION_WINDOW_S
from ._registration import RegistrationEndpoint
from ._responses import json_response, oauth_error_json
from ._rfc7009 import RevocationEndpoint
from ._rfc7523 import JWT_BEARER, AssertionVerifier
from ._rfc8414 import oauth_metadata, oidc_metadata
from ._rfc8693 import TOKEN_EXCHANGE, TokenExchange
from ._rfc9068 import AccessTokenIssuer
from ._settings import DevIdpSettings
from ._stores import (
    IdpStores,
    MemoryClientStore,
    MemoryCodeStore,
    MemoryPendingStore,
    MemoryRateLimiter,
    MemoryRefreshStore,
    StateUnavailable,
)
from ._token import TokenEndpoint

Clock = Callable[[], float]


class DevIdp:
    """A running development IdP: its ASGI app, the paths it serves, and test helpers.

    ``app`` handles full request paths; a router dispatches to it on ``path_prefixes``.
    When the app is mounted under another app its lifespan does not run: call
    :meth:`aclose` at shutdown to close the metadata-document HTTP client.
    """

    def __init__(
        self,
        settings: DevIdpSettings,
        key: SigningKey,
        clock: Clock,
        login: Login | None = None,
        assertions: AssertionVerifier | None = None,
        stores: IdpStores | None = None,
        events: IdpEvents | None = None,
    ) -> None:
        self.settings = settings
        self._key = key
        self._login = login
        self._assertions = assertions
        self._location = IdpLocation(settings.issuer)
        self.path_prefixes: tuple[str, ...] = self._location.path_prefixes
        # One client for the IdP's lifetime; never reads proxy settings from the
        # environment, which would route metadata fetches around the SSRF checks.
        self._http = httpx.AsyncClient(
            timeout=CIMD_TIMEOUT_S,
            follow_redirects=False,
            trust_env=False,
            verify=_tls(settings.cimd_ca_file),
        )
        self._ctx = _context(settings, self._location, key, clock, self._http, stores, events or NoEvents())
        self.app: ASGIApp = self._starlette()

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 §5) relying parties verify access tokens with."""
        return {"keys": [self._key.public_jwk()]}

    def issue_access_token(
        self,
        *,
        subject: str,
        resource: str,
        scopes: Sequence[str],
        client_id: str = "test-client",
        ttl: int | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """An access token exactly as the token endpoint would issue it, for tests and fixtures.

        No policy is applied (any resource, any scope), and ``extra_claims`` may override
        standard claims, so negative tests can mint expired or mis-addressed tokens.
        """
        return self._ctx.access_tokens.issue(
            subject=subject,
            client_id=client_id,
            resource=resource,
            scopes=tuple(scopes),
            ttl=self.settings.access_token_ttl if ttl is None else ttl,
            extra_claims=extra_claims,
        )

    async def aclose(self) -> None:
        """Release the HTTP client used for Client ID Metadata Documents."""
        await self._http.aclose()

    def _starlette(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        return Starlette(
            routes=self._routes(),
            lifespan=lifespan,
            exception_handlers={StateUnavailable: _state_unavailable},
        )

    def _routes(self) -> list[Route]:
        location, ctx = self._location, self._ctx
        scopes = self.settings.scopes_supported
        extra_grants: tuple[str, ...] = (JWT_BEARER,) if self._assertions is not None else ()
        exchange = TokenExchange(ctx, self._key)
        if exchange.enabled:
            extra_grants += (TOKEN_EXCHANGE,)
        oauth = oauth_metadata(location, scopes, extra_grants)
        oidc = oidc_metadata(location, scopes, self.settings.signing_alg, extra_grants)
        authorize = AuthorizationEndpoint(ctx, self._login)
        routes = [
            Route(location.path("authorize"), authorize.authorize, methods=["GET"]),
            Route(location.path("consent"), authorize.consent, methods=["POST"]),
            *_public(location.path("token"), TokenEndpoint(ctx, self._assertions, exchange).token, "POST"),
            *_public(location.path("revoke"), RevocationEndpoint(ctx).revoke, "POST"),
            *_public(location.path("register"), RegistrationEndpoint(ctx).register, "POST"),
            *_public(location.path("jwks"), _StaticJson(self.jwks()).get, "GET"),
        ]
        if self._login is not None:
            routes.append(Route(location.path("callback"), authorize.callback, methods=["GET"]))
        for path in location.metadata_paths(OAUTH_METADATA):
            routes += _public(path, _StaticJson(oauth).get, "GET")
        for path in location.metadata_paths(OIDC_METADATA):
            routes += _public(path, _StaticJson(oidc).get, "GET")
        return routes


def build_devidp(
    settings: DevIdpSettings,
    *,
    signing_key: Any | None = None,
    clock: Clock = time.time,
    login: Login | None = None,
    assertions: AssertionVerifier | None = None,
    stores: IdpStores | None = None,
    events: IdpEvents | None = None,
) -> DevIdp:
    """Build the development IdP. ``signing_key`` (a joserfc key, a cryptography private key
    or PEM) must suit ``settings.signing_alg``; without one a fresh key is generated.

    ``login`` replaces the consent page's username field with a login step of its own (the
    authorization facade signs users in at a real IdP); the same core does the rest.
    ``assertions`` enables the JWT bearer grant (RFC 7523) with that verifier (ID-JAG).
    ``stores`` replaces the in-memory state (the facade shares it between replicas in Redis).
    ``events`` hears every sign-in, consent, token, revocation and registration (an audit feed)."""
    key = load_signing_key(settings.signing_alg, signing_key)
    return DevIdp(settings, key, clock, login, assertions, stores, events)


def memory_stores(settings: DevIdpSettings, clock: Clock) -> IdpStores:
    """The in-process state: one process's memory, gone at restart."""
    return IdpStores(
        clients=MemoryClientStore(MAX_REGISTERED_CLIENTS),
        codes=MemoryCodeStore(clock),
        refresh_tokens=MemoryRefreshStore(clock),
        pending=MemoryPendingStore[PendingAuthorization](clock),
        registrations=MemoryRateLimiter(clock, settings.registration_limit_per_minute, REGISTRATION_WINDOW_S),
    )


def _context(
    settings: DevIdpSettings,
    location: IdpLocation,
    key: SigningKey,
    clock: Clock,
    http: httpx.AsyncClient,
    stores: IdpStores | None,
    events: IdpEvents,
) -> IdpContext:
    stores = stores or memory_stores(settings, clock)
    documents = ClientMetadataDocuments(
        http,
        allow_loopback_http=settings.allow_http_cimd,
        allow_loopback=settings.allow_loopback_cimd,
        clock=clock,
    )
    return IdpContext(
        settings=settings,
        location=location,
        clock=clock,
        clients=ClientLookup(settings.clients, stores.clients, documents, events),
        client_store=stores.clients,
        codes=stores.codes,
        refresh_tokens=stores.refresh_tokens,
        pending=stores.pending,
        registrations=stores.registrations,
        access_tokens=AccessTokenIssuer(key, settings.issuer, clock),
        events=events,
    )


def _tls(ca_file: str | None) -> ssl.SSLContext | bool:
    """Verification for metadata-document fetches: the system's CAs, or only ``ca_file``'s.
    Never off: a private PKI is trusted by naming its CA, not by skipping the check."""
    if ca_file is None:
        return True
    return ssl.create_default_context(cafile=ca_file)


async def _state_unavailable(request: Request, exc: Exception) -> Response:
    # Fail closed: without its state the IdP cannot tell a replayed code or refresh token
    # from a fresh one, so it decides nothing; the next request tries the store again.
    error = OAuthError(
        "temporarily_unavailable", "the authorization server's state is unavailable", status=503
    )
    return oauth_error_json(error, {"Retry-After": "1"})


class _StaticJson:
    """A GET endpoint answering one precomputed JSON document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document

    async def get(self, request: Request) -> Response:
        return json_response(self._document)


async def _preflight(request: Request) -> Response:
    return Response(status_code=204)


def _public(path: str, endpoint: Callable[[Request], Any], method: str) -> list[Route]:
    """Routes for an endpoint browser-based clients call cross-origin (metadata, token,
    registration, JWKS). No cookies are involved, so ``*`` without credentials is safe;
    the authorization and consent endpoints get no CORS at all."""
    cors = [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=[method],
            allow_headers=["Authorization", "Content-Type", "MCP-Protocol-Version"],
            max_age=600,
        )
    ]
    return [
        Route(path, endpoint, methods=[method], middleware=cors),
        Route(path, _preflight, methods=["OPTIONS"], middleware=cors),
    ]
