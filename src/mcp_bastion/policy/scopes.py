"""The scope registry: the read / write / admin scopes, per-server scopes, and hierarchy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..cache import BoundedCache
from ..config.model import ScopeRegistryConfig, ServerConfig

__all__ = ["ScopeRegistry", "published_scopes"]

EXPANSION_MEMO_SIZE = 1024


@dataclass(frozen=True)
class ScopeRegistry:
    read: str = "tools.read"
    write: str = "tools.write"
    admin: str = "admin"
    # scope -> every scope it grants, itself included (transitively closed).
    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Tokens of one client carry the same scope sets again and again: their expansions are kept.
    _expanded: BoundedCache[frozenset[str], frozenset[str]] = field(
        default_factory=lambda: BoundedCache(EXPANSION_MEMO_SIZE), init=False, repr=False, compare=False
    )

    @classmethod
    def from_config(cls, config: ScopeRegistryConfig) -> ScopeRegistry:
        implies = config.implies
        if implies is None:
            # Default hierarchy: admin ⊇ write ⊇ read (MCP 2026-07-28 "Step-Up" honours hierarchies).
            implies = {config.admin: (config.write, config.read), config.write: (config.read,)}
        return cls(config.read, config.write, config.admin, _close(implies))

    def expand(self, granted: Iterable[str]) -> frozenset[str]:
        """Everything the granted scopes confer. Exact strings only: no wildcards, no prefixes (TP-14)."""
        if isinstance(granted, frozenset):
            known = self._expanded.get(granted)
            if known is None:
                known = self._expand(granted)
                self._expanded.put(granted, known)
            return known
        return self._expand(granted)

    def _expand(self, granted: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for scope in granted:
            out |= self.grants.get(scope, frozenset((scope,)))
        return frozenset(out)


def _close(implies: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    closed: dict[str, frozenset[str]] = {}
    for root in implies:
        seen = {root}
        todo = list(implies[root])
        while todo:
            scope = todo.pop()
            if scope not in seen:
                seen.add(scope)
                todo.extend(implies.get(scope, ()))
        closed[root] = frozenset(seen)
    return closed


def published_scopes(registry: ScopeRegistry, server: ServerConfig) -> tuple[str, ...]:
    """The scopes one server publishes (its PRM `scopes_supported`): every scope a call to it
    may need, so a client can ask for each (step-up) and an operator can register each.

    `offline_access` is the IdP's own (refresh tokens), never a resource's.
    """
    every = (
        registry.read,
        registry.write,
        registry.admin,
        *server.scopes,
        *(scope for tool in server.tools.values() for scope in tool.scopes),
        # Needed by calls even when defined only through `scopes.implies`, not under `scopes`.
        *(server.destructive_scopes or ()),
    )
    return tuple(scope for scope in dict.fromkeys(every) if scope != "offline_access")
