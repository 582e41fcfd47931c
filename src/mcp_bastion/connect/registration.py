"""Who we are to the authorization server, in the MCP spec's order of preference.

1. a client registered out of band (``--client-id``, optionally ``--client-secret-file``);
2. a Client ID Metadata Document (``--client-metadata-url``) when the authorization server
   says ``client_id_metadata_document_supported``;
3. Dynamic Client Registration (RFC 7591) at its ``registration_endpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import httpx

from ._errors import ConnectError
from .discovery import AuthServerMetadata
from .tokens import ClientRegistration

__all__ = ["ClientChoice", "register"]

CLIENT_NAME: Final = "mcp-bastion connect"
MAX_REGISTRATION_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class ClientChoice:
    """What the user told us about the client (the CLI's flags)."""

    client_id: str | None = None
    client_secret: str | None = None
    metadata_url: str | None = None


def secret_method(metadata: AuthServerMetadata) -> str:
    if "client_secret_basic" in metadata.token_auth_methods:
        return "client_secret_basic"
    if "client_secret_post" in metadata.token_auth_methods:
        return "client_secret_post"
    raise ConnectError("the authorization server accepts neither client_secret_basic nor client_secret_post")


async def register(
    http: httpx.AsyncClient,
    metadata: AuthServerMetadata,
    choice: ClientChoice,
    redirect_uri: str,
) -> tuple[ClientRegistration, bool]:
    """The client to use, and whether it is bound to ``redirect_uri`` (a DCR registration)."""
    if choice.client_id is not None:
        method = secret_method(metadata) if choice.client_secret is not None else "none"
        return ClientRegistration(choice.client_id, choice.client_secret, method), False
    if choice.metadata_url is not None and metadata.cimd_supported:
        # The URL is the client_id; the AS fetches the document itself (no secret: a public client).
        return ClientRegistration(choice.metadata_url, None, "none"), False
    if metadata.registration_endpoint is None:
        raise ConnectError(
            "the authorization server offers no dynamic client registration"
            + (" and no Client ID Metadata Documents" if not metadata.cimd_supported else "")
            + ": register a client there and pass --client-id"
        )
    return await _dynamic(http, metadata, metadata.registration_endpoint, redirect_uri), True


async def _dynamic(
    http: httpx.AsyncClient, metadata: AuthServerMetadata, endpoint: str, redirect_uri: str
) -> ClientRegistration:
    methods = metadata.token_auth_methods
    wanted = "none" if "none" in methods else secret_method(metadata)
    request = {
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": wanted,
        # MCP 2026-07-28 client-registration (SEP-837): a loopback redirect makes us a native app.
        "application_type": "native",
    }
    try:
        response = await http.post(endpoint, json=request, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ConnectError(f"client registration at {endpoint} failed: {type(exc).__name__}") from None
    try:
        body = response.json() if len(response.content) <= MAX_REGISTRATION_BYTES else None
    except ValueError:
        body = None
    if response.status_code not in (200, 201) or not isinstance(body, dict):
        raise ConnectError(f"client registration at {endpoint} was refused ({response.status_code})")
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if not isinstance(client_id, str) or not client_id:
        raise ConnectError(f"client registration at {endpoint} returned no client_id")
    secret = secret if isinstance(secret, str) else None
    method = body.get("token_endpoint_auth_method")
    if not isinstance(method, str):
        method = wanted if secret is None or wanted != "none" else "client_secret_basic"  # RFC 7591 §2
    return ClientRegistration(client_id, secret, method, redirect_uri)
