"""Which buckets one request counts against: each rule that applies to each of its calls,
keyed on verified identity only, with the calls of a batch added up per bucket."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from ..auth.principal import Principal
from ..cache import BoundedCache
from ..mcp.calls import Call
from .config import QuotaRule
from .store import Ask

__all__ = ["QuotaPlan", "bucket_key"]


def bucket_key(rule: QuotaRule, principal: Principal, server: str, call: Call) -> str:
    """A digest of the rule and the key parts: fixed-size keys, whatever a tool name holds.

    The subject and the client id are only unique per issuer, so the issuer goes with them;
    parts are a JSON list, so no choice of names can make two different keys collide.
    """
    return _digest(_Rule(rule).parts(principal, server, call))


def _digest(parts: tuple[str | None, ...]) -> str:
    return hashlib.blake2b(orjson.dumps(parts), digest_size=16).hexdigest()


class _Rule:
    """A rule as the request path reads it: plain attributes and sets, read per call."""

    def __init__(self, rule: QuotaRule) -> None:
        self.rule = rule
        self.name = rule.name
        self.key = rule.key
        self.servers = frozenset(rule.servers) if rule.servers is not None else None
        self.methods = frozenset(rule.methods) if rule.methods is not None else None
        self.tools = frozenset(rule.tools) if rule.tools is not None else None
        self.tool_calls_only = rule.tools is not None or "tool" in rule.key
        self.interval = rule.interval_us
        self.burst = rule.capacity

    def counts(self, call: Call) -> bool:
        method = call.method
        if call.id is None or not method:
            return False  # notifications and a client's responses ask the upstream for nothing
        if self.methods is not None and method not in self.methods:
            return False
        if self.tool_calls_only:
            return method == "tools/call" and (self.tools is None or call.name in self.tools)
        return True

    def parts(self, principal: Principal, server: str, call: Call) -> tuple[str | None, ...]:
        parts: list[str | None] = [self.name]
        for part in self.key:
            if part == "subject":
                parts += ("s", principal.issuer, principal.subject)
            elif part == "client":
                parts += ("c", principal.issuer, principal.client_id)
            elif part == "server":
                parts += ("v", server)
            else:
                parts += ("t", call.name)
        return tuple(parts)


class QuotaPlan:
    def __init__(self, rules: Sequence[QuotaRule]) -> None:
        self._rules = tuple(_Rule(rule) for rule in rules)
        self._by_server: dict[str, tuple[_Rule, ...]] = {}
        # Digests of recent keys: a caller's next request skips the hashing. Bounded (the parts
        # may hold long subjects and tool names), so at most a few MB whoever calls.
        self._digests: BoundedCache[tuple[str | None, ...], str] = BoundedCache(1024)

    def _rules_for(self, server: str) -> tuple[_Rule, ...]:
        rules = self._by_server.get(server)
        if rules is None:
            rules = tuple(r for r in self._rules if r.servers is None or server in r.servers)
            self._by_server[server] = rules
        return rules

    def asks(self, principal: Principal, server: str, calls: Sequence[Call]) -> list[tuple[Ask, QuotaRule]]:
        found: dict[str, tuple[Ask, QuotaRule]] = {}
        digests = self._digests
        for rule in self._rules_for(server):
            for call in calls:
                if not rule.counts(call):
                    continue
                parts = rule.parts(principal, server, call)
                key = digests.get(parts)
                if key is None:
                    key = _digest(parts)
                    digests.put(parts, key)
                known = found.get(key)
                cost = 1 if known is None else known[0].cost + 1
                found[key] = (Ask(key, rule.interval, rule.burst, cost), rule.rule)
        return list(found.values())
