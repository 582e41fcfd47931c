"""One tool list as the gateway judged it, and the filtered lists it has answered from it.

Deciding a 200-tool list costs a decision and a copy per tool, for every caller, every time,
though the list rarely changes and most callers hold the same few scope sets. So each list
the upstream sent (`CatalogView`, found again by the list exactly as sent) keeps
the filtered lists it produced, keyed by what the decisions depend on (`visibility_key`).

What a decision depends on, and so the key: the view itself (the tools, their effective
annotations, the pin state it was judged under: a change of pins makes a new view), the
route's fixed policy, and the caller. Of the caller, the scopes decide; a check beyond
scopes (`CallCheck`) may look at anything else of the principal, so a list is cached only
when every check of the route says what it looks at, with `visibility(principal)`: a
hashable fingerprint of what its decision depends on (`None` when it depends on nothing of
the caller, as the pin check). A check without it turns the cache off for the route:
then every list is decided afresh, as correct as before and as slow. Never shared across
callers whose decisions could differ.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from ..auth.principal import Principal
from ..cache import BoundedCache
from ..policy.decide import CallCheck, ToolAnnotations

__all__ = ["CatalogView", "Known", "visibility_key"]

Known = list[
    tuple[dict[str, Any], str, ToolAnnotations]
]  # (tool as sent, its name, annotations decided with)
# Filtered lists per view: enough for the few scope sets real callers hold, and no more tool
# entries in all than a budget (a 10,000-tool list keeps two filtered lists, a 200-tool one 64).
MAX_LISTS = 64
LIST_BUDGET_TOOLS = 20_000


class CatalogView:
    __slots__ = ("annotations", "changed", "digest", "generation", "known", "lists", "pinned")

    def __init__(
        self,
        known: Known,
        annotations: Mapping[str, ToolAnnotations],
        generation: int,
        *,
        changed: frozenset[str] = frozenset(),
        pinned: frozenset[str] = frozenset(),
        digest: str | None = None,
    ) -> None:
        self.known = known
        self.annotations = annotations  # name → effective annotations, as the catalog holds them
        self.generation = generation  # of the pins it was judged under
        self.changed = changed  # pinned names whose definition here differs from the pin
        self.pinned = pinned  # pinned names present here
        self.digest = digest  # `catalog_digest` of the list (None when pinning is off)
        room = max(1, min(MAX_LISTS, LIST_BUDGET_TOOLS // max(1, len(known))))
        self.lists: BoundedCache[Hashable, list[Any]] = BoundedCache(room)

    def listing(
        self, principal: Principal, checks: Sequence[CallCheck], build: Callable[[], list[Any]]
    ) -> list[Any]:
        """The tools `principal` sees: from the cache, or `build()` (then cached when safe).
        A new list object each time; the tool objects in it are shared and never mutated."""
        key = visibility_key(principal, checks)
        if key is None:
            return build()
        tools = self.lists.get(key)
        if tools is None:
            tools = build()
            self.lists.put(key, tools)
        return list(tools)


def visibility_key(principal: Principal, checks: Sequence[CallCheck]) -> Hashable | None:
    """What the route's decisions for `principal` depend on, or None when a check does not say."""
    if not checks:
        return principal.scopes
    parts: list[Hashable] = [principal.scopes]
    for check in checks:
        fingerprint = getattr(check, "visibility", None)
        if fingerprint is None:
            return None
        parts.append(fingerprint(principal))
    return tuple(parts)
