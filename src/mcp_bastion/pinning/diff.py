"""What changed between the approved definitions (the lockfile) and the live ones, for a reviewer.

`mcp-bastion pin diff` shows, per server, each tool added, removed or changed, and for a change
the members that differ as a unified diff: a description line by line, a schema as indented
JSON with sorted keys, so `bcc` appearing in an input schema is one `+` line. Everything shown
comes from upstreams: every control and format character is escaped (`registry.report.printable`),
so a description cannot rewrite the terminal or hide a line with a bidirectional override.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..policy.decide import annotations_of
from ..registry.report import printable
from .pins import Pin, Sighting, changed_fields, stricter

__all__ = ["ServerDiff", "ToolDiff", "compare", "diff_document", "diff_text"]

MAX_LINES = 200  # per tool: a diff longer than this is cut, with a count of what was left out
MAX_LINE = 400  # characters per shown line


@dataclass(frozen=True)
class ToolDiff:
    name: str
    change: Literal["added", "removed", "changed"]
    fields: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()  # the unified diff, escaped for a terminal
    lowered: bool = False  # the live annotations claim less than the pinned ones


@dataclass(frozen=True)
class ServerDiff:
    server: str
    lockfile: str
    tools: tuple[ToolDiff, ...]
    error: str | None = None

    @property
    def differs(self) -> bool:
        return bool(self.tools)


def compare(pins: Mapping[str, Pin], live: Mapping[str, Sighting]) -> tuple[ToolDiff, ...]:
    """Every difference between a server's pins and its live definitions, by tool name."""
    out: list[ToolDiff] = []
    for name in sorted(set(pins) | set(live)):
        pin, sighting = pins.get(name), live.get(name)
        if pin is None:
            assert sighting is not None
            out.append(ToolDiff(name, "added", lines=_whole(name, sighting.definition)))
        elif sighting is None:
            out.append(ToolDiff(name, "removed"))
        elif sighting.digest != pin.digest:
            fields = changed_fields(pin, sighting)
            before = pin.definition or {}
            lines = _lines(name, {f: before.get(f) for f in fields if f in before}, _only(sighting, fields))
            live_annotations = annotations_of(sighting.definition)
            lowered = stricter(pin.annotations, live_annotations) is not live_annotations
            out.append(ToolDiff(name, "changed", fields, lines, lowered))
    return tuple(out)


def diff_text(servers: list[ServerDiff]) -> str:
    """For a terminal: per server, each difference and its unified diff."""
    blocks = []
    for server in servers:
        head = f"{server.server}  (lockfile {printable(server.lockfile, 200)})"
        lines = [head]
        if server.error is not None:
            lines.append(f"  error: {server.error}")
        elif not server.tools:
            lines.append("  no changes: the live tools are the pinned ones")
        for tool in server.tools:
            what = f"  {tool.change} {printable(tool.name)}"
            if tool.fields:
                what += f" ({', '.join(printable(f) for f in tool.fields)})"
            lines.append(what)
            if tool.lowered:
                lines.append("    annotations now claim less: the pinned ones apply until approved")
            lines.extend(f"    {line}" for line in tool.lines)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def diff_document(servers: list[ServerDiff]) -> dict[str, Any]:
    """For a program (`--format json`)."""
    return {
        "servers": [
            {
                "name": s.server,
                "lockfile": s.lockfile,
                "error": s.error,
                "tools": [
                    {
                        "name": t.name,
                        "change": t.change,
                        "fields": list(t.fields),
                        "annotations_lowered": t.lowered,
                        "diff": list(t.lines),
                    }
                    for t in s.tools
                ],
            }
            for s in servers
        ]
    }


def _only(sighting: Sighting, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: sighting.definition[f] for f in fields if f in sighting.definition}


def _lines(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for field in sorted(set(before) | set(after)):
        old = _text(before[field]) if field in before else []
        new = _text(after[field]) if field in after else []
        tag = f"{name}.{field}"
        out.extend(difflib.unified_diff(old, new, f"{tag} (pinned)", f"{tag} (live)", lineterm="", n=2))
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], f"… {len(out) - MAX_LINES} more lines"]
    return tuple(printable(line, MAX_LINE) for line in out)


def _whole(name: str, definition: Mapping[str, Any]) -> tuple[str, ...]:
    """A tool with no pin: its whole definition, as added lines."""
    lines = list(difflib.unified_diff([], _text(dict(definition)), "(no pin)", f"{name} (live)", lineterm=""))
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"… {len(lines) - MAX_LINES} more lines"]
    return tuple(printable(line, MAX_LINE) for line in lines)


def _text(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
