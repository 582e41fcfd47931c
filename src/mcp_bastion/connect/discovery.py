"""Discovery: the server's protected resource metadata, then its authorization server's metadata.

RFC 9728 (PRM): the URL from the 401's ``resource_metadata`` parameter, else the
well-known URIs the MCP spec lists (path-inserted, then the root); the document's
``resource`` must identify the server we were asked to reach (§3.3), or an attacker's
server could borrow another resource's authorization server.

RFC 8414 / OpenID Connect Discovery with the MCP path rules: for an issuer with a path,
``/.well-known/oauth-authorization-server/<path>``, ``/.well-known/openid-configuration/<path>``,
``<path>/.well-known/openid-configuration``; without one, the two root documents. The
document's ``issuer`` must equal the issuer we asked about, character for character (§3.3).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from ._errors import ConnectError
from ._urls import require_web_url, require_within_reach, resource_covers

__all__ = [
    "AuthServerMetadata",
    "Challenge",
    "ProtectedResource",
    "discover_auth_server",
    "discover_resource",
    "parse_challenge",
]

log = logging.getLogger(__name__)

MAX_METADATA_BYTES: Final = 256 * 1024
_PARAM: Final = re.compile(r'([A-Za-z0-9_\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]+)')


@dataclass(frozen=True)
class Challenge:
    """The Bearer (or DPoP, RFC 9449 §7.1) challenge of a 401 or 403 (RFC 6750 §3, RFC 9728 §5.1)."""

    status: int
    error: str | None = None
    scope: str | None = None
    resource_metadata: str | None = None


def parse_challenge(status: int, header: str | None) -> Challenge:
    """The auth-params of the ``Bearer`` challenge in ``header``, else of its ``DPoP`` one."""
    if not header:
        return Challenge(status)
    start, scheme = header.lower().find("bearer"), "bearer"
    if start < 0:
        start, scheme = header.lower().find("dpop"), "dpop"
    if start < 0:
        return Challenge(status)
    params: dict[str, str] = {}
    for name, value in _PARAM.findall(header[start + len(scheme) :]):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(name.lower(), value)
    return Challenge(status, params.get("error"), params.get("scope"), params.get("resource_metadata"))


@dataclass(frozen=True)
class ProtectedResource:
    resource: str
    authorization_servers: tuple[str, ...]
    scopes_supported: tuple[str, ...] | None


@dataclass(frozen=True)
class AuthServerMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    scopes_supported: tuple[str, ...] | None
    code_challenge_methods: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    cimd_supported: bool
    iss_parameter_supported: bool
    # RFC 9449 §5.1: present when the AS issues DPoP-bound tokens; None when not listed.
    dpop_algs: tuple[str, ...] | None = None


async def _get_json(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """The JSON object at ``url``; None on 4xx (try the next candidate), error otherwise."""
    try:
        response = await http.get(url, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ConnectError(f"could not fetch {url}: {type(exc).__name__}") from None
    if 400 <= response.status_code < 500:
        return None
    if response.status_code != 200 or len(response.content) > MAX_METADATA_BYTES:
        raise ConnectError(f"{url} answered {response.status_code} instead of a metadata document")
    try:
        document = response.json()
    except ValueError:
        raise ConnectError(f"{url} did not answer JSON") from None
    if not isinstance(document, dict):
        raise ConnectError(f"{url} did not answer a JSON object")
    return document


def _resource_metadata_urls(server_url: str, challenge: Challenge) -> list[str]:
    if challenge.resource_metadata:
        return [
            require_within_reach(
                challenge.resource_metadata, server_url, "resource_metadata in WWW-Authenticate"
            )
        ]
    parts = urlsplit(server_url)
    path = parts.path.rstrip("/")
    wk = "/.well-known/oauth-protected-resource"
    paths = [wk + path, wk] if path else [wk]
    return [urlunsplit((parts.scheme, parts.netloc, p, "", "")) for p in paths]


def _strings(value: object, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConnectError(f"{what} must be a list of strings")
    return tuple(value)


async def discover_resource(
    http: httpx.AsyncClient, server_url: str, challenge: Challenge
) -> ProtectedResource | None:
    """The server's PRM, or None when it publishes none (a 2025-03-26 server)."""
    for url in _resource_metadata_urls(server_url, challenge):
        document = await _get_json(http, url)
        if document is None:
            continue
        resource = document.get("resource")
        if not isinstance(resource, str) or not resource_covers(resource, server_url):
            # RFC 9728 §3.3: a mismatch MUST NOT be used; another resource's metadata could
            # send our login (and the token's audience) to a server of the attacker's choice.
            raise ConnectError(
                f"the protected resource metadata at {url} names resource {str(resource)[:200]!r}, "
                f"not {server_url}: refusing it (RFC 9728 §3.3)"
            )
        servers = _strings(document.get("authorization_servers"), "authorization_servers") or ()
        return ProtectedResource(
            resource, servers, _strings(document.get("scopes_supported"), "scopes_supported")
        )
    return None


