"""How the published tools look on a terminal (a table) and to a program (JSON).

Tool names, titles and hints come from upstreams and are untrusted: in the table every control
or format character (ANSI escape sequences, bidirectional overrides, zero-width characters) is
shown as an escape, so an upstream cannot rewrite the operator's terminal or disguise a name.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from .resources import PublishedResource
from .tools import ServerTools, ToolEntry

__all__ = ["printable", "resources_table", "tools_document", "tools_table"]

MAX_CELL = 48  # characters of an untrusted value in a table cell


def tools_document(servers: Sequence[ServerTools]) -> dict[str, Any]:
    """The report as JSON-ready data (`mcp-bastion tools --format json`)."""
    return {"servers": [_server_document(server) for server in servers]}


def tools_table(servers: Sequence[ServerTools]) -> str:
    """The report for a terminal: one block per server, one row per tool."""
    return "\n\n".join(_server_table(server) for server in servers)


def resources_table(resources: Sequence[PublishedResource]) -> str:
    """What to register at any IdP, for a reader: each resource URL and its scopes."""
    blocks = []
    for resource in resources:
        width = max(len(scope.value) for scope in resource.scopes)
        lines = [f"{resource.server}  {resource.resource}"]
        lines += [f"  {scope.value.ljust(width)}  {scope.description}" for scope in resource.scopes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def printable(text: str, limit: int = MAX_CELL) -> str:
    """`text` safe for a terminal: control and format characters escaped, cut at `limit`."""
    out = "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text
    )
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _server_document(server: ServerTools) -> dict[str, Any]:
    return {
        "name": server.name,
        "resource": server.resource,
        "upstream": server.upstream,
        "error": server.error,
        "tools": [_tool_document(tool) for tool in server.tools],
    }


def _tool_document(tool: ToolEntry) -> dict[str, Any]:
    return {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "annotations": dict(tool.hints),
        "scopes": list(tool.scopes),
        "source": tool.source,
        "listed": tool.listed,
    }


def _server_table(server: ServerTools) -> str:
    head = f"{server.name}  {server.resource}  (upstream {printable(server.upstream, 200)})"
    lines = [head]
    if server.error is not None:
        lines.append(f"  error: {server.error}")
    rows = [("TOOL", "HINTS", "SCOPES", "FROM")]
    for tool in server.tools:
        hints = _hints(tool.hints) if tool.listed else "(not listed by the upstream)"
        rows.append((printable(tool.name), hints, " ".join(tool.scopes), tool.source))
    if len(rows) == 1:
        lines.append("  (no tools)")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  " + "  ".join([*cells, row[3]]).rstrip())
    return "\n".join(lines)


def _hints(hints: Mapping[str, Any]) -> str:
    if not hints:
        return "-"
    words = []
    for key, value in hints.items():
        shown = "true" if value is True else "false" if value is False else "?"  # not a boolean: ignored
        words.append(f"{key.removesuffix('Hint')}={shown}")
    return " ".join(words)
