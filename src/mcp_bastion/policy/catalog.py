"""What the gateway knows of each upstream's tools: their annotations, learned from tools/list.

Annotations are untrusted hints: they only choose between the registry's read and write
scopes, and per-tool config always wins (see ServerPolicy). The catalog is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from .decide import ToolAnnotations, annotations_of

__all__ = ["ToolCatalog"]

MAX_TOOLS = 10_000


class ToolCatalog:
    def __init__(self) -> None:
        self._tools: dict[str, ToolAnnotations] = {}
        self.refreshed_at: float | None = None
        self.loading: asyncio.Future[None] | None = None  # the fetch under way, shared by waiters

    def get(self, name: str) -> ToolAnnotations | None:
        return self._tools.get(name)

    def learn(self, tools: Iterable[Any]) -> list[tuple[dict[str, Any], str, ToolAnnotations]]:
        """Remember the tools' annotations; return each well-formed tool with its name and
        annotations (those past the catalog's bound too: they are still filtered). Tools are
        parsed JSON: a tool that is not a JSON object (a dict) is malformed and skipped."""
        known: list[tuple[dict[str, Any], str, ToolAnnotations]] = []
        catalog = self._tools
        for tool in tools:
            if type(tool) is not dict:
                continue
            name = tool.get("name")
            if not isinstance(name, str):
                continue
            annotations = annotations_of(tool)
            if name in catalog or len(catalog) < MAX_TOOLS:
                catalog[name] = annotations
            known.append((tool, name, annotations))
        return known

    def hold(self, annotations: Mapping[str, ToolAnnotations]) -> None:
        """Decide these tools with these annotations (pinning: the approved ones, while an
        upstream's change that would lower them is not approved)."""
        catalog = self._tools
        for name, value in annotations.items():
            if name in catalog or len(catalog) < MAX_TOOLS:
                catalog[name] = value

    def __len__(self) -> int:
        return len(self._tools)
