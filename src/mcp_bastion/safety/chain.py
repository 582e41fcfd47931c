"""A server's safety filters, in configured order, chosen per tool.

`SafetyChain` is what a route holds when its server configures `filters`; without filters a
route holds None and nothing here runs. Three moments:

- **arguments** of a `tools/call`, before it goes upstream (`screen_arguments`);
- its **result** (or JSON-RPC error), before the client sees it (`screen_result`);
- each **tool definition** as a `tools/list` teaches it (`screen_tools`).

Call filters run in order; a redaction hands the redacted value to the next filter, and the
first deny ends the run (later filters are not asked, and not audited). Every filter asked
leaves one audit entry (`verdict.audit_entry`). A definition filter's flag withholds the
tool when the filter says so (`withheld.py`); definitions are judged once per distinct
definition, so relisting an unchanged catalogue costs a comparison per tool.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import orjson

from ..cache import BoundedCache
from .verdict import CallContext, CallFilter, DefinitionFilter, audit_entry
from .withheld import MAX_WITHHELD, WithheldTools

__all__ = ["Configured", "SafetyChain", "Screened", "Selection", "ToolFilters"]

log = logging.getLogger("mcp_bastion.safety")
_MEMO_TOOLS: Final = 4096  # tool names come from clients: the per-tool memo is bounded


class Selection(NamedTuple):
    """Which tools a filter applies to: `only` these (None: every tool), never `skip`."""

    only: frozenset[str] | None = None
    skip: frozenset[str] = frozenset()

    def applies(self, tool: str) -> bool:
        return (self.only is None or tool in self.only) and tool not in self.skip


class Configured(NamedTuple):
    """A call filter with the moments it screens and the tools it applies to."""

    filter: CallFilter
    arguments: bool
    result: bool
    tools: Selection = Selection()


class ToolFilters(NamedTuple):
    arguments: tuple[CallFilter, ...]
    results: tuple[CallFilter, ...]


class Screened(NamedTuple):
    value: Any  # what goes on: the value as screened, redactions applied
    denied: bool
    changed: bool
    entries: tuple[str, ...]  # one audit entry per filter asked


class SafetyChain:
    def __init__(
        self,
        server: str,
        calls: Sequence[Configured],
        definitions: Sequence[tuple[DefinitionFilter, Selection]] = (),
    ) -> None:
        self.server = server
        self._calls = tuple(calls)
        self._definitions = tuple(definitions)
        self.withheld = WithheldTools()
        # Only a chain that can withhold adds a check to the decision point.
        self.checks: tuple[WithheldTools, ...] = (
            (self.withheld,) if any(f.withholds for f, _ in definitions) else ()
        )
        # A response the gateway cannot tie to a tool (replayed on a resumed GET stream) is
        # screened by every result filter, whatever its tool selection: fail closed.
        self.any_tool = ToolFilters((), tuple(c.filter for c in self._calls if c.result))
        self._per_tool: BoundedCache[str, ToolFilters] = BoundedCache(_MEMO_TOOLS)
        self._judged: dict[str, tuple[bytes, tuple[tuple[str, bool, tuple[str, ...]], ...]]] = {}

    def for_tool(self, tool: str) -> ToolFilters:
        """The call filters that apply to `tool`, for each moment."""
        known = self._per_tool.get(tool)
        if known is None:
            applying = [c for c in self._calls if c.tools.applies(tool)]
            known = ToolFilters(
                tuple(c.filter for c in applying if c.arguments),
                tuple(c.filter for c in applying if c.result),
            )
            self._per_tool.put(tool, known)
        return known

    async def screen_arguments(self, filters: ToolFilters, call: CallContext, value: Any) -> Screened:
        entries: list[str] = []
        changed = False
        for f in filters.arguments:
            verdict = await f.on_arguments(call, value)
            entries.append(audit_entry("arguments", f.id, verdict))
            if verdict.action == "deny":
                return Screened(value, True, changed, tuple(entries))
            if verdict.action == "redact":
                value, changed = verdict.value, True
        return Screened(value, False, changed, tuple(entries))

    async def screen_result(
        self, filters: ToolFilters, call: CallContext, value: Any, error: bool
    ) -> Screened:
        entries: list[str] = []
        changed = False
        for f in filters.results:
            verdict = await f.on_result(call, value, error)
            entries.append(audit_entry("result", f.id, verdict))
            if verdict.action == "deny":
                return Screened(value, True, changed, tuple(entries))
            if verdict.action == "redact":
                value, changed = verdict.value, True
        return Screened(value, False, changed, tuple(entries))

    def screen_tools(self, known: Iterable[tuple[Mapping[str, Any], str, Any]]) -> list[str]:
        """Judge each learned definition, withhold or release it; the audit entries of the
        flagged ones (`tool:poisoning:withhold:ignore-previous@NAME`)."""
        entries: list[str] = []
        if not self._definitions:
            return entries
        for tool, name, _ in known:
            flags = self._flags(tool, name)
            if any(withholds for _, withholds, _ in flags):
                self.withheld.withhold(name, tuple(r for _, w, rules in flags if w for r in rules))
            elif name in self.withheld:
                self.withheld.release(name)
            entries.extend(f"{entry}@{name}" for entry, _, _ in flags)
        return entries

    def _flags(self, tool: Mapping[str, Any], name: str) -> tuple[tuple[str, bool, tuple[str, ...]], ...]:
        """(audit entry, withholds, rules) per filter that flagged this definition."""
        key = orjson.dumps(tool)
        judged = self._judged.get(name)
        if judged is not None and judged[0] == key:
            return judged[1]
        found: list[tuple[str, bool, tuple[str, ...]]] = []
        for f, selection in self._definitions:
            if selection.applies(name):
                verdict = f.on_tool(tool)
                if verdict.action == "deny":
                    action = "withhold" if f.withholds else "flag"
                    found.append((audit_entry("tool", f.id, verdict, action), f.withholds, verdict.rules))
        flags = tuple(found)
        if name in self._judged or len(self._judged) < MAX_WITHHELD:
            self._judged[name] = (key, flags)
        for entry, _, _ in flags:
            # Once per new definition (the memo above): the name is the upstream's, so %r.
            log.warning("server %s: tool %r flagged by a safety filter (%s)", self.server, name, entry)
        return flags
