"""The login step: how the authorization server learns who the user is.

The development IdP asks on its consent page (a username, no password: it is a test
server). The authorization facade (:mod:`mcp_bastion.facade`) delegates to a real IdP: its
:class:`Login` sends the browser there and, at the ``callback`` endpoint, turns the IdP's
answer into a subject. Either way the same core then shows the consent page for the MCP
client and issues the codes and tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from ..errors import OAuthError
from ._authorization_request import AuthorizationRequest


@dataclass(frozen=True)
class UpstreamToken:
    """An access token the upstream IdP issued at sign-in for the requested resource itself
    (its ``aud`` is that resource, exactly): handed to the client instead of one of ours."""

    access_token: str = field(repr=False)
    #: Its scopes, or ``None`` if it names none.
    scopes: tuple[str, ...] | None
    expires_at: float


@dataclass(frozen=True)
class LoginResult:
    """The end of a login: the request it was for, and who signed in or why not.

    Exactly one of ``subject`` and ``error`` is set. An error is sent back to the client's
    (already verified) redirect URI, never with the upstream IdP's own words.
    """

    request: AuthorizationRequest
    subject: str | None = None
    error: OAuthError | None = None
    #: With a subject: the IdP's token to pass through, when it fits (see :class:`UpstreamToken`).
    upstream: UpstreamToken | None = None


class Login(Protocol):
    """Authenticates the user for a validated authorization request."""

    async def begin(self, auth: AuthorizationRequest, request: Request) -> Response:
        """Start the login for ``auth`` (typically a redirect to the upstream IdP)."""
        ...

    async def finish(self, request: Request) -> LoginResult:
        """The browser came back to ``callback``; raises :class:`OAuthError` (shown on a
        page) when the request cannot be tied to a login this browser started."""
        ...
