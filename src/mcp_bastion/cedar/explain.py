"""Why is a call allowed or refused? The answer `mcp-bastion policy explain` prints.

Offline: no IdP, no upstream. The caller supplies the token's claims, the JSON-RPC call, and
(for a tool) the annotations the upstream lists; the config supplies everything else. The
verdict comes from the same `ServerPolicy.decide` and the same `CedarCheck` the gateway
builds, at a time of the caller's choosing; then each policy is evaluated on its own against
the same request, to say which ones matched, and the request itself is shown, so "why" is
answered with the facts a rule looked at.
"""

from __future__ import annotations

import datetime
import json
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cedarpy
import orjson

from ..auth.jwt import principal_of_claims
from ..auth.principal import ANONYMOUS, Principal
from ..config import LoadedConfig
from ..config.model import BastionConfig, ServerConfig
from ..errors import ConfigError, InvalidToken, ProtocolError
from ..mcp.calls import Call, call_of
from ..mcp.jsonrpc import parse_body
from ..policy.decide import CallCheck, Decision, Refusal, ServerPolicy, ToolAnnotations, annotations_of
from ..policy.scopes import ScopeRegistry, published_scopes
from . import policy_checks
from .check import CedarCheck
from .policies import PolicySource
from .request import CedarRequest

__all__ = ["Explanation", "RuleOutcome", "explain_call", "render", "server_policy"]


@dataclass(frozen=True)
class RuleOutcome:
    source: PolicySource
    matched: bool
    error: str  # Cedar's message when the policy could not be evaluated (for the operator only)


@dataclass(frozen=True)
class Explanation:
    server: str
    call: Call
    principal: Principal
    annotations: ToolAnnotations | None
    at: datetime.datetime
    decision: Decision  # what the gateway decides
    granted: tuple[str, ...]  # the token's scopes, hierarchy expanded
    cedar: str  # "allow", "deny", or "off" (no policies for this server)
    request: CedarRequest | None
    rules: tuple[RuleOutcome, ...]
    listed: bool | None  # tools/call: whether the server's tools/list shows the tool
    hidden_by: tuple[str, ...]  # the policies that hide it from lists

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(scope for scope in self.decision.required if scope not in self.granted)

    def document(self) -> dict[str, Any]:
        """The explanation as JSON (`--json`)."""
        request = self.request
        return {
            "server": self.server,
            "method": self.call.method,
            "target": self.call.name,
            "at": self.at.isoformat(),
            "decision": "allow" if self.decision.allowed else "deny",
            "reason": self.decision.reason or ("" if self.decision.allowed else "insufficient_scope"),
            "policy_ids": list(self.decision.rules),
            "scopes": {
                "required": list(self.decision.required),
                "granted": list(self.granted),
                "missing": list(self.missing),
            },
            "cedar": self.cedar,
            "rules": [
                {
                    "id": rule.source.id,
                    "effect": rule.source.effect,
                    "where": rule.source.where,
                    "matched": rule.matched,
                    "error": rule.error or None,
                }
                for rule in self.rules
            ],
            "request": None
            if request is None
            else {
                "principal": request.entities[0],
                "action": request.action,
                "resource": next((e for e in request.entities if e["uid"] == request.resource), None),
                "context": request.context,
                "arguments": None if request.arguments is None else request.arguments["tags"],
            },
            "tools_list": None
            if self.listed is None
            else {"listed": self.listed, "policy_ids": list(self.hidden_by)},
        }


def server_policy(
    config: BastionConfig, server: ServerConfig, registry: ScopeRegistry, checks: tuple[CallCheck, ...]
) -> ServerPolicy:
    """The ServerPolicy `build_gateway` gives this server (a test keeps the two equal)."""
    return ServerPolicy(
        registry,
        {name: tool.scopes for name, tool in server.tools.items()},
        server.trust_annotations,
        server.destructive_scopes,
        enforce=server.auth,
        published=frozenset(published_scopes(registry, server)),
        checks=checks,
    )


