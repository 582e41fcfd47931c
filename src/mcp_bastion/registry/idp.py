"""The published resources in each identity provider's own terms, ready to paste or import.

Field names are the IdPs' own (docs/idp-setup.md cites where each comes from):

- Entra ID: one app registration per resource; a manifest fragment (Microsoft Graph format)
  with `identifierUris` and `api.oauth2PermissionScopes` (`permissionScope` objects).
- Okta: one custom authorization server per resource (`audiences`) and its scopes as the
  authorization server API's scope objects.
- Keycloak: realm client scopes (`ClientScopeRepresentation`), each with an audience mapper
  (`oidc-audience-mapper`) per resource that uses it.
- Auth0: one resource server (API) per resource, as the Management API creates it.
- generic: the resources and their scopes, for any other IdP.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .resources import PublishedResource, PublishedScope

__all__ = ["IDPS", "INTROS", "idp_document"]

# uuid5 namespace of Entra permission ids: the same resource and scope always get the same id,
# so exporting again and pasting over the manifest does not replace (and so break) a scope.
ENTRA_SCOPE_NAMESPACE = uuid.UUID("cf1e08b7-68c3-4c82-b617-51c94d68d7e6")

Render = Callable[[Sequence[PublishedResource]], dict[str, Any]]


def entra_scope_id(resource: str, scope: str) -> str:
    return str(uuid.uuid5(ENTRA_SCOPE_NAMESPACE, f"{resource} {scope}"))


def _entra(resources: Sequence[PublishedResource]) -> dict[str, Any]:
    return {
        "applications": [
            {
                "server": r.server,
                "displayName": r.title,
                "manifest": {
                    "identifierUris": [r.resource],
                    "api": {
                        # v1.0 access tokens carry the App ID URI the client asked for in `aud`
                        # (v2.0 ones carry the application's client id): the gateway requires
                        # `aud` to be this resource URL.
                        "requestedAccessTokenVersion": 1,
                        "oauth2PermissionScopes": [_entra_scope(r, s) for s in r.scopes],
                    },
                },
            }
            for r in resources
        ]
    }


def _entra_scope(resource: PublishedResource, scope: PublishedScope) -> dict[str, Any]:
    name = f"{resource.title}: {scope.value}"
    entry: dict[str, Any] = {
        "id": entra_scope_id(resource.resource, scope.value),
        "value": scope.value,
        "type": "Admin" if scope.admin else "User",
        "isEnabled": True,
        "adminConsentDisplayName": name,
        "adminConsentDescription": scope.description,
    }
    if not scope.admin:
        entry.update(userConsentDisplayName=name, userConsentDescription=scope.description)
    return entry


def _okta(resources: Sequence[PublishedResource]) -> dict[str, Any]:
    return {
        "authorizationServers": [
            {
                "server": r.server,
                "authorizationServer": {
                    "name": r.title,
                    "description": f"MCP server {r.server} behind mcp-bastion",
                    "audiences": [r.resource],
                },
                "scopes": [
                    {
                        "name": s.value,
                        "displayName": f"{r.title}: {s.value}",
                        "description": s.description,
                        "consent": "IMPLICIT",
                        # Published in the authorization server's metadata: MCP clients read
                        # `scopes_supported` there when the resource names none.
                        "metadataPublish": "ALL_CLIENTS",
                        "default": False,
                    }
                    for s in r.scopes
                ],
            }
            for r in resources
        ]
    }


def _keycloak(resources: Sequence[PublishedResource]) -> dict[str, Any]:
    # Keycloak sets `aud` from the requested scopes' audience mappers, not from RFC 8707
    # `resource`: each scope carries one mapper per resource that publishes it.
    scopes: dict[str, dict[str, Any]] = {}
    for r in resources:
        for s in r.scopes:
            entry = scopes.setdefault(s.value, _keycloak_scope(s.value))
            entry["description"] = "; ".join(filter(None, (entry["description"], s.description)))
            entry["protocolMappers"].append(
                {
                    "name": f"audience {r.server}",
                    "protocol": "openid-connect",
                    "protocolMapper": "oidc-audience-mapper",
                    "consentRequired": False,
                    "config": {
                        "included.custom.audience": r.resource,
                        "access.token.claim": "true",
                        "id.token.claim": "false",
                    },
                }
            )
    for entry in scopes.values():
        entry["attributes"]["consent.screen.text"] = entry["description"]
    return {"clientScopes": list(scopes.values())}


def _keycloak_scope(value: str) -> dict[str, Any]:
    return {
        "name": value,
        "description": "",
        "protocol": "openid-connect",
        "attributes": {
            "include.in.token.scope": "true",  # the gateway reads the `scope` claim
            "display.on.consent.screen": "true",
        },
        "protocolMappers": [],
    }


def _auth0(resources: Sequence[PublishedResource]) -> dict[str, Any]:
    return {
        "resourceServers": [
            {
                # Auth0 refuses '<' and '>' in a resource server's name.
                "name": r.title.replace("<", "").replace(">", ""),
                "identifier": r.resource,
                "scopes": [{"value": s.value, "description": s.description} for s in r.scopes],
                # The gateway accepts asymmetric signatures only (RFC 8725 §3.1), and RFC 9068
                # tokens (`typ: at+jwt`, `scope`, `client_id`) without any claim mapping.
                "signing_alg": "RS256",
                "token_dialect": "rfc9068_profile",
            }
            for r in resources
        ]
    }


def _generic(resources: Sequence[PublishedResource]) -> dict[str, Any]:
    return {
        "resources": [
            {
                "server": r.server,
                "name": r.title,
                "resource": r.resource,
                "scopes": [{"scope": s.value, "description": s.description} for s in r.scopes],
            }
            for r in resources
        ]
    }


IDPS: dict[str, Render] = {
    "entra": _entra,
    "okta": _okta,
    "keycloak": _keycloak,
    "auth0": _auth0,
    "generic": _generic,
}

INTROS = {
    "entra": "Entra ID: one app registration per MCP server. In App registrations > Manifest, "
    "merge each `manifest` below; the https identifier URIs need a verified domain of the tenant.",
    "okta": "Okta: one custom authorization server per MCP server (Security > API). Create it "
    "from `authorizationServer`, then each of its `scopes`.",
    "keycloak": "Keycloak: realm client scopes. POST each of `clientScopes` to "
    "/admin/realms/REALM/client-scopes (or put them in a realm import file), then make them "
    "optional client scopes of the MCP clients.",
    "auth0": "Auth0: one API per MCP server. POST each of `resourceServers` to "
    "/api/v2/resource-servers (or create it under Applications > APIs).",
    "generic": "Register each resource (the token audience) with its scopes at your IdP.",
}


def idp_document(idp: str, resources: Sequence[PublishedResource]) -> dict[str, Any]:
    """What to register at `idp`, as JSON-ready data. KeyError for an unknown IdP."""
    return {"idp": idp, **IDPS[idp](resources)}
