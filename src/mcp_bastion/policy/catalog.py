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

    def learn(self, tools: Iterable[Any]) -> None:
        for tool in tools:
            if not isinstance(tool, Mapping):
                continue
            name = tool.get("name")
            if isinstance(name, str) and (name in self._tools or len(self._tools) < MAX_TOOLS):
                self._tools[name] = annotations_of(tool)

    def __len__(self) -> int:
        return len(self._tools)