def explain_call(
    loaded: LoadedConfig,
    *,
    claims: Mapping[str, Any],
    message: Mapping[str, Any],
    server: str | None = None,
    annotations: Mapping[str, Any] | None = None,
    at: datetime.datetime | None = None,
) -> Explanation:
    """Decide `message` (a JSON-RPC request, `jsonrpc` and `id` optional) for a token with
    `claims` on `server`, as the gateway would at `at` (default: now). ConfigError for input
    that the gateway would not get that far with."""
    config = loaded.config
    target = _server(config, server)
    when = at or datetime.datetime.now(datetime.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zoneinfo.ZoneInfo(config.policy.timezone))
    instant = when.timestamp()
    registry = ScopeRegistry.from_config(config.scopes)
    checks = policy_checks(loaded, registry, lambda: instant).get(target.name, ())
    policy = server_policy(config, target, registry, checks)
    principal = _principal(config, target, claims)
    call = _call(message)
    hints = annotations_of({"annotations": annotations}) if annotations is not None else None
    if call.method != "tools/call":
        hints = None
    decision = policy.decide(principal, call, hints)
    cedar = next((check for check in checks if isinstance(check, CedarCheck)), None)
    request: CedarRequest | None = None
    rules: tuple[RuleOutcome, ...] = ()
    verdict = "off"
    if cedar is not None and target.auth:
        request = cedar.request_for(principal, call, hints)
        rules = _rules(cedar, request)
        verdict = "deny" if isinstance(cedar.check(principal, call, hints), Refusal) else "allow"
    listed: bool | None = None
    hidden_by: tuple[str, ...] = ()
    if call.method == "tools/call" and call.name is not None:
        # As pipeline/listing.py asks: the tool as a call without arguments.
        entry = policy.decide(principal, Call("tools/call", call.name, None), hints)
        listed = entry.allowed or (entry.reachable and target.tools_list == "reachable")
        hidden_by = entry.rules
    granted = tuple(sorted(registry.expand(principal.scopes)))
    return Explanation(
        target.name,
        call,
        principal,
        hints,
        when,
        decision,
        granted,
        verdict,
        request,
        rules,
        listed,
        hidden_by,
    )


def _server(config: BastionConfig, name: str | None) -> ServerConfig:
    if name is None:
        if len(config.servers) == 1:
            return config.servers[0]
        names = ", ".join(server.name for server in config.servers)
        raise ConfigError(f"the config has several servers: name one with --server ({names})")
    for server in config.servers:
        if server.name == name:
            return server
    names = ", ".join(server.name for server in config.servers)
    raise ConfigError(f"no server named {name!r} in the config (servers: {names})")


def _principal(config: BastionConfig, server: ServerConfig, claims: Mapping[str, Any]) -> Principal:
    if not server.auth:
        return ANONYMOUS
    trusted = [
        p
        for p in config.identity_providers
        if not server.identity_providers or p.name in server.identity_providers
    ]
    issuer = claims.get("iss")
    provider = trusted[0] if issuer is None and len(trusted) == 1 else None
    if provider is None:
        provider = next((p for p in trusted if p.issuer == issuer), None)
        if provider is None:
            issuers = ", ".join(p.issuer for p in trusted)
            found = "no iss" if issuer is None else f"iss {issuer!r}"
            raise ConfigError(
                f"the token claims have {found}; server {server.name!r} trusts tokens from: {issuers}",
                hint='add "iss" to --token-claims',
            )
    try:
        return principal_of_claims(dict(claims), provider)
    except InvalidToken as exc:
        subject = provider.claims.subject
        raise ConfigError(f"{exc.message}: the claims need a non-empty string {subject!r}") from None


def _call(message: Mapping[str, Any]) -> Call:
    doc = {"jsonrpc": "2.0", "id": 1, **message}
    try:
        parsed = parse_body(orjson.dumps(doc), max_depth=64, max_batch=1, allow_batch=False)
        if parsed.messages[0].kind != "request":
            raise ConfigError("the call must be a JSON-RPC request (a method, and params if any)")
        return call_of(parsed.messages[0])
    except ProtocolError as exc:
        raise ConfigError(f"the call is not one the gateway would decide: {exc.message}") from None
    except TypeError:
        raise ConfigError("the call is not JSON the gateway could read") from None


