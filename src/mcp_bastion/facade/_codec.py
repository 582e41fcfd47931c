"""The facade's state as JSON, for a store outside the process: no secret in any of it."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ..devidp._authorization_request import AuthorizationRequest, PendingAuthorization
from ..devidp._clients import RegisteredClient
from ..devidp._stores import CodeGrant, RefreshGrant


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _unb64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


def _dump(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)


def _tuple(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _request_dict(auth: AuthorizationRequest) -> dict[str, Any]:
    return {
        "client_id": auth.client_id,
        "client_name": auth.client_name,
        "redirect_uri": auth.redirect_uri,
        "state": auth.state,
        "resource": auth.resource,
        "requested_scopes": auth.requested_scopes,
        "code_challenge": auth.code_challenge,
        "refresh_allowed": auth.refresh_allowed,
    }


def request_from(data: dict[str, Any]) -> AuthorizationRequest:
    return AuthorizationRequest(**{**data, "requested_scopes": _tuple(data["requested_scopes"])})


def request_bytes(auth: AuthorizationRequest) -> bytes:
    return _dump(_request_dict(auth))


def code_from(raw: bytes | str) -> CodeGrant:
    data = orjson.loads(raw)
    sealed = _unb64(data["sealed_upstream"])
    return CodeGrant(**{**data, "scopes": tuple(data["scopes"]), "sealed_upstream": sealed})


def code_bytes(grant: CodeGrant) -> bytes:
    return _dump(
        {
            "client_id": grant.client_id,
            "redirect_uri": grant.redirect_uri,
            "resource": grant.resource,
            "scopes": grant.scopes,
            "subject": grant.subject,
            "code_challenge": grant.code_challenge,
            "family_id": grant.family_id,
            "refresh_allowed": grant.refresh_allowed,
            "sealed_upstream": _b64(grant.sealed_upstream),
        }
    )


def refresh_from(raw: bytes | str) -> RefreshGrant:
    data = orjson.loads(raw)
    return RefreshGrant(**{**data, "scopes": tuple(data["scopes"])})


def refresh_bytes(grant: RefreshGrant) -> bytes:
    return _dump(
        {
            "family_id": grant.family_id,
            "client_id": grant.client_id,
            "subject": grant.subject,
            "resource": grant.resource,
            "scopes": grant.scopes,
        }
    )


def client_bytes(client: RegisteredClient) -> bytes:
    return _dump(
        {
            "client_id": client.client_id,
            "redirect_uris": client.redirect_uris,
            "grant_types": sorted(client.grant_types),
            "client_name": client.client_name,
            "secret_digest": client.secret_digest,
            "scopes": client.scopes,
            "resources": client.resources,
        }
    )


def client_from(raw: bytes | str) -> RegisteredClient:
    data = orjson.loads(raw)
    return RegisteredClient(
        client_id=data["client_id"],
        redirect_uris=tuple(data["redirect_uris"]),
        grant_types=frozenset(data["grant_types"]),
        client_name=data["client_name"],
        secret_digest=data["secret_digest"],
        scopes=_tuple(data["scopes"]),
        resources=_tuple(data["resources"]),
    )


def pending_bytes(pending: PendingAuthorization) -> bytes:
    return _dump(
        {
            "request": _request_dict(pending.request),
            "csrf_digest": pending.csrf_digest,
            "subject": pending.subject,
            "sealed_upstream": _b64(pending.sealed_upstream),
        }
    )


def pending_from(raw: bytes | str) -> PendingAuthorization:
    data = orjson.loads(raw)
    sealed = _unb64(data["sealed_upstream"])
    return PendingAuthorization(request_from(data["request"]), data["csrf_digest"], data["subject"], sealed)
