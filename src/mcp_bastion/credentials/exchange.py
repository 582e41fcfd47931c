"""Upstream credentials from the IdP: token exchange, on-behalf-of, client credentials.

- `exchange`: RFC 8693 at the IdP's token endpoint; the caller's token is the
  `subject_token`, the upstream the `resource` (RFC 8707) and optional `audience`.
- `obo`: Entra ID's on-behalf-of, the RFC 7523 jwt-bearer grant with
  `requested_token_use=on_behalf_of` and the caller's token as `assertion`; scopes name the
  upstream (`api://…/.default`), no `resource`.
- `client_credentials`: the gateway's own token (RFC 6749 §4.4); the user stays in the audit
  feed, the upstream sees the gateway.

Scopes asked for are what the call needs, which the Authorize stage has already proven the
caller holds (directly or through the scope hierarchy), mapped to the IdP's names.

Tokens are cached by (subject, client, issuer, upstream, scopes), never shared between
users, kept until `refresh_margin_seconds` before they expire and never past the caller's
own token; concurrent calls for the same key wait on one request (single flight). Every
failure fails the call (502): there is no fallback to the caller's token or a static
secret. The IdP's answer is checked: a bearer access token, an `expires_in`, no scope
beyond what was asked, and, when the token is a JWT, an `aud` naming the upstream.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
from collections.abc import Callable
from typing import Any

import orjson

from ..auth.idp_client import IdpCallError, IdpClient, summarize
from ..auth.principal import Principal
from ..cache import BoundedCache
from ..config.identity import ExchangeConfig
from ..errors import UpstreamError

__all__ = ["CallerTokenCredential", "ExchangedCredential", "IdpCredentialError", "carrying_token"]

CACHE_SIZE = 10_000
MAX_LIFETIME_SECONDS = 86_400  # an `expires_in` beyond a day is not believed
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (RFC 8693 §3 URI)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 (RFC 8693 §3 URI)
_GRANT = {
    "exchange": "urn:ietf:params:oauth:grant-type:token-exchange",
    "obo": "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "client_credentials": "client_credentials",
}
_CLIENT_MESSAGE = "the upstream credential could not be obtained"

CacheKey = tuple[str, str, str, str, tuple[str, ...]]


class IdpCredentialError(UpstreamError):
    """The IdP gave no usable token: the client hears only that; the audit feed hears why."""

    def __init__(self, summary: str) -> None:
        super().__init__(_CLIENT_MESSAGE)
        self.audit_reason = summary


class CallerTokenCredential:
    """A credential obtained with the caller's own token: the authenticate stage hands the
    token over on the principal (`carrying_token`) for routes with such a credential only."""


def carrying_token(principal: Principal, token: str) -> Principal:
    return dataclasses.replace(principal, subject_token=token)


class ExchangedCredential(CallerTokenCredential):
    """A token for one upstream, obtained from the IdP by one of three grants."""

    def __init__(
        self,
        grant: str,
        idp: IdpClient,
        config: ExchangeConfig,
        upstream: str,
        *,
        clock: Callable[[], float],
    ) -> None:
        if grant not in _GRANT:
            raise ValueError(f"unknown grant {grant!r}")
        self._grant = grant
        self._idp = idp
        self._config = config
        self._resource = config.resource or upstream
        self._clock = clock
        self._cache: BoundedCache[CacheKey, tuple[bytes, float]] = BoundedCache(CACHE_SIZE)
        self._pending: dict[CacheKey, asyncio.Future[tuple[bytes, float]]] = {}  # single flight

    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        wanted = self._scopes(scopes)
        machine = self._grant == "client_credentials"
        # The gateway's own token is the same for every caller; any other is the caller's alone.
        key: CacheKey = (
            ("", "", "", self._resource, wanted)
            if machine
            else (principal.subject, principal.client_id or "", principal.issuer, self._resource, wanted)
        )
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now < hit[1]:
            return (b"authorization", hit[0])
        flight = self._pending.get(key)
        if flight is None:
            # A task of its own: a caller that leaves (client disconnect) does not cancel the
            # exchange the others wait on.
            flight = asyncio.ensure_future(self._flight(key, principal, wanted, machine))
            self._pending[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        value, _ = await asyncio.shield(flight)
        return (b"authorization", value)

    async def _flight(
        self, key: CacheKey, principal: Principal, wanted: tuple[str, ...], machine: bool
    ) -> tuple[bytes, float]:
        token = None if machine else principal.subject_token
        if not machine and token is None:
            # Nothing to exchange: refuse, never fall back to another credential.
            raise IdpCredentialError("the caller's token was not handed to the exchange")
        value, until = await self._obtain(token, wanted)
        if not machine:
            until = min(until, principal.expires_at)  # never outlives the caller's token
        self._cache.put(key, (value, until))
        return value, until

    def _landed(self, key: CacheKey, flight: asyncio.Future[tuple[bytes, float]]) -> None:
        self._pending.pop(key, None)
        if not flight.cancelled():
            flight.exception()  # retrieved: a failure nobody waits for any more is not logged as lost

    def _scopes(self, needed: tuple[str, ...]) -> tuple[str, ...]:
        mapping = self._config.scopes
        mapped = [s for scope in needed for s in mapping.get(scope, (scope,))]
        if not mapped:
            mapped = list(self._config.default_scopes)
            if not mapped and self._grant == "obo" and self._config.audience:
                mapped = [f"{self._config.audience}/.default"]  # Entra ID: the upstream's own scopes
        return tuple(sorted(set(mapped)))

    async def _obtain(self, subject_token: str | None, scopes: tuple[str, ...]) -> tuple[bytes, float]:
        form = self._form(subject_token, scopes)
        what = {
            "exchange": "token exchange",
            "obo": "on-behalf-of",
            "client_credentials": "client credentials",
        }[self._grant]
        started = self._clock()
        try:
            status, answer = await self._idp.post("token_endpoint", form)
        except IdpCallError as exc:
            raise IdpCredentialError(f"{what}: {exc.message}") from None
        if status != 200:
            raise IdpCredentialError(summarize(status, answer, what).message)
        return self._accept(answer, scopes, started, what)

    def _form(self, subject_token: str | None, scopes: tuple[str, ...]) -> dict[str, str]:
        config = self._config
        form = {"grant_type": _GRANT[self._grant]}
        if self._grant == "exchange":
            assert subject_token is not None
            form["subject_token"] = subject_token
            form["subject_token_type"] = ACCESS_TOKEN_TYPE
            form["requested_token_type"] = ACCESS_TOKEN_TYPE
        elif self._grant == "obo":
            assert subject_token is not None
            form["assertion"] = subject_token
            form["requested_token_use"] = "on_behalf_of"  # noqa: S105 (Entra ID parameter, not a secret)
        if self._grant != "obo":
            form["resource"] = self._resource
        if config.audience and self._grant != "obo":
            form["audience"] = config.audience
        if scopes:
            form["scope"] = " ".join(scopes)
        return form

    def _askable(self, asked: tuple[str, ...]) -> set[str]:
        """What a granted `scope` may list: the scopes asked for and, for on-behalf-of, the
        same without the `<audience>/` prefix (Entra ID may answer either form)."""
        prefix = f"{self._config.audience}/" if self._grant == "obo" and self._config.audience else None
        if prefix is None:
            return set(asked)
        return set(asked) | {s.removeprefix(prefix) for s in asked if s.startswith(prefix)}

    def _accept(
        self, answer: dict[str, Any], asked: tuple[str, ...], started: float, what: str
    ) -> tuple[bytes, float]:
        token = answer.get("access_token")
        if not isinstance(token, str) or not token or len(token) > 16_384 or not token.isascii():
            raise IdpCredentialError(f"{what}: the IdP's answer has no usable access_token")
        if any(c in token for c in "\r\n\x00 "):
            raise IdpCredentialError(f"{what}: the IdP's access_token is not a header value")
        token_type = answer.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise IdpCredentialError(f"{what}: the IdP issued no bearer token")
        issued = answer.get("issued_token_type")
        if self._grant == "exchange" and issued not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise IdpCredentialError(f"{what}: the IdP issued another kind of token")
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
            raise IdpCredentialError(f"{what}: the IdP's answer has no expires_in")
        granted = answer.get("scope")
        if isinstance(granted, str) and asked and not set(granted.split()) <= self._askable(asked):
            # More than was asked is more than the caller may have: refuse it whole.
            raise IdpCredentialError(f"{what}: the IdP granted scopes beyond those asked for")
        audience = _jwt_audience(token)
        expected = self._config.audience or self._resource
        if audience is not None and expected not in audience:
            raise IdpCredentialError(f"{what}: the IdP issued a token for another audience")
        until = started + min(float(lifetime), MAX_LIFETIME_SECONDS) - self._config.refresh_margin_seconds
        return b"Bearer " + token.encode("ascii"), until


def _jwt_audience(token: str) -> frozenset[str] | None:
    """The `aud` of a token shaped like a JWT (read, not verified: the IdP just sent it over
    an authenticated channel; the upstream verifies it); None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict):
        return None
    aud = claims.get("aud")
    if isinstance(aud, str):
        return frozenset((aud,))
    if isinstance(aud, list):
        return frozenset(a for a in aud if isinstance(a, str))
    return frozenset()  # a JWT without `aud` names no audience, so not this upstream's
