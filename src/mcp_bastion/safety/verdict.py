"""What a safety filter says, and the two shapes a filter takes.

A *call filter* sees a `tools/call` twice: its arguments before the call goes upstream, and
its result (or JSON-RPC error) before the answer reaches the client. A *definition filter*
sees each tool definition as the gateway learns it from a `tools/list`. Each answers with a
`Verdict`: allow, deny, or redact (with the value that replaces the one it saw).

A verdict names *which rules* matched (`aws-access-key-id`, `ignore-previous`), never the
text that matched: verdicts go to the audit feed, and what a filter detects is usually the
very thing that must not be written down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, NamedTuple, Protocol

__all__ = [
    "ALLOW",
    "CallContext",
    "CallFilter",
    "DefinitionFilter",
    "Phase",
    "Verdict",
    "audit_entry",
]

Phase = Literal["arguments", "result", "tool"]
Action = Literal["allow", "deny", "redact"]


class Verdict(NamedTuple):
    action: Action
    rules: tuple[str, ...] = ()  # rule ids that matched: safe to audit, never the matched text
    value: Any = None  # for "redact": what replaces the screened value


ALLOW: Final = Verdict("allow")


class CallContext(NamedTuple):
    """Who calls which tool where: what an external guard is told besides the value."""

    server: str
    tool: str  # "" when unknown (a response replayed on a resumed GET stream)
    subject: str | None
    client_id: str | None


class CallFilter(Protocol):
    """Screens a `tools/call`: its arguments, then its result or error."""

    @property
    def id(self) -> str: ...

    async def on_arguments(self, call: CallContext, arguments: Any) -> Verdict:
        """`arguments` as the client sent them (usually an object); may be changed in place
        only when the verdict is "redact"."""
        ...

    async def on_result(self, call: CallContext, value: Any, error: bool) -> Verdict:
        """`value` is the response's `result`, or its `error` object when `error` is true."""
        ...


class DefinitionFilter(Protocol):
    """Screens a tool definition as it is learned. "deny" flags the tool; `withholds` says
    whether a flagged tool is withheld (refused and hidden) or only recorded."""

    @property
    def id(self) -> str: ...

    @property
    def withholds(self) -> bool: ...

    def on_tool(self, tool: Mapping[str, Any]) -> Verdict: ...


def audit_entry(phase: Phase, filter_id: str, verdict: Verdict, action: str = "") -> str:
    """`result:secrets:redact:aws-access-key-id,jwt`: phase, filter, what it did, which rules."""
    entry = f"{phase}:{filter_id}:{action or verdict.action}"
    return f"{entry}:{','.join(verdict.rules)}" if verdict.rules else entry
