"""The authorization endpoint and the consent form it shows (RFC 6749 §4.1, RFC 9207).

GET /authorize validates the request (see :mod:`._authorization_request` for why in two
phases), then either approves at once (``auto_approve``) or shows the consent page. POST
/consent checks the CSRF token (form field *and* cookie, both bound to the pending
request), then answers the client with a 303 redirect carrying ``code``, ``state`` and
``iss``. Consent is never remembered: every authorization asks again, per client (the
MCP "confused deputy" defence).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from ._authorization_request import (
    AuthorizationRequest,
    PendingAuthorization,
    checked_redirect_uri,
    validate_request,
)
from ._context import IdpContext
from ._events import IdpEvent, error_reason
from ._login import Login, UpstreamToken
from ._pages import ConsentView, consent_page, error_page
from ._params import Params, parse_query, read_form
from ._policy import PENDING_TTL_S
from ._responses import html_page, redirect, redirect_url
from ._scopes import grant
from ._seal import seal_upstream, unseal_upstream
from ._secrets import digest, digest_matches, new_secret
from ._settings import is_username
from ._stores import CodeGrant

CSRF_COOKIE_PREFIX = "devidp_csrf_"


def _error_page(exc: OAuthError) -> Response:
    return html_page(error_page(exc.error, exc.message), exc.status)


def _csrf_ok(pending: PendingAuthorization, form_token: str | None, cookie_token: str | None) -> bool:
    if form_token is None or cookie_token is None:
        return False
    return hmac.compare_digest(form_token, cookie_token) and digest_matches(form_token, pending.csrf_digest)


class AuthorizationEndpoint:
    """Handlers for GET /authorize and POST /consent."""

    def __init__(self, ctx: IdpContext, login: Login | None = None) -> None:
        self._ctx = ctx
        self._login = login

    async def authorize(self, request: Request) -> Response:
        """GET /authorize."""
        try:
            params = parse_query(request)
            client = await self._ctx.clients.for_authorization(params.get("client_id"))
            redirect_uri = checked_redirect_uri(client, params)
        except OAuthError as exc:
            return _error_page(exc)  # never redirect to an unverified URI (AS-01)
        try:
            auth = validate_request(params, client, redirect_uri, self._ctx.settings.resources)
        except OAuthError as exc:
            return self._redirect_error(redirect_uri, params.get("state"), exc, 302)
        if self._login is not None:
            return await self._login.begin(auth, request)
        if self._ctx.settings.auto_approve is not None:
            return await self._approve(auth, self._ctx.settings.auto_approve, 302)
        return await self._ask_consent(auth)

    async def callback(self, request: Request) -> Response:
        """GET /callback: the login step's answer; then the consent page, as the subject."""
        assert self._login is not None  # the route exists only with a login step
        try:
            result = await self._login.finish(request)
        except OAuthError as exc:
            self._record("sign_in", False, error_reason(exc.error, exc.message), exc.status)
            return _error_page(exc)
        auth = result.request
        if result.subject is None:
            error = result.error or OAuthError("access_denied", "the sign-in failed")
            reason = error_reason(error.error, error.message)
            self._record("sign_in", False, reason, 303, auth.client_id, None, auth.resource)
            return self._redirect_error(auth.redirect_uri, auth.state, error, 303)
        self._record("sign_in", True, "ok", 200, auth.client_id, result.subject, auth.resource)
        # Consent is asked even though the user just signed in upstream: many MCP clients
        # share the facade's one client at the IdP, so the IdP's consent (if any) says
        # nothing about *this* client (MCP security best practices, confused deputy).
        return await self._ask_consent(auth, result.subject, result.upstream)

    async def consent(self, request: Request) -> Response:
        """POST /consent: the user's answer on the consent page."""
        try:
            form = await read_form(request)
        except OAuthError as exc:
            return _error_page(exc)
        request_id = form.get("request_id") or ""
        pending = await self._ctx.pending.get(request_id)
        if pending is None:
            return _error_page(OAuthError("invalid_request", "unknown or expired authorization request"))
        csrf_token = form.get("csrf_token")
        if csrf_token is None or not _csrf_ok(pending, csrf_token, request.cookies.get(_cookie(request_id))):
            # RFC 9700 §4.12 (CSRF on the consent decision): refuse, do not redirect.
            auth = pending.request
            reason = "the consent form failed its CSRF check"
            self._record("consent", False, reason, 403, auth.client_id, pending.subject, auth.resource)
            return _error_page(
                OAuthError("access_denied", "the consent form failed its CSRF check", status=403)
            )
        return await self._decide(request_id, pending, form, csrf_token)

    async def _decide(
        self, request_id: str, pending: PendingAuthorization, form: Params, csrf_token: str
    ) -> Response:
        decision, username = form.get("decision"), form.get("username") or ""
        if pending.subject is not None:
            username = pending.subject  # signed in by the login step; the form cannot change it
        elif decision == "approve" and not self._user_known(username):
            return self._consent_page(pending.request, request_id, csrf_token, "Unknown user.", status=400)
        if decision not in ("approve", "deny"):
            return _error_page(OAuthError("invalid_request", "decision must be approve or deny"))
        if await self._ctx.pending.take(request_id) is None:
            return _error_page(OAuthError("invalid_request", "this request was already answered"))
        auth = pending.request
        if decision == "deny":
            denied = OAuthError("access_denied", "the user denied the request")
            response = self._redirect_error(auth.redirect_uri, auth.state, denied, 303)
            self._record(
                "consent",
                False,
                "the user denied the request",
                303,
                auth.client_id,
                username if self._user_known(username) else None,  # a denial checks no name
                auth.resource,
            )
        else:
            upstream = None
            if pending.sealed_upstream is not None:
                upstream = unseal_upstream(csrf_token, pending.sealed_upstream)
            response = await self._approve(auth, username, 303, upstream)  # 303: the browser must GET
            self._record(
                "consent", True, "the user approved the request", 303, auth.client_id, username, auth.resource
            )
        response.delete_cookie(_cookie(request_id), path=self._ctx.location.path("consent"))
        return response

    def _record(
        self,
        kind: Literal["sign_in", "consent"],
        allowed: bool,
        reason: str,
        status: int,
        client_id: str | None = None,
        subject: str | None = None,
        resource: str | None = None,
    ) -> None:
        endpoint = "callback" if kind == "sign_in" else "consent"
        self._ctx.events.record(
            IdpEvent(kind, allowed, endpoint, reason, status, client_id, subject, resource)
        )

    def _user_known(self, username: str) -> bool:
        users = self._ctx.settings.users
        return is_username(username) and (users is None or username in users)

    async def _ask_consent(
        self, auth: AuthorizationRequest, subject: str | None = None, upstream: UpstreamToken | None = None
    ) -> Response:
        request_id, csrf_token = secrets.token_urlsafe(16), new_secret()
        sealed = None if upstream is None else seal_upstream(csrf_token, upstream)
        pending = PendingAuthorization(auth, digest(csrf_token), subject, sealed)
        await self._ctx.pending.save(request_id, pending, self._ctx.clock() + PENDING_TTL_S)
        response = self._consent_page(auth, request_id, csrf_token, subject=subject)
        response.set_cookie(
            _cookie(request_id),
            csrf_token,
            max_age=PENDING_TTL_S,
            path=self._ctx.location.path("consent"),
            secure=self._ctx.settings.issuer.startswith("https://"),
            httponly=True,
            samesite="strict",
        )
        return response

    def _consent_page(
        self,
        auth: AuthorizationRequest,
        request_id: str,
        csrf_token: str,
        message: str | None = None,
        *,
        status: int = 200,
        subject: str | None = None,
    ) -> Response:
        scopes = auth.requested_scopes or self._ctx.settings.resources[auth.resource]
        view = ConsentView(
            action=self._ctx.location.path("consent"),
            request_id=request_id,
            csrf_token=csrf_token,
            client_id=auth.client_id,
            client_name=auth.client_name,
            redirect_uri=auth.redirect_uri,
            resource=auth.resource,
            scopes=scopes,
            message=message,
            subject=subject,
            note=self._ctx.settings.consent_note,
        )
        return html_page(consent_page(view), status)

    async def _approve(
        self, auth: AuthorizationRequest, username: str, status: int, upstream: UpstreamToken | None = None
    ) -> Response:
        users = self._ctx.settings.users
        try:
            scopes = grant(
                auth.requested_scopes,
                self._ctx.settings.resources[auth.resource],
                None if users is None else users.get(username, ()),
            )
        except OAuthError as exc:
            return self._redirect_error(auth.redirect_uri, auth.state, exc, status)
        code = new_secret()
        code_grant = _code_grant(auth, username, scopes)
        if upstream is not None:
            code_grant = replace(code_grant, sealed_upstream=seal_upstream(code, upstream))
        await self._ctx.codes.save(digest(code), code_grant, self._expiry())
        params = {"code": code, "state": auth.state, "iss": self._ctx.settings.issuer}
        return redirect(redirect_url(auth.redirect_uri, params), status)

    def _expiry(self) -> float:
        return self._ctx.clock() + self._ctx.settings.code_ttl

    def _redirect_error(self, redirect_uri: str, state: str | None, exc: OAuthError, status: int) -> Response:
        params = {
            "error": exc.error,
            "error_description": exc.message,
            "state": state,
            "iss": self._ctx.settings.issuer,  # RFC 9207 §2: errors carry iss too
        }
        return redirect(redirect_url(redirect_uri, params), status)


def _cookie(request_id: str) -> str:
    return f"{CSRF_COOKIE_PREFIX}{request_id}"


def _code_grant(auth: AuthorizationRequest, subject: str, scopes: tuple[str, ...]) -> CodeGrant:
    return CodeGrant(
        client_id=auth.client_id,
        redirect_uri=auth.redirect_uri,
        resource=auth.resource,
        scopes=scopes,
        subject=subject,
        code_challenge=auth.code_challenge,
        family_id=secrets.token_urlsafe(16),
        refresh_allowed=auth.refresh_allowed,
    )
