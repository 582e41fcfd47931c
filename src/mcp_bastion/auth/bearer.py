"""Bearer tokens in the Authorization header (RFC 6750 §2.1) and the challenges we answer with.

Only the header carries tokens: query strings, form bodies and cookies are never read
(MCP authorization: tokens MUST NOT be in the URI; TV-19). The scheme name is
case-insensitive (RFC 9110 §11.1).
"""

from __future__ import annotations

import re

from ..errors import InvalidToken, MissingToken

__all__ = ["bearer_token", "challenge"]

# RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
# `\Z`, not `$`, which also accepts a final "\n" (found by tests/properties/test_tokens.py).
_CREDENTIALS = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*) *\Z")


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer …` header value."""
    if authorization is None:
        raise MissingToken("no bearer token")
    match = _CREDENTIALS.match(authorization)
    if match is None:
        if authorization[:7].lower() == "bearer ":
            raise InvalidToken("malformed bearer credentials")
        # Another scheme (Basic, …) is simply not a bearer token: challenge without an error code.
        raise MissingToken("no bearer token")
    return match.group(1)


def challenge(resource_metadata: str, scopes: tuple[str, ...], error: str = "", description: str = "") -> str:
    """A `WWW-Authenticate` value naming the PRM URL (RFC 9728 §5.1) and the scopes to request."""
    params = []
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quotable(description)}"')
    if scopes:
        params.append(f'scope="{" ".join(scopes)}"')
    params.append(f'resource_metadata="{resource_metadata}"')
    return "Bearer " + ", ".join(params)


def _quotable(text: str) -> str:
    # RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    return "".join(c for c in text if c in _SAFE)[:200]


_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}
