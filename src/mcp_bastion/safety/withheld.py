"""Tools withheld by a definition filter, as a check of the server's one decision point.

`ServerPolicy.decide` asks every check for every call and every listed tool, so a withheld
tool is refused on call and hidden from lists by the same answer, and no step-up is offered
for it. The set follows what the gateway last learned: a tool whose definition is flagged
is withheld; relisted clean, it is released.
"""

from __future__ import annotations

from typing import Final

from ..auth.principal import Principal
from ..mcp.calls import Call
from ..policy.decide import Refusal, ToolAnnotations

__all__ = ["WITHHELD_REASON", "WithheldTools"]

# Shown to the client: says a policy refused, never what was found in the definition.
WITHHELD_REASON: Final = "tool withheld by a safety policy"
MAX_WITHHELD: Final = 10_000  # as many as the catalog holds (policy/catalog.py)


class WithheldTools:
    __slots__ = ("_tools",)

    def __init__(self) -> None:
        self._tools: dict[str, Refusal] = {}

    def withhold(self, tool: str, rules: tuple[str, ...]) -> None:
        if tool in self._tools or len(self._tools) < MAX_WITHHELD:
            self._tools[tool] = Refusal(WITHHELD_REASON, rules)

    def release(self, tool: str) -> None:
        self._tools.pop(tool, None)

    def __contains__(self, tool: object) -> bool:
        return tool in self._tools

    def visibility(self, principal: Principal) -> None:
        """What this check's answer depends on of the caller: nothing (a list filtered with it
        may be shared by callers who hold the same scopes). What is withheld follows the
        definitions of the list being answered, judged before it is filtered."""
        return

    def check(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Refusal | None:
        if call.method != "tools/call" or not self._tools:
            return None
        return self._tools.get(call.name or "")