def _rules(check: CedarCheck, request: CedarRequest) -> tuple[RuleOutcome, ...]:
    """Each policy alone against the request: a permit matches when it allows on its own, a
    forbid when it is among the reasons of its own denial."""
    entities = [*request.entities, *(() if request.arguments is None else (request.arguments,))]
    cedar_request = {
        "principal": request.principal,
        "action": request.action,
        "resource": request.resource,
        "context": orjson.dumps(request.context).decode(),
    }
    outcomes = []
    for source in check.bundle.sources:
        alone = json.dumps({"staticPolicies": {source.id: source.est}, "templates": {}, "templateLinks": []})
        result = cedarpy.is_authorized(cedar_request, cedarpy.PolicySet.from_json_str(alone), entities)
        errors = result.diagnostics.errors
        matched = not errors and source.id in result.diagnostics.reasons
        outcomes.append(RuleOutcome(source, matched, "; ".join(errors)))
    return tuple(outcomes)


def render(explanation: Explanation) -> str:
    """The explanation for a person: verdict first, then scopes, then each policy and the facts."""
    e = explanation
    d = e.decision
    call = f"{e.call.method} {e.call.name}" if e.call.name else e.call.method
    lines = [f"{call} on server {e.server}, at {e.at.isoformat()}"]
    if d.allowed:
        lines.append("decision: ALLOW")
    elif d.missing:
        reach = " (a step-up to them is offered)" if d.reachable else ""
        lines.append(f"decision: DENY (403 insufficient_scope: missing {' '.join(d.missing)}{reach})")
    else:
        rules = f" [{', '.join(d.rules)}]" if d.rules else ""
        lines.append(f"decision: DENY (403: {d.reason}){rules}")
    p = e.principal
    lines.append(f"principal: {p.subject} (issuer {p.issuer or '-'}, client {p.client_id or '-'})")
    lines.append(
        f"scopes: required {' '.join(d.required) or '(none)'}; granted {' '.join(e.granted) or '(none)'}; "
        + (f"missing {' '.join(e.missing)}" if e.missing else "nothing missing")
    )
    if e.call.method == "tools/call":
        hints = (
            "unknown (the worst case: not read-only, destructive)"
            if e.annotations is None
            else (
                f"read_only={str(e.annotations.read_only).lower()}, destructive={str(e.annotations.destructive).lower()}"
            )
        )
        lines.append(f"annotations: {hints}")
    if e.cedar == "off":
        lines.append("cedar: no policies for this server")
    else:
        lines.append(f"cedar: {e.cedar.upper()}")
        for rule in e.rules:
            mark = "ERROR" if rule.error else ("matched" if rule.matched else "no match")
            lines.append(f"  {mark:8} {rule.source.effect:6} {rule.source.id}  ({rule.source.where})")
            if rule.matched or rule.error:
                lines.extend(f"             {line}" for line in rule.source.text.strip().splitlines())
            if rule.error:
                lines.append(f"             error: {rule.error}")
        if not any(rule.matched and rule.source.effect == "permit" for rule in e.rules):
            lines.append("  no permit matched: Cedar refuses what no policy permits")
        if e.request is not None:
            lines.append("facts the policies saw:")
            lines.append(f"  principal {_json(e.request.entities[0]['attrs'])}")
            resource = next((x for x in e.request.entities if x["uid"] == e.request.resource), None)
            uid = e.request.resource
            lines.append(f"  action    Action::{_json(e.request.action['id'])}")
            attrs = f" {_json(resource['attrs'])}" if resource is not None else ""
            lines.append(f"  resource  {uid['type']}::{_json(uid['id'])}{attrs}")
            context = {k: v for k, v in e.request.context.items() if k != "arguments"}
            if e.request.arguments is not None:
                context["arguments"] = e.request.arguments["tags"]
            lines.append(f"  context   {_json(context)}")
    if e.listed is not None:
        by = f" (by {', '.join(e.hidden_by)})" if e.hidden_by else ""
        lines.append(f"tools/list: {'listed' if e.listed else 'hidden' + by}")
    return "\n".join(lines)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
