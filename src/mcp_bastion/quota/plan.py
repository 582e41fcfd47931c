"""Which buckets one request counts against: each rule that applies to each of its calls,
keyed on verified identity only, with the calls of a batch added up per bucket."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from ..auth.principal import Principal
from ..mcp.calls import Call
from .config import QuotaRule
from .store import Ask

__all__ = ["QuotaPlan", "bucket_key"]


def bucket_key(rule: QuotaRule, principal: Principal, server: str, call: Call) -> str:
    """A digest of the rule and the key parts: fixed-size keys, whatever a tool name holds.

    The subject and the client id are only unique per issuer, so the issuer goes with them;
    parts are a JSON list, so no choice of names can make two different keys collide.
    """
    parts: list[str | None] = [rule.name]
    for part in rule.key:
        if part == "subject":
            parts += ("s", principal.issuer, principal.subject)
        elif part == "client":
            parts += ("c", principal.issuer, principal.client_id)
        elif part == "server":
            parts += ("v", server)
        else:
            parts += ("t", call.name)
    return hashlib.blake2b(orjson.dumps(parts), digest_size=16).hexdigest()


def _counts(rule: QuotaRule, call: Call) -> bool:
    if call.id is None or not call.method:
        return False  # notifications and a client's responses ask the upstream for nothing
    if rule.methods is not None and call.method not in rule.methods:
        return False
    if rule.tools is not None or "tool" in rule.key:
        return call.method == "tools/call" and (rule.tools is None or call.name in rule.tools)
    return True


class QuotaPlan:
    def __init__(self, rules: Sequence[QuotaRule]) -> None:
        self._rules = tuple(rules)
        self._by_server: dict[str, tuple[QuotaRule, ...]] = {}

    def rules_for(self, server: str) -> tuple[QuotaRule, ...]:
        rules = self._by_server.get(server)
        if rules is None:
            rules = tuple(r for r in self._rules if r.servers is None or server in r.servers)
            self._by_server[server] = rules
        return rules

    def asks(self, principal: Principal, server: str, calls: Sequence[Call]) -> list[tuple[Ask, QuotaRule]]:
        found: dict[str, tuple[Ask, QuotaRule]] = {}
        for rule in self.rules_for(server):
            for call in calls:
                if not _counts(rule, call):
                    continue
                key = bucket_key(rule, principal, server, call)
                known = found.get(key)
                cost = 1 if known is None else known[0].cost + 1
                found[key] = (Ask(key, rule.interval_us, rule.capacity, cost), rule)
        return list(found.values())
