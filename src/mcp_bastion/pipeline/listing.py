"""The `tools/list` filter: a caller sees the tools the route's decision point lets it reach.

Every tool is decided as a `tools/call` of that tool would be (`ServerPolicy.decide`), so a
list never shows what a call would refuse for reasons the caller cannot fix, nor hides what
it may call. By default (`tools_list: reachable`) a tool the caller may not call yet is
still listed when a step-up to scopes this server publishes would allow it: an agent that
cannot see a tool never asks for the scope it needs, and the 403 `insufficient_scope`
step-up of the MCP authorization spec never happens. Each listed tool names the scopes it
needs in `_meta` (below); a tool still missing some also names those, so a client can ask
for them before calling. `tools_list: callable` lists only what the token may call now.

Malformed entries (no string name) are dropped either way; annotations are learned into the
route's catalog as a side effect, which later calls are decided with. Learning goes through
the route's pins (`pinning/`): definitions are checked against their approved versions, and
each distinct list keeps the filtered lists already answered from it, per caller visibility.
"""

from __future__ import annotations

from typing import Any, Final

from ..mcp.era import MODERN_VERSIONS
from ..pinning.views import Known
from .exchange import Exchange
from .screen import screen_definitions

__all__ = ["MISSING_SCOPES_META", "REQUIRED_SCOPES_META", "filter_tool_list"]

# `_meta` keys (MCP basic §_meta: a reverse-DNS prefix of ours, a slash, a name).
REQUIRED_SCOPES_META: Final = "io.github.mcp-bastion/requiredScopes"
MISSING_SCOPES_META: Final = "io.github.mcp-bastion/missingScopes"


def filter_tool_list(ex: Exchange, result: dict[str, Any]) -> None:
    """Edit one `tools/list` result in place for the caller of `ex`."""
    route = ex.route
    principal = ex.principal
    assert principal is not None
    # Learned through the route's pins (pinning/): hashed, judged, and remembered per list.
    view = route.pins.learn(route.catalog, result["tools"], principal, ex.trace.trace_id)
    if route.safety is not None:
        screen_definitions(ex, view.known)  # may withhold tools: the decision hides them
    if route.auth:
        result["tools"] = view.listing(principal, route.policy.checks, lambda: _visible(ex, view.known))
    else:
        result["tools"] = [_unmarked(tool) for tool, _, _ in view.known]
    if ex.era is not None and ex.era.version in MODERN_VERSIONS:
        # caching.mdx: a list that differs per caller must not be shared across tokens.
        result["cacheScope"] = "private"


def _visible(ex: Exchange, known: Known) -> list[Any]:
    """The tools the caller may see. The list may be cached and answered to other callers with
    the same visibility: a marked tool is a copy, never the learned one."""
    route = ex.route
    principal = ex.principal
    assert principal is not None
    policy = route.policy
    show_reachable = route.config.tools_list == "reachable"
    granted = policy.registry.expand(principal.scopes)
    marks = _Marks()
    tools: list[Any] = []
    decide_tool = policy.decide_tool
    for tool, name, hints in known:
        decision = decide_tool(principal, name, hints, granted)
        if decision.allowed:
            tools.append(marks.put(tool, decision.required, ()) if show_reachable else _unmarked(tool))
        elif show_reachable and decision.reachable:
            tools.append(marks.put(tool, decision.required, decision.missing))
    return tools


def _unmarked(tool: dict[str, Any]) -> dict[str, Any]:
    # No marks in this mode: none an upstream wrote may pass as the gateway's (removed from
    # the learned tool itself: the same for every caller, and idempotent).
    meta = tool.get("_meta")
    if meta and isinstance(meta, dict):
        meta.pop(REQUIRED_SCOPES_META, None)
        meta.pop(MISSING_SCOPES_META, None)
    return tool


class _Marks:
    """Writes the scope marks on copies; the lists are built once per distinct requirement in a
    list (a 200-tool list has a handful), not once per tool."""

    __slots__ = ("_lists",)

    def __init__(self) -> None:
        self._lists: dict[tuple[str, ...], list[str]] = {}

    def put(
        self, tool: dict[str, Any], required: tuple[str, ...], missing: tuple[str, ...]
    ) -> dict[str, Any]:
        meta = tool.get("_meta")
        # Not an object (or absent): ours replaces it; a malformed _meta has no meaning to keep.
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta[REQUIRED_SCOPES_META] = self._list(required)
        if missing:
            meta[MISSING_SCOPES_META] = self._list(missing)
        else:
            meta.pop(MISSING_SCOPES_META, None)  # an upstream may not forge our marks
        marked = dict(tool)
        marked["_meta"] = meta
        return marked

    def _list(self, scopes: tuple[str, ...]) -> list[str]:
        known = self._lists.get(scopes)
        if known is None:
            known = self._lists[scopes] = list(scopes)
        return known
