"""The one authorization decision: which scopes a call needs, and whether the caller has them.

`ServerPolicy.decide(principal, call, annotations)` is the single decision point: the
authorize stage asks it for every call, and the `tools/list` filter asks it for every tool
("may this caller call it?"), so what a caller sees and what it may do cannot drift apart.

Scopes come first; then every `CallCheck` of the server (a policy engine, pinned tool
definitions) may refuse the call for a reason no step-up can fix. A check is consulted
even when scopes already refuse, so a list never offers a step-up to a call a check would
refuse anyway. Nothing here touches the network, the clock or globals; tests drive it with
tables (a check that needs the time is handed a clock when it is built).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..auth.principal import Principal
from ..mcp.calls import Call
from .scopes import ScopeRegistry

__all__ = [
    "OPEN_METHODS",
    "READ_METHODS",
    "CallCheck",
    "Decision",
    "Permit",
    "Refusal",
    "ServerPolicy",
    "ToolAnnotations",
    "annotations_of",
]

# Listing and reading resources and prompts: the read scope ("Resources and prompts are
# covered by read scopes").
READ_METHODS = frozenset(
    {
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
    }
)
# Protocol plumbing any authenticated caller may use. tools/list is open because its result
# is filtered to what the caller may call.
OPEN_METHODS = frozenset(
    {"initialize", "ping", "server/discover", "tools/list", "logging/setLevel", "subscriptions/listen", ""}
)


class ToolAnnotations(NamedTuple):
    read_only: bool = False
    # MCP tools: destructiveHint defaults to true when the tool is not read-only.
    destructive: bool = True


_NO_ANNOTATIONS = ToolAnnotations()


def annotations_of(tool: Mapping[str, Any]) -> ToolAnnotations:
    """The hints of one tool definition from an upstream (untrusted: booleans or defaults)."""
    raw = tool.get("annotations")
    # Parsed JSON gives dicts: checked first, the ABC check (slow, per tool) only otherwise.
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return _NO_ANNOTATIONS
    read_only = raw.get("readOnlyHint") is True
    destructive = raw.get("destructiveHint") is not False
    return ToolAnnotations(read_only, destructive)


class Decision(NamedTuple):
    """The verdict on one call: `required` is what it needs, `missing` what the caller lacks
    (empty when allowed); `reachable` says a denied call could be allowed after a step-up,
    every missing scope being one this server publishes in its metadata. A call a check
    refused has `reason` (the gateway's own words, safe to show) and the `rules` that
    decided (for the audit feed), and is never reachable; an allowed call has the `rules` of
    the checks that permitted it explicitly (a Cedar `permit`), if any."""

    allowed: bool
    required: tuple[str, ...]
    missing: tuple[str, ...] = ()
    reachable: bool = False
    reason: str = ""
    rules: tuple[str, ...] = ()


class Refusal(NamedTuple):
    """A check's "no": why, in words safe to show a client, and which rules decided."""

    reason: str
    rules: tuple[str, ...] = ()


class Permit(NamedTuple):
    """A check's explicit "yes": the rules that allowed the call, for the audit feed."""

    rules: tuple[str, ...]


class CallCheck(Protocol):
    """A check beyond scopes. Pure and fast: it runs per call and per listed tool. None:
    nothing to say (the call passes this check); a `Permit` passes it naming the rules."""

    def check(
        self, principal: Principal, call: Call, annotations: ToolAnnotations | None
    ) -> Refusal | Permit | None: ...


@dataclass(frozen=True)
class ServerPolicy:
    registry: ScopeRegistry
    tool_scopes: Mapping[str, tuple[str, ...]]
    trust_annotations: bool = True
    destructive_scopes: tuple[str, ...] | None = None
    # False only for a server with auth switched off: every call is allowed, scopes still named.
    enforce: bool = True
    # The server's `scopes_supported` (RFC 9728): what a client can ask the IdP for.
    published: frozenset[str] = frozenset()
    checks: tuple[CallCheck, ...] = ()
    # One allowing Decision per requirement (a handful per server): a 200-tool list allocates none.
    _allowed: dict[tuple[str, ...], Decision] = field(default_factory=dict, compare=False, repr=False)

    def decide(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Decision:
        """May `principal` make `call`? `annotations` are the target tool's, when known."""
        required = self.requirement(call, annotations)
        return self._verdict(principal, call, annotations, required, self.registry.expand(principal.scopes))

    def decide_tool(
        self, principal: Principal, name: str, annotations: ToolAnnotations | None, granted: frozenset[str]
    ) -> Decision:
        """`decide()` for a `tools/call` of `name`, in the form the list filter asks it for every
        listed tool: `granted` is `registry.expand(principal.scopes)`, expanded once per list."""
        required = self.tool_requirement(name, annotations)
        if self.checks:
            return self._verdict(principal, Call("tools/call", name, None), annotations, required, granted)
        if not self.enforce or granted.issuperset(required):
            allowed = self._allowed.get(required)
            if allowed is None:
                allowed = Decision(True, required)
                if len(self._allowed) < 256:  # requirements come from config and the registry: few
                    self._allowed[required] = allowed
            return allowed
        return self._denied(required, granted)

    def _verdict(
        self,
        principal: Principal,
        call: Call,
        annotations: ToolAnnotations | None,
        required: tuple[str, ...],
        granted: frozenset[str],
    ) -> Decision:
        if not self.enforce:
            return Decision(True, required)
        permitted: tuple[str, ...] = ()
        for check in self.checks:
            answer = check.check(principal, call, annotations)
            if answer is None:
                continue
            if isinstance(answer, Permit):
                permitted += answer.rules
                continue
            return Decision(False, required, (), False, answer.reason, answer.rules)
        if granted.issuperset(required):
            return Decision(True, required, rules=permitted) if permitted else Decision(True, required)
        return self._denied(required, granted)

    def _denied(self, required: tuple[str, ...], granted: frozenset[str]) -> Decision:
        missing = tuple(scope for scope in required if scope not in granted)
        return Decision(False, required, missing, self.published.issuperset(missing))

    def tool_requirement(self, tool: str, annotations: ToolAnnotations | None) -> tuple[str, ...]:
        override = self.tool_scopes.get(tool)
        if override is not None:
            return override  # config wins; annotations never relax it
        if annotations is None or not self.trust_annotations:
            return self._destructive()
        if annotations.read_only:
            return (self.registry.read,)
        return self._destructive() if annotations.destructive else (self.registry.write,)

    def requirement(self, call: Call, annotations: ToolAnnotations | None) -> tuple[str, ...]:
        if call.method == "tools/call":
            assert call.name is not None
            return self.tool_requirement(call.name, annotations)
        if call.method in READ_METHODS:
            return (self.registry.read,)
        if call.method in OPEN_METHODS or (call.id is None and call.method.startswith("notifications/")):
            return ()  # a `notifications/…` name on a request (with an id) is just an unknown method
        # Unknown methods are default-deny for everyone but administrators.
        return (self.registry.admin,)

    def _destructive(self) -> tuple[str, ...]:
        return self.destructive_scopes if self.destructive_scopes is not None else (self.registry.write,)
