"""The OAuth client work for one remote MCP server: one token, renewed as the server demands.

``Authorizer.token()`` is what goes in the next request; ``on_unauthorized`` (a 401) and
``on_insufficient_scope`` (a 403 ``insufficient_scope``) renew it: a stored or refreshed
token first, a browser login when nothing else works. One lock: concurrent requests that
hit the same 401 share one login. With a :class:`~.grants.Grant` (``--grant``), the grant
takes the browser login's place and its tokens stay in memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ._errors import ConnectError
from ._urls import require_web_url, require_within_reach
from .discovery import (
    AuthServerMetadata,
    Challenge,
    ProtectedResource,
    discover_auth_server,
    discover_resource,
    legacy_metadata,
)
from .dpop import ALGORITHM, DpopKey, Prover
from .grants import Grant
from .keyring_store import open_store
from .login import CallbackListener, Pkce, authorization_url, check_callback, new_state, open_in_browser
from .registration import ClientChoice, register
from .tokens import DPOP, ClientRegistration, StoredTokens, exchange, refresh

__all__ = ["AuthOptions", "Authorizer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthOptions:
    store_path: Path
    headless: bool = False
    client: ClientChoice = field(default_factory=ClientChoice)
    scope: str | None = None
    login_timeout_s: float = 300.0
    grant: Grant | None = None  # None: the authorization code flow in the user's browser
    token_store: str = "file"  # noqa: S105 (a store kind: keyring_store.STORE_MODES)


class Authorizer:
    def __init__(
        self,
        http: httpx.AsyncClient,
        server_url: str,
        options: AuthOptions,
        *,
        opener: Callable[[str], bool] | None = None,
    ) -> None:
        self._http = http
        self._server_url = server_url
        self._options = options
        self._store = open_store(options.token_store, options.store_path)
        self._opener = opener
        self._lock = asyncio.Lock()
        self._metadata: AuthServerMetadata | None = None
        self._resource = server_url
        self._prm: ProtectedResource | None = None
        self._tokens: StoredTokens | None = None
        self._prover: Prover | None = None

    async def token(self) -> str | None:
        """The access token for the next request (refreshed first when it is about to expire)."""
        async with self._lock:
            tokens = self._tokens
            if tokens is not None and not tokens.fresh(time.time()) and tokens.refresh_token:
                await self._try_refresh(tokens)
            elif tokens is not None and not tokens.fresh(time.time()) and self._options.grant is not None:
                await self._login(tokens.scope)  # a machine grant renews before expiry
            return self._tokens.access_token if self._tokens is not None else None

    def authorization(self, token: str, method: str, url: str) -> dict[str, str]:
        """The headers that present ``token`` on a ``method`` request to ``url``.

        A DPoP-bound token goes with the ``DPoP`` scheme and a fresh proof carrying its
        hash (RFC 9449 §7.1); anything else is a Bearer token (RFC 6750 §2.1).
        """
        tokens, prover = self._tokens, self._prover
        if tokens is not None and tokens.access_token == token and tokens.token_type == DPOP:
            if prover is None:
                raise ConnectError("a DPoP-bound token is held but its key is not: log in again")
            return {"authorization": "DPoP " + token, "dpop": prover.proof(method, url, token)}
        return {"authorization": "Bearer " + token}

    def note_nonce(self, url: str, headers: httpx.Headers) -> bool:
        """Remember a resource server's ``DPoP-Nonce`` (RFC 9449 §9); whether it is a new one."""
        return self._prover is not None and self._prover.note_nonce(url, headers)

    async def on_unauthorized(self, challenge: Challenge, failed: str | None) -> None:
        async with self._lock:
            if self._tokens is not None and self._tokens.access_token != failed:
                return  # another request renewed it meanwhile
            await self._discover(challenge)
            if self._tokens is None and self._options.grant is None:
                stored = self._store.tokens(self._issuer, self._resource)
                usable = stored is not None and (stored.token_type != DPOP or self._prover is not None)
                if stored is not None and usable and stored.access_token != failed:
                    self._tokens = stored
                    if stored.fresh(time.time()) or (
                        stored.refresh_token and await self._try_refresh(stored)
                    ):
                        return
            elif (
                self._tokens is not None
                and self._tokens.refresh_token
                and await self._try_refresh(self._tokens)
            ):
                return
            await self._login(self._initial_scope(challenge))

    async def on_insufficient_scope(self, challenge: Challenge, failed: str | None) -> None:
        """Step-up (MCP authorization §Scope Challenge Handling): the union of held and asked scopes."""
        async with self._lock:
            if self._tokens is not None and self._tokens.access_token != failed:
                return
            await self._discover(challenge)
            held = (self._tokens.scope if self._tokens is not None else None) or self._initial_scope(
                challenge
            )
            wanted = _union(held, challenge.scope)
            log.info("the server needs more scope; authorizing again for %s", wanted or "(no scope)")
            await self._login(wanted)

    @property
    def _issuer(self) -> str:
        assert self._metadata is not None
        return self._metadata.issuer

    async def _discover(self, challenge: Challenge) -> None:
        if self._metadata is not None and not challenge.resource_metadata:
            return
        prm = await discover_resource(self._http, self._server_url, challenge)
        if prm is not None:
            if not prm.authorization_servers:
                raise ConnectError("the server's protected resource metadata names no authorization server")
            issuer = require_within_reach(
                prm.authorization_servers[0], self._server_url, "the authorization server"
            )
            metadata = await discover_auth_server(self._http, issuer)
            if metadata is None:
                raise ConnectError(f"the authorization server {issuer} publishes no metadata (RFC 8414)")
            self._prm, self._resource = prm, prm.resource
        else:
            # A 2025-03-26 server: its origin is the authorization server, maybe without metadata.
            metadata = legacy_metadata(self._server_url)
            metadata = await discover_auth_server(self._http, metadata.issuer) or metadata
        self._metadata = metadata
        self._prover = self._dpop_prover(metadata)

    def _dpop_prover(self, metadata: AuthServerMetadata) -> Prover | None:
        """DPoP when the authorization server offers it with our algorithm (RFC 9449 §5.1).

        The key is the store entry's, made once: a refreshed token is bound to the same key
        as the one it replaces, and each (issuer, resource) has its own key, so two servers
        cannot tell by the key's thumbprint that one user holds both tokens.
        """
        if metadata.dpop_algs is None:
            return None
        if ALGORITHM not in metadata.dpop_algs:
            log.info("the authorization server does not accept ES256 DPoP proofs; using Bearer tokens")
            return None
        if self._prover is not None and self._prover.entry == (self._issuer, self._resource):
            return self._prover  # keeps the nonces it has seen
        key = self._store.dpop_key(self._issuer, self._resource)
        if key is None:
            key = DpopKey.generate()
            self._store.save(self._issuer, self._resource, dpop_key=key)
        prover = Prover(key)
        prover.entry = (self._issuer, self._resource)
        return prover

    def _initial_scope(self, challenge: Challenge) -> str | None:
        """MCP §Scope Selection Strategy: the challenge's scope, else the PRM's scopes_supported."""
        scope = challenge.scope
        if scope is None and self._prm is not None and self._prm.scopes_supported:
            scope = " ".join(self._prm.scopes_supported)
        scope = _union(self._options.scope, scope)
        assert self._metadata is not None
        supported = self._metadata.scopes_supported or ()
        if "offline_access" in supported and self._options.grant is None:
            # MCP 2026-07-28 §Refresh Tokens: MAY ask for it when the AS lists it.
            scope = _union(scope, "offline_access")
        return scope

    async def _try_refresh(self, tokens: StoredTokens) -> bool:
        client = self._store.client(self._issuer, self._resource) if self._metadata else None
        if self._metadata is None or client is None or tokens.refresh_token is None:
            return False
        try:
            fresh = await refresh(self._http, self._metadata, client, tokens, self._resource, self._prover)
        except ConnectError as exc:
            log.info("token refresh failed (%s); a new login is needed", exc.message)
            self._tokens = None
            self._store.forget_tokens(self._issuer, self._resource)
            return False
        self._keep(fresh, client)
        return True

    def _keep(self, tokens: StoredTokens, client: ClientRegistration) -> None:
        self._tokens = tokens
        self._store.save(self._issuer, self._resource, tokens=tokens, client=client)

    async def _client(self, listener: CallbackListener) -> ClientRegistration:
        assert self._metadata is not None
        choice = self._options.client
        if choice.metadata_url is not None:
            require_web_url(choice.metadata_url, "--client-metadata-url")
        stored = self._store.client(self._issuer, self._resource)
        # A DCR registration is bound to its redirect URI; reuse it only on the same port.
        if (
            choice.client_id is None
            and stored is not None
            and stored.redirect_uri in (None, listener.redirect_uri)
        ):
            return stored
        client, _bound = await register(self._http, self._metadata, choice, listener.redirect_uri)
        return client

    async def _login(self, scope: str | None) -> None:
        assert self._metadata is not None
        if self._options.grant is not None:
            grant = self._options.grant
            self._tokens = await grant.obtain(self._http, self._metadata, self._resource, scope)
            log.info("authorized at %s (%s grant)", self._issuer, grant.name)
            return
        stored = self._store.client(self._issuer, self._resource)
        listener = CallbackListener()
        port = _port_of(stored.redirect_uri) if stored is not None and stored.redirect_uri else 0
        await listener.start(port)
        try:
            client = await self._client(listener)
            pkce, state = Pkce.new(), new_state()
            url = authorization_url(
                self._metadata,
                client_id=client.client_id,
                redirect_uri=listener.redirect_uri,
                pkce=pkce,
                state=state,
                resource=self._resource,
                scope=scope,
            )
            if self._opener is not None:
                open_in_browser(url, headless=self._options.headless, opener=self._opener)
            else:
                open_in_browser(url, headless=self._options.headless)
            params = await listener.wait(self._options.login_timeout_s)
        finally:
            await listener.close()
        code = check_callback(params, state=state, metadata=self._metadata)
        tokens = await exchange(
            self._http,
            self._metadata,
            client,
            code=code,
            verifier=pkce.verifier,
            redirect_uri=listener.redirect_uri,
            resource=self._resource,
            scope=scope,
            prover=self._prover,
        )
        self._keep(tokens, client)
        log.info("authorized at %s", self._issuer)


def _union(a: str | None, b: str | None) -> str | None:
    scopes: list[str] = []
    for part in ((a or "") + " " + (b or "")).split():
        if part not in scopes:
            scopes.append(part)
    return " ".join(scopes) or None


def _port_of(uri: str) -> int:
    try:
        return urlsplit(uri).port or 0
    except ValueError:
        return 0
