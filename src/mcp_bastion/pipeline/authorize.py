"""The authorize stage: every call of the request is decided on its own (batches included),
by the route's one decision point (`ServerPolicy.decide`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..auth.principal import Principal
from ..errors import AuthorizationError, InsufficientScope
from ..policy.decide import ServerPolicy
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
        denied = False
        rules: list[tuple[str, ...]] = []
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
                denied = True
        ex.required = tuple(required)
        ex.policy_ids = tuple(rules)  # the permits that allowed each call (a Cedar `@id`), if any
        if denied:
            # scope= names what this request needs, not the catalogue (DM-09), and all of it:
            # a client re-authorizing with exactly these must be able to make the whole request
            # (a batch's allowed calls included), or a step-up would lose what it held.
            needed = tuple(dict.fromkeys(scope for scopes in required for scope in scopes))
            raise InsufficientScope("the token lacks scopes this call needs", scopes=_minimal(policy, needed))


def _minimal(policy: ServerPolicy, scopes: tuple[str, ...]) -> tuple[str, ...]:
    """Leave out a scope another of `scopes` grants (tools.read beside tools.write)."""
    grants = policy.registry.grants
    return tuple(
        scope
        for scope in scopes
        if not any(other != scope and scope in grants.get(other, ()) for other in scopes)
    )
