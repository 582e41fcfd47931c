"""Loading an upstream's tool list into a route's catalog, when a call names an unknown tool.

Used when a call names a tool whose annotations the gateway has not seen yet (for example
on a fresh replica). The fetch itself is `tool_list.fetch_tool_list` (the stateless era
first, then an `initialize` session), with the route's own transport and credential. It is
rate-limited per server so unknown tool names cannot make it an amplifier, and a failure
only leaves the catalog as it was: the call is then decided without annotations, which
fails closed to the destructive scopes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..auth.principal import Principal
from ..errors import BastionError
from ..route import ServerRoute
from .tool_list import fetch_tool_list

__all__ = ["CatalogFetcher"]

log = logging.getLogger("mcp_bastion.upstream")
MIN_INTERVAL_S = 10.0


class CatalogFetcher:
    """`await fetcher(route, principal)` loads the route's tool list into its catalog, with
    the route's upstream credential for that principal (the catalog itself is shared)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    async def __call__(self, route: ServerRoute, principal: Principal) -> None:
        catalog = route.catalog
        if catalog.loading is not None:
            # A fetch is under way (a fresh replica's first calls arrive together): wait for it
            # rather than decide without annotations. Shielded: one caller leaving must not
            # cancel the fetch the others wait on.
            await asyncio.shield(catalog.loading)
            return
        now = self._clock()
        if catalog.refreshed_at is not None and now - catalog.refreshed_at < MIN_INTERVAL_S:
            return
        catalog.refreshed_at = now
        task = catalog.loading = asyncio.ensure_future(self._load(route, principal))
        task.add_done_callback(lambda _: setattr(catalog, "loading", None))
        await asyncio.shield(task)

    async def _load(self, route: ServerRoute, principal: Principal) -> None:
        try:
            credential = await route.credential.header(principal, ())
            tools = await fetch_tool_list(route.transport, credential, route.config.timeout_seconds)
        except BastionError as exc:
            log.warning("could not load the tool list of %s: %s", route.name, exc.message)
            return
        view = route.pins.learn(route.catalog, tools, principal)  # pinning/: judged as a client's list is
        if route.safety is not None:
            route.safety.screen_tools(view.known)  # withheld tools are refused by the decision point
