"""The fixture's catalogue: 200 tools with mixed annotations, and who may see which.

Four kinds in turn: read-only, writing but not destructive, destructive, and unannotated
(which MCP treats as destructive). The bench token carries `tools.read tools.write` and the
gateway's config sends destructive tools to `admin`, so the filtered `tools/list` keeps
the first two kinds: half the list. The count is computed here from the annotations, not
by asking the gateway's own policy code, so the check is independent of what it checks.
"""

from __future__ import annotations

from typing import Any

CALLED_TOOLS = ("echo", "echo_sse", "hold")  # the tools the workloads call; all read-only
TOOL_COUNT = 200
GRANTED_SCOPES = "tools.read tools.write"


def _annotations(kind: int) -> dict[str, Any] | None:
    if kind == 0:
        return {"readOnlyHint": True}
    if kind == 1:
        return {"readOnlyHint": False, "destructiveHint": False}
    if kind == 2:
        return {"readOnlyHint": False, "destructiveHint": True}
    return None


def _tool(name: str, kind: int) -> dict[str, Any]:
    tool: dict[str, Any] = {
        "name": name,
        "title": name.replace("_", " ").title(),
        "description": f"Bench tool {name}: does nothing useful, described at a realistic length.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "description": "A number echoed back."},
                "query": {"type": "string", "description": "Free text."},
            },
        },
    }
    annotations = _annotations(kind)
    if annotations is not None:
        tool["annotations"] = annotations
    return tool


def _catalogue() -> list[dict[str, Any]]:
    tools = [_tool(name, 0) for name in CALLED_TOOLS]
    tools += [_tool(f"tool_{i:03d}", i % 4) for i in range(len(tools), TOOL_COUNT)]
    return tools


TOOLS = _catalogue()


def visible_with_read_write(tools: list[dict[str, Any]]) -> int:
    """How many tools a `tools.read tools.write` caller may call when destructive needs admin."""
    count = 0
    for tool in tools:
        hints = tool.get("annotations") or {}
        if hints.get("readOnlyHint") is True or hints.get("destructiveHint") is False:
            count += 1
    return count


FILTERED_COUNT = visible_with_read_write(TOOLS)
