"""Who calls, told to the plug-in: a short-lived token the gateway signs, in every request's `_meta`.

A stdio plug-in does no OAuth. The gateway mints a token per caller with the signer of
`credentials/minted.py` (`sub`, `client_id`, `scope`, `act`, a minute's life, audience
`urn:mcp-bastion:stdio:<server>` unless `upstream_auth.audience` says otherwise) and puts it
in `params._meta["io.github.mcp-bastion/identity"]` of every request it writes; the plug-in
may verify it against the gateway's `/.well-known/jwks.json`.

The credential also remembers which subject each token it minted stands for (a digest of
the IdP issuer and the subject), so the transport can pick that subject's process from the
token alone, in-process, without the token leaving the gateway in any other way.
"""

from __future__ import annotations

import hashlib
from typing import TypeAlias

from ..asgi import Headers
from ..auth.principal import Principal
from ..cache import BoundedCache
from ..credentials.minted import MINT_CACHE_SIZE, TokenMinter

__all__ = ["PluginIdentity", "SubjectBook", "bearer_of", "new_subject_book", "stdio_audience", "subject_key"]

# A string: BoundedCache is compiled in the native build, where subscripting it at run time is not a given.
SubjectBook: TypeAlias = "BoundedCache[bytes, str]"


def stdio_audience(server: str) -> str:
    return f"urn:mcp-bastion:stdio:{server}"


def subject_key(principal: Principal) -> str:
    """Distinct per IdP and subject: `sub` values of two IdPs may collide."""
    return hashlib.sha256(f"{principal.issuer}\0{principal.subject}".encode()).hexdigest()[:32]


def new_subject_book() -> SubjectBook:
    return BoundedCache(MINT_CACHE_SIZE * 2)  # at least as long-lived as the minter's own cache


def bearer_of(headers: Headers) -> bytes | None:
    for name, value in headers:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:]
    return None


class PluginIdentity:
    """The `UpstreamCredential` of a stdio server: the identity token, and the subject it names."""

    def __init__(self, minter: TokenMinter, audience: str, ttl: int, book: SubjectBook) -> None:
        self._minter = minter
        self._audience = audience
        self._ttl = ttl
        self._book = book

    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        token = self._minter.mint(principal, self._audience, scopes, self._ttl).encode("ascii")
        self._book.put(token, subject_key(principal))
        return (b"authorization", b"Bearer " + token)
