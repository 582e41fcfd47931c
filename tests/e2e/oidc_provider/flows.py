"""Browserless OAuth flows against the oidc-provider fixture.

The provider's interaction endpoint approves everything, so an authorization request
completes by following redirects with a client that keeps cookies (oidc-provider ties
the interaction to ``_interaction`` / ``_interaction_resume`` cookies). The redirect
URI is never contacted: the chain stops at the first ``Location`` that points to it,
as in the MCP SDK's ``redirect_handler`` (see TESTING.md).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx

__all__ = ["AuthorizationResponse", "Pkce", "authorization_url", "follow_to_redirect_uri"]

# login prompt, consent prompt and their two resumes: four hops; a loop is a bug.
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class Pkce:
    """An RFC 7636 verifier and its S256 challenge (the only method oidc-provider v9 has)."""

    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


@dataclass(frozen=True)
class AuthorizationResponse:
    """The query of the redirect back to the client (RFC 6749 section 4.1.2 / 4.1.2.1)."""

    url: str
    params: Mapping[str, str]

    @property
    def code(self) -> str | None:
        return self.params.get("code")

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def iss(self) -> str | None:
        """RFC 9207 issuer identification; the MCP SDK insists on it when advertised."""
        return self.params.get("iss")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    pkce: Pkce | None,
    state: str,
    scope: str | None = None,
    resources: tuple[str, ...] = (),
) -> str:
    """An authorization request; ``resource`` may repeat (RFC 8707 section 2)."""
    query: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ]
    if pkce is not None:
        query += [("code_challenge", pkce.challenge), ("code_challenge_method", pkce.method)]
    if scope is not None:
        query.append(("scope", scope))
    query += [("resource", resource) for resource in resources]
    return f"{authorization_endpoint}?{urlencode(query)}"


def follow_to_redirect_uri(http: httpx.Client, url: str, redirect_uri: str) -> AuthorizationResponse:
    """Follow the provider's redirects from ``url`` until one points at ``redirect_uri``."""
    for _ in range(MAX_REDIRECTS):
        response = http.get(url)
        location = response.headers.get("location")
        if not response.is_redirect or location is None:
            raise AssertionError(
                f"expected a redirect from {url}, got {response.status_code}: {response.text[:500]}"
            )
        url = urljoin(url, location)
        if url.startswith(redirect_uri):
            return AuthorizationResponse(url, dict(parse_qsl(urlsplit(url).query)))
    raise AssertionError(f"no redirect to {redirect_uri} within {MAX_REDIRECTS} hops")
