"""The Cedar check: a `CallCheck` that `ServerPolicy.decide` consults after scopes.

A call is allowed when some policy permits it and none forbids it (Cedar's own rule); every
other outcome is a `Refusal` naming the policies that decided. It fails closed: a policy that
errors while it is evaluated (an integer overflow, say) would be skipped by Cedar, which for a
`forbid` means allowing what it was written to stop, so any evaluation error refuses the call;
so do claims of the wrong shape, oversized arguments, and any failure of the engine itself.

A tool list asks `decide` about each tool with no arguments (`Call.params` is None). When some
policy reads the arguments, those questions are partially evaluated with the arguments
unknown: a tool is hidden only when the policies refuse it whatever the arguments, and listed
when some call of it could pass (each call is then decided in full). List answers are
remembered in one bounded cache per caller and tool (and minute, when a policy reads the
time), so a 200-tool list costs 200 evaluations once, not on every list.

Cost (docs/performance.md): Cedar's own work is mostly reading the request's JSON. So the
context carries only the attributes some policy reads, and the entities of a (caller, tool)
pair are parsed once into a handle that later calls reuse, adding only the call's arguments.
A call that puts no arguments to Cedar (no policy reads them, or its method has none) is a
pure function of its Cedar request: its answer is remembered by that request, exactly.

Notifications and the client's responses ask nothing of the server and are not put to Cedar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import NamedTuple

import cedarpy
import orjson

from ..auth.principal import Principal
from ..cache import BoundedCache
from ..mcp.calls import Call
from ..policy.decide import Permit, Refusal, ToolAnnotations
from .policies import PolicyBundle
from .request import (
    CedarRequest,
    PolicyInputError,
    PrincipalAttributes,
    TimeContext,
    build_request,
    cedar_uid,
)

__all__ = ["FORBIDDEN", "NOT_PERMITTED", "UNEVALUATED", "CedarCheck"]

log = logging.getLogger("mcp_bastion.cedar")

# Reasons a client may see (and the audit feed records): the gateway's words, no policy text,
# no claim or argument value.
FORBIDDEN = "refused by policy"
NOT_PERMITTED = "no policy permits this call"
UNEVALUATED = "refused: a policy could not be evaluated for this call"
_UNKNOWN_ARGUMENTS = {"__extn": {"fn": "unknown", "arg": "arguments"}}
# Keyed by what a client's token and an upstream's tool names choose: bounded.
ENTITY_HANDLES = 4096
LISTED = 20_000
DECIDED = 20_000


class _Verdict(NamedTuple):
    answer: Refusal | Permit | None


# (the principal's entity as JSON, the tool, its annotations when trusted, the minute when a
# policy reads the time): everything a list answer depends on.
_ListKey = tuple[bytes, str, ToolAnnotations | None, int]


class CedarCheck:
    def __init__(
        self,
        bundle: PolicyBundle,
        *,
        server: str,
        principals: PrincipalAttributes,
        trust_annotations: bool,
        timezone: str,
        max_argument_bytes: int,
        clock: Callable[[], float],
    ) -> None:
        self.bundle = bundle
        self.server = server
        self._policies = bundle.policies
        self._ids = tuple(source.id for source in bundle.sources)
        self._reads = bundle.context_reads
        self._timed = bool(self._reads & {"time", "now"})
        self._principals = principals
        self._trust = trust_annotations
        self._time = TimeContext(timezone)
        self._max_arguments = max_argument_bytes
        self._clock = clock
        self._handles: BoundedCache[bytes, cedarpy.Entities] = BoundedCache(ENTITY_HANDLES)
        self._callers: BoundedCache[bytes, cedarpy.Entities] = BoundedCache(ENTITY_HANDLES)
        self._listed: BoundedCache[_ListKey, _Verdict] = BoundedCache(LISTED)
        # Calls that carry no arguments to Cedar, by their whole Cedar request (exact: the
        # engine is deterministic): the entities' JSON, then the action, resource and context.
        self._decided: BoundedCache[bytes, _Verdict] = BoundedCache(DECIDED)
        # A list asks about every tool for one principal: its entity is built once.
        self._last: tuple[Principal, dict[str, object], bytes] | None = None

    def visibility(self, principal: Principal) -> Hashable:
        """What this check's answers about listed tools depend on of the caller, for the list
        caches (pinning/views.py): its entity, which holds every claim a policy can read, and
        the minute when some policy reads the time (the key `_listing` remembers answers by)."""
        return (self._principal(principal)[1], int(self._clock() // 60) if self._timed else 0)

    def check(
        self, principal: Principal, call: Call, annotations: ToolAnnotations | None
    ) -> Refusal | Permit | None:
        if call.method == "" or (call.id is None and call.method.startswith("notifications/")):
            return None
        try:
            if call.method == "tools/call" and call.params is None:
                return self._listing(principal, call, annotations)
            request = self.request_for(principal, call, annotations)
            if request.arguments is not None:
                return self._decide(request, self._entities(request), call)
            key = orjson.dumps((request.entities, request.action["id"], request.resource, request.context))
            hit = self._decided.get(key)
            if hit is not None:
                return hit.answer
            refusal = self._decide(request, self._entities(request), call)
            self._decided.put(key, _Verdict(refusal))
            return refusal
        except PolicyInputError as exc:
            return Refusal(str(exc))
        except Exception as exc:  # the engine itself failed: closed, and nothing of the call logged
            log.error("cedar: evaluating %s failed (%s); refused", call.method, type(exc).__name__)
            return Refusal(UNEVALUATED)

    def _decide(
        self, request: CedarRequest, entities: cedarpy.Entities, call: Call
    ) -> Refusal | Permit | None:
        result = self._authorize(request, entities)
        return self.verdict(result.decision, result.diagnostics.reasons, result.diagnostics.errors, call)

    def request_for(
        self, principal: Principal, call: Call, annotations: ToolAnnotations | None, *, known: bool = True
    ) -> CedarRequest:
        """The Cedar request `check` decides `call` with, at the clock's current minute."""
        return build_request(
            self._principal(principal)[0],
            call,
            annotations,
            server=self.server,
            trust_annotations=self._trust,
            time=self._time.at(self._clock()),
            reads=self._reads,
            max_argument_bytes=self._max_arguments,
            arguments_known=known,
        )

    def verdict(
        self, decision: cedarpy.Decision, reasons: list[str], errors: list[str], call: Call
    ) -> Refusal | Permit | None:
        """Cedar's answer as the gateway's: a permit or a refusal, each with the deciding ids."""
        if errors:
            failed = tuple(pid for pid in self._ids if any(f"policy `{pid}`" in error for error in errors))
            # Cedar's messages may quote values from the call: the log names the policies only.
            log.warning("cedar: %s %s refused: could not evaluate %s", call.method, call.name, failed or "it")
            return Refusal(UNEVALUATED, failed)
        if decision == cedarpy.Decision.Allow:
            # The permits that applied (Cedar's reasons), for the audit feed.
            return Permit(tuple(reasons)) if reasons else None
        if reasons:
            return Refusal(FORBIDDEN, tuple(reasons))
        return Refusal(NOT_PERMITTED)

    def _principal(self, principal: Principal) -> tuple[dict[str, object], bytes]:
        """The principal's entity, and its JSON (which says all a policy can know of it)."""
        last = self._last
        if last is not None and last[0] is principal:
            return last[1], last[2]
        entity = self._principals.entity(principal)
        identity = orjson.dumps(entity)
        self._last = (principal, entity, identity)
        return entity, identity

    def _entities(self, request: CedarRequest, *, call: bool = True) -> cedarpy.Entities:
        """The request's entities, parsed as little as possible: for a call, the caller, server
        and resource once per (caller, resource), as later calls of that tool by that caller
        reuse them; for a list, which asks once about each tool, the caller and server once per
        caller, the tool added. The call's arguments are added last."""
        if call:
            key = orjson.dumps(request.entities)
            entities = self._handles.get(key)
            if entities is None:
                entities = cedarpy.Entities.from_json_str(key.decode())
                self._handles.put(key, entities)
        else:
            caller = orjson.dumps(request.entities[:2])
            entities = self._callers.get(caller)
            if entities is None:
                entities = cedarpy.Entities.from_json_str(caller.decode())
                self._callers.put(caller, entities)
            if len(request.entities) > 2:
                entities = entities.with_added_json_str(orjson.dumps(request.entities[2:]).decode())
        if request.arguments is not None:
            entities = entities.with_added_json_str(orjson.dumps((request.arguments,)).decode())
        return entities

    def _authorize(self, request: CedarRequest, entities: cedarpy.Entities) -> cedarpy.AuthzResult:
        return cedarpy.is_authorized(
            {
                "principal": request.principal,
                "action": request.action,
                "resource": request.resource,
                "context": orjson.dumps(request.context).decode(),
            },
            self._policies,
            entities,
        )

    def _listing(
        self, principal: Principal, call: Call, annotations: ToolAnnotations | None
    ) -> Refusal | Permit | None:
        assert call.name is not None
        key = (
            self._principal(principal)[1],
            call.name,
            annotations if self._trust else None,
            int(self._clock() // 60) if self._timed else 0,
        )
        hit = self._listed.get(key)
        if hit is not None:
            return hit.answer
        request = self.request_for(principal, call, annotations, known=False)
        entities = self._entities(request, call=False)
        if "arguments" in self._reads:
            refusal = self._partial(request, entities, call)
        else:  # no policy reads the arguments: the full answer is the answer for every call
            refusal = self._decide(request, entities, call)
        self._listed.put(key, _Verdict(refusal))
        return refusal

    def _partial(
        self, request: CedarRequest, entities: cedarpy.Entities, call: Call
    ) -> Refusal | Permit | None:
        context = dict(request.context)
        context["arguments"] = _UNKNOWN_ARGUMENTS
        result = cedarpy.is_authorized_partial(
            {
                # Partial evaluation takes uids only as Cedar text.
                "principal": cedar_uid("User", request.principal["id"]),
                "action": cedar_uid("Action", request.action["id"]),
                "resource": cedar_uid(request.resource["type"], request.resource["id"]),
                "context": orjson.dumps(context).decode(),
            },
            self._policies,
            entities,
        )
        diagnostics = result.diagnostics
        if diagnostics.errors:
            return self.verdict(cedarpy.Decision.Deny, [], diagnostics.errors, call)
        if result.decision == cedarpy.Decision.Deny:
            # Refused whatever the arguments: hidden. `must_be_determining` are the forbids that
            # decided (none when no permit can apply).
            return self.verdict(result.decision, diagnostics.must_be_determining, [], call)
        return None  # allowed, or it depends on the arguments: listed, each call decided in full
