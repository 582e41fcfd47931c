"""Signing the user in at the real IdP: the facade's :class:`~mcp_bastion.devidp.Login`.

The facade is one confidential client at the IdP (registered by hand: the IdP has no DCR).
``begin`` sends the browser to the IdP's authorization endpoint with PKCE (S256), a fresh
``state`` and ``nonce``, and a browser-binding cookie; ``finish`` (the facade's
``callback``) checks that cookie and ``state`` (RFC 9700 §4.7: login CSRF), the ``iss``
parameter when the IdP sends one (RFC 9207: mix-up), exchanges the code with the client
secret and the PKCE verifier, and takes the subject from the verified ID token.

Everything about the IdP comes from configuration and the IdP's own discovery document,
fetched with the gateway's SSRF-guarded fetcher; nothing comes from the MCP client. The
IdP's error messages are logged as a summary and never relayed to the client.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..auth.fetch import check_fetch_target, check_fetch_url, fetch_json
from ..auth.keys import RemoteKeySet
from ..config.model import IdentityProviderConfig
from ..devidp import AuthorizationRequest, LoginResult
from ..devidp._login import UpstreamToken
from ..devidp._params import parse_query
from ..devidp._policy import PENDING_TTL_S
from ..devidp._responses import redirect, redirect_url
from ..devidp._seal import seal, unseal
from ..devidp._secrets import digest, digest_matches, new_secret
from ..errors import BastionError, OAuthError
from ._codec import request_bytes, request_from
from ._id_token import verified_subject
from ._jws import JwtRejected
from ._passthrough import fitting_token
from ._state import LoginStore

log = logging.getLogger("mcp_bastion.facade")

#: The IdP's token response is a few KB at most; a larger one is refused, not buffered.
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
LOGIN_COOKIE_PREFIX = "bastion_facade_login_"


@dataclass(frozen=True)
class UpstreamClient:
    """The facade's registration at the IdP, and where the IdP sends the browser back."""

    provider: IdentityProviderConfig
    #: The facade's own issuer, sent as ``iss`` with errors (RFC 9207).
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    callback_url: str
    callback_path: str


@dataclass(frozen=True)
class _Endpoints:
    authorization: str
    token: str
    jwks: str


@dataclass(frozen=True)
class _PendingLogin:
    request: AuthorizationRequest
    verifier: str = field(repr=False)
    nonce: str = field(repr=False)
    browser_digest: str


