"""Dynamic Client Registration (RFC 7591 §3), rate-limited per remote address.

Public authorization-code clients get a ``client_id`` only; client_credentials clients
also get a secret, returned once and stored as a digest. When ``users`` restricts who
may be granted what, client_credentials clients must be configured statically: a
self-registered machine client would otherwise bypass those per-user limits.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from ._clients import RegisteredClient
from ._context import IdpContext
from ._events import IdpEvent, error_reason
from ._params import read_capped_body
from ._policy import REGISTRATION_WINDOW_S
from ._responses import json_response, oauth_error_json
from ._rfc7591 import ClientMetadata, parse_client_metadata
from ._secrets import digest, new_secret


async def _read_json_object(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise OAuthError("invalid_client_metadata", "the body must be application/json (RFC 7591 §3.1)")
    body = await read_capped_body(request)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OAuthError("invalid_client_metadata", "the body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise OAuthError("invalid_client_metadata", "the body must be a JSON object")
    return doc


class RegistrationEndpoint:
    """Handler for POST /register."""

    def __init__(self, ctx: IdpContext) -> None:
        self._ctx = ctx

    async def register(self, request: Request) -> Response:
        """POST /register."""
        address = request.client.host if request.client else "unknown"
        if not await self._ctx.registrations.hit(address):
            limited = OAuthError("temporarily_unavailable", "too many registrations; retry later", status=429)
            self._refused(limited)
            return oauth_error_json(limited, {"Retry-After": str(REGISTRATION_WINDOW_S)})
        try:
            metadata = parse_client_metadata(await _read_json_object(request))
            if metadata.machine and self._ctx.settings.users is not None:
                raise OAuthError(
                    "invalid_client_metadata", "client_credentials clients must be configured, not registered"
                )
        except OAuthError as exc:
            self._refused(exc)
            return oauth_error_json(exc)
        body = await self._register(metadata)
        self._ctx.events.record(IdpEvent("registration", True, "dcr", "ok", 201, body["client_id"]))
        return json_response(body, 201)

    def _refused(self, exc: OAuthError) -> None:
        reason = error_reason(exc.error, exc.message)
        self._ctx.events.record(IdpEvent("registration", False, "dcr", reason, exc.status))

    async def _register(self, metadata: ClientMetadata) -> dict[str, Any]:
        client_id = secrets.token_urlsafe(16)
        secret = new_secret() if metadata.machine else None
        client = RegisteredClient(
            client_id=client_id,
            redirect_uris=metadata.redirect_uris,
            grant_types=frozenset(metadata.grant_types),
            client_name=metadata.client_name,
            secret_digest=None if secret is None else digest(secret),
            scopes=metadata.scope if metadata.machine else None,
        )
        await self._ctx.client_store.add(client)
        body = {"client_id": client_id, "client_id_issued_at": int(self._ctx.clock()), **metadata.as_json()}
        if secret is not None:
            body.update(client_secret=secret, client_secret_expires_at=0)
        return body
