"""From a server's `filters` config to its `SafetyChain` (or None: no filters, no work)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..config.model import FilterConfig, GuardFilterConfig, PoisoningFilterConfig, ServerConfig
from ..upstream.transport import UpstreamTransport
from .chain import Configured, SafetyChain, Selection
from .guard import ExternalGuard
from .matching import PatternFilter
from .poisoning import POISONING_RULES, PoisoningFilter
from .rules import RuleSet
from .secrets import SECRET_RULES
from .verdict import CallFilter, DefinitionFilter

__all__ = ["GuardTransports", "build_chain"]

# Where a guard's requests go: the gateway's pooled HTTP client bound to the guard's URL.
GuardTransports = Callable[[str], UpstreamTransport]


def build_chain(
    server: ServerConfig, index: int, secrets: Mapping[str, str], guard_transport: GuardTransports
) -> SafetyChain | None:
    if not server.filters:
        return None
    calls: list[Configured] = []
    definitions: list[tuple[DefinitionFilter, Selection]] = []
    for j, spec in enumerate(server.filters):
        selection = Selection(
            frozenset(spec.tools) if spec.tools is not None else None, frozenset(spec.skip_tools)
        )
        if isinstance(spec, PoisoningFilterConfig):
            definitions.append((_poisoning(spec), selection))
            continue
        secret = secrets.get(f"servers[{index}].filters[{j}].secret")
        call_filter = _call_filter(spec, secret, guard_transport)
        calls.append(Configured(call_filter, "arguments" in spec.screen, "result" in spec.screen, selection))
    return SafetyChain(server.name, calls, definitions)


def _call_filter(spec: FilterConfig, secret: str | None, guard_transport: GuardTransports) -> CallFilter:
    if isinstance(spec, GuardFilterConfig):
        credential = (spec.header.lower().encode(), secret.encode()) if secret is not None else None
        return ExternalGuard(
            spec.id,
            guard_transport(spec.url),
            timeout=spec.timeout_seconds,
            max_concurrency=spec.max_concurrency,
            fail_open=spec.on_failure == "allow",
            max_answer_bytes=spec.max_answer_bytes,
            credential=credential,
        )
    assert spec.type in ("secrets", "regex")
    if spec.type == "secrets":
        rules = [(name, SECRET_RULES[name]) for name in spec.rules or SECRET_RULES]
        ruleset = RuleSet(rules, max_input_chars=spec.max_input_chars)
    else:
        ruleset = RuleSet(list(spec.patterns.items()), max_input_chars=spec.max_input_chars)
    return PatternFilter(spec.id, ruleset, spec.action)


def _poisoning(spec: PoisoningFilterConfig) -> PoisoningFilter:
    names = spec.rules if spec.rules is not None else tuple(POISONING_RULES)
    rules = [*((name, POISONING_RULES[name]) for name in names), *spec.patterns.items()]
    ruleset = RuleSet(rules, max_input_chars=spec.max_input_chars)
    return PoisoningFilter(spec.id, ruleset, withholds=spec.mode == "enforce")