def _metadata_urls(issuer: str) -> list[str]:
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")

    def at(p: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, p, "", ""))

    if path:
        return [
            at("/.well-known/oauth-authorization-server" + path),
            at("/.well-known/openid-configuration" + path),
            at(path + "/.well-known/openid-configuration"),
        ]
    return [at("/.well-known/oauth-authorization-server"), at("/.well-known/openid-configuration")]


async def discover_auth_server(http: httpx.AsyncClient, issuer: str) -> AuthServerMetadata | None:
    """The metadata of ``issuer``, checked; None when none of the well-known URIs has any."""
    require_web_url(issuer, "the authorization server's issuer")
    for url in _metadata_urls(issuer):
        document = await _get_json(http, url)
        if document is not None:
            return _metadata(document, issuer, url)
    return None


def _metadata(document: dict[str, Any], issuer: str, url: str) -> AuthServerMetadata:
    if document.get("issuer") != issuer:
        # RFC 8414 §3.3 (and OIDC Discovery §4.3): identical, no normalization; a mismatch
        # is an authorization server impersonating another (mix-up).
        raise ConnectError(
            f"the metadata at {url} is for issuer {str(document.get('issuer'))[:200]!r}, not {issuer}"
        )
    registration = document.get("registration_endpoint")
    return AuthServerMetadata(
        issuer=issuer,
        authorization_endpoint=require_web_url(
            document.get("authorization_endpoint"), "authorization_endpoint"
        ),
        token_endpoint=require_web_url(document.get("token_endpoint"), "token_endpoint"),
        registration_endpoint=(
            require_web_url(registration, "registration_endpoint") if registration is not None else None
        ),
        scopes_supported=_strings(document.get("scopes_supported"), "scopes_supported"),
        code_challenge_methods=_strings(
            document.get("code_challenge_methods_supported"), "code_challenge_methods_supported"
        )
        or (),
        token_auth_methods=_strings(
            document.get("token_endpoint_auth_methods_supported"), "token_endpoint_auth_methods_supported"
        )
        or ("client_secret_basic",),  # RFC 8414 §2: the default when omitted
        cimd_supported=document.get("client_id_metadata_document_supported") is True,
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True,
        dpop_algs=_strings(
            document.get("dpop_signing_alg_values_supported"), "dpop_signing_alg_values_supported"
        ),
    )


def legacy_metadata(server_url: str) -> AuthServerMetadata:
    """2025-03-26 servers without any metadata: the default endpoints at the server's origin."""
    parts = urlsplit(server_url)
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return AuthServerMetadata(
        issuer=origin,
        authorization_endpoint=origin + "/authorize",
        token_endpoint=origin + "/token",
        registration_endpoint=origin + "/register",
        scopes_supported=None,
        code_challenge_methods=("S256",),  # that revision made PKCE S256 mandatory
        token_auth_methods=("client_secret_basic", "client_secret_post", "none"),
        cimd_supported=False,
        iss_parameter_supported=False,
    )
