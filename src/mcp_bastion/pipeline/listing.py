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
route's catalog as a side effect, which later calls are decided with.
"""

from __future__ import annotations

from typing import Any, Final

from ..mcp.calls import Call
from ..mcp.era import MODERN_VERSIONS
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
    known = route.catalog.learn(result["tools"])
    if route.safety is not None:
        screen_definitions(ex, known)  # may withhold tools: the decision below hides them
    if route.auth:
        policy = route.policy
        show_reachable = route.config.tools_list == "reachable"
        tools: list[Any] = []
        for tool, name, annotations in known:
            decision = policy.decide(principal, Call("tools/call", name, None), annotations)
            if decision.allowed:
                _mark(tool, decision.required, ())
                tools.append(tool)
            elif show_reachable and decision.reachable:
                _mark(tool, decision.required, decision.missing)
                tools.append(tool)
        result["tools"] = tools
    else:
        result["tools"] = [tool for tool, _, _ in known]
    if ex.era is not None and ex.era.version in MODERN_VERSIONS:
        # caching.mdx: a list that differs per caller must not be shared across tokens.
        result["cacheScope"] = "private"


def _mark(tool: Any, required: tuple[str, ...], missing: tuple[str, ...]) -> None:
    meta = tool.get("_meta")
    if not isinstance(meta, dict):
        # Not an object (or absent): ours replaces it; a malformed _meta has no meaning to keep.
        meta = tool["_meta"] = {}
    meta[REQUIRED_SCOPES_META] = list(required)
    if missing:
        meta[MISSING_SCOPES_META] = list(missing)
    else:
        meta.pop(MISSING_SCOPES_META, None)  # an upstream may not forge our marks
