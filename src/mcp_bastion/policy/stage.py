"""The authorize stage: every call of the request is decided on its own (batches included)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import InsufficientScope
from ..exchange import Exchange
from .decide import Deny, decide
from .scopes import ScopeRegistry

__all__ = ["Authorize", "CatalogRefresher"]

# Loads the upstream's tool list into the route's catalog when a call names an unknown tool.
CatalogRefresher = Callable[[Exchange], Awaitable[None]]


class Authorize:
    def __init__(self, registry: ScopeRegistry, refresh_catalog: CatalogRefresher) -> None:
        self._registry = registry
        self._refresh = refresh_catalog

    async def __call__(self, ex: Exchange) -> None:
        route = ex.route
        assert ex.principal is not None
        granted = self._registry.expand(ex.principal.scopes)
        required: list[tuple[str, ...]] = []
        denied: list[str] = []
        for call in ex.calls:
            annotations = None
            if call.method == "tools/call" and call.name is not None:
                annotations = route.catalog.get(call.name)
                if annotations is None and route.auth and call.name not in route.policy.tool_scopes:
                    await self._refresh(ex)
                    annotations = route.catalog.get(call.name)
            needed = route.policy.requirement(call, annotations)
            required.append(needed)
            if route.auth and isinstance(decide(granted, needed), Deny):
                denied.extend(needed)
        ex.required = tuple(required)
        if denied:
            # scope= names what this request needs, not the catalogue (DM-09), so the client can step up.
            scopes = tuple(dict.fromkeys(denied))
            raise InsufficientScope("the token lacks scopes this call needs", scopes=scopes)
