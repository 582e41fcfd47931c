"""The JWT bearer grant (RFC 7523 §2.1) as a seam: who checks the assertion is pluggable.

The development IdP accepts no assertions. The authorization facade plugs in an
:class:`AssertionVerifier` for Identity Assertion JWT Authorization Grants (ID-JAG,
Enterprise-Managed Authorization): the enterprise IdP vouches for the user and the client,
and the core issues an access token bound to the one requested resource. No refresh token
is issued for an assertion: a new one is asked of the IdP, which keeps control.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Assertion:
    """What a verified assertion grants: a subject and, if it says, the scopes it allows."""

    subject: str
    #: ``None``: the assertion does not restrict scopes (the request and the resource decide).
    scopes: tuple[str, ...] | None


class AssertionVerifier(Protocol):
    """Checks a grant assertion presented by an authenticated client for one resource."""

    async def verify(self, assertion: str, client_id: str, resource: str) -> Assertion:
        """The grant, or :class:`~mcp_bastion.errors.OAuthError` ``invalid_grant``."""
        ...
