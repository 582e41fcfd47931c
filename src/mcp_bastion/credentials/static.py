"""The credentials that need no IdP: none at all, or a configured secret header."""

from __future__ import annotations

from ..auth.principal import Principal

__all__ = ["NoCredential", "StaticCredential"]


class NoCredential:
    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        return None


class StaticCredential:
    def __init__(self, name: str, value: str) -> None:
        self._header = (name.lower().encode("latin-1"), value.encode("latin-1"))

    async def header(self, principal: Principal, scopes: tuple[str, ...]) -> tuple[bytes, bytes] | None:
        return self._header