class UpstreamLogin:
    """The OIDC authorization code flow with PKCE against one configured IdP."""

    def __init__(
        self,
        client: UpstreamClient,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
        logins: LoginStore,
        pass_through: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._client = client
        #: ``issue: idp_when_audience_fits``: the resources (URL → scopes) to ask the IdP for.
        self._pass_through = pass_through
        self._http = http
        self._clock = clock
        self._pending = logins
        self._endpoints: _Endpoints | None = None
        provider = client.provider
        self._keys = RemoteKeySet(
            self._load_keys,
            clock=clock,
            ttl=provider.jwks_ttl_seconds,
            cooldown=provider.jwks_refetch_cooldown_seconds,
        )

    @property
    def keys(self) -> RemoteKeySet:
        """The IdP's signing keys (discovered ``jwks_uri``, or the configured one)."""
        return self._keys

    async def begin(self, auth: AuthorizationRequest, request: Request) -> Response:
        """Send the browser to the IdP; the request waits here under a fresh ``state``."""
        try:
            endpoints = await self._discover()
        except BastionError as exc:
            log.warning("facade: IdP %s metadata unavailable: %s", self._client.provider.name, exc.message)
            # The client's redirect URI is verified: tell it, in OAuth's words.
            unavailable = {
                "error": "temporarily_unavailable",
                "error_description": "the identity provider is unavailable",
                "state": auth.state,
                "iss": self._client.issuer,
            }
            return redirect(redirect_url(auth.redirect_uri, unavailable), 302)
        state, verifier, nonce, browser = new_secret(), new_secret(), new_secret(), new_secret()
        pending = _PendingLogin(auth, verifier, nonce, digest(browser))
        # Stored under the state's digest, sealed with the state: the store never holds the
        # PKCE verifier or the nonce in the clear (a Redis shared by replicas, a dump of it).
        sealed = seal(state, _LOGIN_SEAL, _pending_bytes(pending))
        await self._pending.save(digest(state), sealed, self._clock() + PENDING_TTL_S)
        params = {
            "response_type": "code",
            "client_id": self._client.client_id,
            "redirect_uri": self._client.callback_url,
            "scope": " ".join(self._client.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        }
        if self._pass_through is not None:
            # RFC 8707: a token for the MCP server itself, with the scopes asked of us, so that
            # the IdP's token can be passed through when its audience fits.
            wanted = auth.requested_scopes or self._pass_through.get(auth.resource, ())
            params["scope"] = " ".join(dict.fromkeys((*self._client.scopes, *wanted)))
            params["resource"] = auth.resource
        response = redirect(redirect_url(endpoints.authorization, params), 302)
        response.set_cookie(
            LOGIN_COOKIE_PREFIX + digest(state)[:16],
            browser,
            max_age=PENDING_TTL_S,
            path=self._client.callback_path,
            secure=self._client.callback_url.startswith("https://"),
            httponly=True,
            # Lax, not Strict: the IdP's redirect back is a cross-site top-level GET.
            samesite="lax",
        )
        return response

    async def finish(self, request: Request) -> LoginResult:
        """The IdP sent the browser back: who signed in, for which pending request."""
        params = parse_query(request)
        state = params.get("state")
        if state is None:
            raise OAuthError("invalid_request", "the sign-in answer has no state")
        sealed = await self._pending.take(digest(state))  # single use, valid or not
        opened = None if sealed is None else unseal(state, _LOGIN_SEAL, sealed)
        pending = None if opened is None else _pending_from(opened)
        if pending is None:
            raise OAuthError("invalid_request", "unknown or expired sign-in")
        browser = request.cookies.get(LOGIN_COOKIE_PREFIX + digest(state)[:16])
        if browser is None or not digest_matches(browser, pending.browser_digest):
            # RFC 9700 §4.7: the answer arrived in a browser that did not start this sign-in.
            raise OAuthError("access_denied", "this sign-in was started in another browser", status=403)
        auth = pending.request
        issuer = params.get("iss")
        if issuer is not None and issuer != self._client.provider.issuer:
            return LoginResult(
                auth, error=OAuthError("access_denied", "the sign-in answer names another issuer")
            )
        code = params.get("code")
        if code is None:
            # The `error` code only, and only if it looks like one: the query is the browser's.
            error = params.get("error") or ""
            shown = error if re.fullmatch(r"[a-z_]{1,64}", error) else "unrecognized"
            log.info("facade: IdP %s refused the sign-in (%s)", self._client.provider.name, shown)
            return LoginResult(
                auth, error=OAuthError("access_denied", "the identity provider refused the sign-in")
            )
        try:
            subject, body = await self._redeem(code, pending)
        except BastionError as exc:
            log.warning("facade: sign-in at IdP %s failed: %s", self._client.provider.name, exc.message)
            return LoginResult(auth, error=OAuthError("access_denied", "the sign-in could not be completed"))
        return LoginResult(auth, subject=subject, upstream=await self._fitting(body, auth.resource))

    async def _fitting(self, body: dict[str, Any], resource: str) -> UpstreamToken | None:
        if self._pass_through is None:
            return None
        provider = self._client.provider
        try:
            return await fitting_token(body, resource, provider, self._keys, self._clock())
        except JwtRejected as exc:
            log.info("facade: IdP %s token not passed through: %s", provider.name, exc.message)
            return None

    async def _redeem(self, code: str, pending: _PendingLogin) -> tuple[str, dict[str, Any]]:
        endpoints = await self._discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._client.callback_url,
            "code_verifier": pending.verifier,
        }
        body = await self._post_token(endpoints.token, form)
        subject = await verified_subject(
            body.get("id_token"),
            self._client.provider,
            self._client.client_id,
            pending.nonce,
            self._keys,
            self._clock(),
        )
        return subject, body

    async def _post_token(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        provider = self._client.provider
        auth = httpx.BasicAuth(
            _form_encoded(self._client.client_id), _form_encoded(self._client.client_secret)
        )
        try:
            async with self._http.stream(
                "POST",
                url,
                data=form,
                auth=auth,
                headers={"accept": "application/json"},
                timeout=provider.fetch_timeout_seconds,
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_TOKEN_RESPONSE_BYTES:
                        raise BastionError("the IdP's token response is too large")
                status = response.status_code
        except httpx.HTTPError as exc:
            raise BastionError(f"cannot reach the IdP's token endpoint ({type(exc).__name__})") from None
        if status != 200:
            raise BastionError(f"the IdP's token endpoint answered HTTP {status}")
        try:
            document = httpx.Response(200, content=bytes(body)).json()
        except ValueError:
            raise BastionError("the IdP's token response is not JSON") from None
        if not isinstance(document, dict):
            raise BastionError("the IdP's token response is not a JSON object")
        return document

    async def _discover(self) -> _Endpoints:
        if self._endpoints is not None:
            return self._endpoints
        provider = self._client.provider
        document = await self._fetch(f"{provider.issuer}/.well-known/openid-configuration")
        if not isinstance(document, dict) or document.get("issuer") != provider.issuer:
            raise BastionError("the IdP's discovery document names another issuer")  # RFC 8414 §3.3
        urls = [document.get(name) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")]
        checked: list[str] = []
        for url in urls:
            if not isinstance(url, str):
                raise BastionError("the IdP's discovery document lacks an endpoint")
            check_fetch_url(url, allow_insecure_http=provider.allow_insecure_http)
            checked.append(url)
        # The token endpoint and the keys are fetched by the gateway: the addresses they resolve
        # to are checked as the issuer's are (DM-06), before either is ever used.
        for url in checked[1:]:
            await check_fetch_target(
                url,
                timeout=provider.fetch_timeout_seconds,
                allow_insecure_http=provider.allow_insecure_http,
                allow_private_network=provider.allow_private_network,
            )
        self._endpoints = _Endpoints(*checked)
        return self._endpoints

    async def _load_keys(self) -> Any:
        endpoints = await self._discover()
        jwks = self._client.provider.jwks_uri or endpoints.jwks
        return await self._fetch(jwks)

    async def _fetch(self, url: str) -> Any:
        provider = self._client.provider
        return await fetch_json(
            self._http,
            url,
            timeout=provider.fetch_timeout_seconds,
            allow_insecure_http=provider.allow_insecure_http,
            allow_private_network=provider.allow_private_network,
        )


_LOGIN_SEAL = "pending sign-in"


def _pending_bytes(pending: _PendingLogin) -> bytes:
    return orjson.dumps(
        {
            "request": orjson.Fragment(request_bytes(pending.request)),
            "verifier": pending.verifier,
            "nonce": pending.nonce,
            "browser_digest": pending.browser_digest,
        }
    )


def _pending_from(raw: bytes) -> _PendingLogin:
    data = orjson.loads(raw)
    return _PendingLogin(
        request_from(data["request"]), data["verifier"], data["nonce"], data["browser_digest"]
    )


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _form_encoded(value: str) -> str:
    # RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding.
    return quote_plus(value)
