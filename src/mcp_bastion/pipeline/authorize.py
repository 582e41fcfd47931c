"""The authorize stage: every call of the request is decided on its own (batches included),
by the route's one decision point (`ServerPolicy.decide`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..auth.principal import Principal
from ..errors import AuthorizationError, InsufficientScope
from ..route import ServerRoute
from .exchange import Exchange

__all__ = ["Authorize", "CatalogRefresher"]

# Loads the upstream's tool list into the route's catalog when a call names an unknown tool.
CatalogRefresher = Callable[[ServerRoute, Principal], Awaitable[None]]


class Authorize:
    def __init__(self, refresh_catalog: CatalogRefresher) -> None:
        self._refresh = refresh_catalog

    async def __call__(self, ex: Exchange) -> None:
        route = ex.route
        principal = ex.principal
        assert principal is not None
        policy = route.policy
        required: list[tuple[str, ...]] = []
        rules: list[tuple[str, ...]] = []
        missing: list[str] = []
        for call in ex.calls:
            annotations = None
            if call.method == "tools/call" and call.name is not None:
                annotations = route.catalog.get(call.name)
                if annotations is None and route.auth and call.name not in policy.tool_scopes:
                    await self._refresh(route, principal)
                    annotations = route.catalog.get(call.name)
            decision = policy.decide(principal, call, annotations)
            required.append(decision.required)
            rules.append(decision.rules)
            if not decision.allowed:
                if not decision.missing:
                    # Refused by a check beyond scopes: no step-up can fix it, so no challenge.
                    ex.required = tuple(required)
                    ex.policy_ids = tuple(rules)
                    raise AuthorizationError(decision.reason or "refused by policy")
                missing.extend(decision.required)
        ex.required = tuple(required)
        if missing:
            # scope= names what this request needs, not the catalogue (DM-09), so the client can step up.
            raise InsufficientScope(
                "the token lacks scopes this call needs", scopes=tuple(dict.fromkeys(missing))
            )
