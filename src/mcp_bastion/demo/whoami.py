"""The ``whoami`` sample upstream: it shows who the token it received names, never the token.

In the demo with ``--exchange`` the gateway reaches this server with ``upstream_auth:
{type: exchange}``: for every call it trades the user's token (audience: the gateway) at the
development IdP for one whose audience is this server (RFC 8693). Unlike the other sample
servers, this one checks what it receives, as a real upstream would: the signature against the
IdP's published JWKS (fetched once, over loopback), ``typ`` ``at+jwt``, the issuer, the
audience (its own URL) and the expiry. Its one tool, ``whoami``, answers the claims a user
wants to see (``sub``, ``aud``, ``act``, ``scope``, ``client_id``) and whether they checked out.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet
from mcp.server.mcpserver import Context, MCPServer
from starlette.types import ASGIApp

from .upstreams import _READ_ONLY, serve_at_mcp_path

__all__ = ["WHOAMI", "TokenReport", "build_whoami_upstream"]

WHOAMI = "whoami"
#: The claims the tool shows; never the token, a signature or anything that could be replayed.
SHOWN_CLAIMS = ("sub", "aud", "act", "scope", "client_id", "iss")
JWKS_TIMEOUT_S = 5.0

TokenReport = dict[str, Any]


class ReceivedTokens:
    """Checks the bearer tokens this upstream receives against the IdP that should issue them."""

    def __init__(self, issuer: str, audience: str, clock: Callable[[], float] = time.time) -> None:
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._keys: KeySet | None = None

    async def report(self, headers: Mapping[str, str] | None) -> TokenReport:
        """What the request's token says, and whether this upstream accepts it."""
        scheme, _, token = (headers or {}).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return {"accepted": False, "problem": "no bearer token was received"}
        try:
            claims, typ = await self._decode(token.strip())
        except (JoseError, ValueError, TypeError, httpx.HTTPError):
            return {"accepted": False, "problem": "the token is not signed by the development IdP"}
        shown = {name: claims[name] for name in SHOWN_CLAIMS if name in claims}
        problem = self._problem(claims, typ)
        return {"accepted": problem is None, **({"problem": problem} if problem else {}), **shown}

    async def _decode(self, token: str) -> tuple[dict[str, Any], Any]:
        keys = self._keys or await self._fetch_keys()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated by RFC 9864
            decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256", "PS256", "EdDSA"])
        return decoded.claims, decoded.header.get("typ")

    async def _fetch_keys(self) -> KeySet:
        async with httpx.AsyncClient(timeout=JWKS_TIMEOUT_S, trust_env=False) as http:
            response = await http.get(f"{self._issuer}/jwks")
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        return self._keys

    def _problem(self, claims: Mapping[str, Any], typ: Any) -> str | None:
        exp = claims.get("exp")
        if typ != "at+jwt":
            return "not an access token"
        if claims.get("iss") != self._issuer:
            return "issued by another issuer"
        if claims.get("aud") != self._audience:
            # The client's own token (audience: the gateway) lands here if it is ever passed through.
            return f"issued for another audience, not for {self._audience}"
        if not isinstance(exp, (int, float)) or exp <= self._clock():
            return "expired"
        return None


def build_whoami_upstream(issuer: str, audience: str) -> ASGIApp:
    """The ``whoami`` server for tokens of ``issuer`` addressed to ``audience`` (its own URL)."""
    server = MCPServer(WHOAMI, version="1.0.0", instructions="Shows which token the gateway sent upstream.")
    tokens = ReceivedTokens(issuer, audience)

    @server.tool(annotations=_READ_ONLY)
    async def whoami(ctx: Context) -> TokenReport:
        """Who the token this server received names: its sub, aud, act and scope (never the token)."""
        return await tokens.report(ctx.headers)

    return serve_at_mcp_path(server)
