"""From the gateway's view of a call to a Cedar request: principal, action, resource, context,
and the entities they name (the shapes are in `schema.py`).

Everything here is pure and built from what the gateway verified or learned itself: the
principal from the verified token's claims, the annotations from the tool list the gateway
read (and only when `trust_annotations` lets them count), the time from the clock handed in.
A claim of a shape the schema does not allow, or arguments past the size cap, raise
`PolicyInputError`: the call is refused rather than judged on partial facts.
"""

from __future__ import annotations

import datetime
import unicodedata
import zoneinfo
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import orjson

from ..auth.principal import Principal
from ..config.model import PolicyClaim, PolicyConfig
from ..mcp.calls import MAX_NAME_CHARS, Call
from ..policy.decide import ToolAnnotations
from ..policy.scopes import ScopeRegistry
from .schema import ARGUMENT_ACTIONS, OTHER_ACTION, RESOURCE_TYPES

__all__ = [
    "ARGUMENTS_UID",
    "CedarRequest",
    "PolicyInputError",
    "PrincipalAttributes",
    "TimeContext",
    "build_request",
    "cedar_uid",
]

ARGUMENTS_UID: Final = {"type": "Arguments", "id": "call"}
# What an unknown or untrusted tool is taken to be: the worst case (MCP: destructiveHint
# defaults to true when a tool is not read-only).
_WORST_CASE = ToolAnnotations(read_only=False, destructive=True)


class PolicyInputError(Exception):
    """The call cannot be put to the policies as the schema describes it; it is refused.
    The message is the gateway's own words and names no claim or argument value."""


class CedarRequest(NamedTuple):
    """One call as Cedar sees it. `entities` are the principal, the server and the resource
    (the same for every call of one caller to one tool); `arguments` is the call's Arguments
    entity, when a policy reads them."""

    principal: dict[str, str]
    action: dict[str, str]
    resource: dict[str, str]
    context: dict[str, Any]
    entities: list[dict[str, Any]]
    arguments: dict[str, Any] | None = None


class PrincipalAttributes:
    """The principal entity of a verified token: subject, issuer, client, expanded scopes, and
    the configured claims (`policy.claims`)."""

    def __init__(self, policy: PolicyConfig, registry: ScopeRegistry) -> None:
        self._claims = tuple(policy.claims.items())
        self._registry = registry

    def entity(self, principal: Principal) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "subject": principal.subject,
            "issuer": principal.issuer,
            "client": principal.client_id or "",
            "scopes": sorted(self._registry.expand(principal.scopes)),
        }
        for name, claim in self._claims:
            attrs[name] = _claim_value(principal.claims, name, claim)
        return {"uid": {"type": "User", "id": principal.subject}, "attrs": attrs, "parents": []}


def _claim_value(claims: Mapping[str, Any], name: str, claim: PolicyClaim) -> Any:
    value: Any = claims
    for key in (claim.claim,) if isinstance(claim.claim, str) else claim.claim:
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None:
        return [] if claim.type == "set" else ""
    if claim.type == "string":
        if isinstance(value, str):
            return value
    elif isinstance(value, str):
        return [value]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    expected = "text" if claim.type == "string" else "a list of strings"
    # The claim's value is not repeated: it came from a token.
    raise PolicyInputError(f"the token's claim for principal.{name} is not {expected}")


class TimeContext:
    """`context.time` and `context.now` for a moment, to the minute (so a tool list decided at
    12:00:10 and a call at 12:00:50 see the same time)."""

    def __init__(self, timezone: str) -> None:
        self._zone = zoneinfo.ZoneInfo(timezone)
        self._minute = -1
        self._context: dict[str, Any] = {}

    def at(self, when: float) -> dict[str, Any]:
        minute = int(when // 60)
        if minute != self._minute:
            utc = datetime.datetime.fromtimestamp(minute * 60, datetime.UTC)
            local = utc.astimezone(self._zone)
            self._context = {
                "time": {"hour": local.hour, "minute": local.minute, "weekday": local.isoweekday()},
                "now": {"__extn": {"fn": "datetime", "arg": utc.strftime("%Y-%m-%dT%H:%M:%SZ")}},
            }
            self._minute = minute
        return self._context


def build_request(
    principal: dict[str, Any],
    call: Call,
    annotations: ToolAnnotations | None,
    *,
    server: str,
    trust_annotations: bool,
    time: dict[str, Any],
    reads: frozenset[str],
    max_argument_bytes: int,
    arguments_known: bool = True,
) -> CedarRequest:
    """The Cedar request for `call` by the principal entity `principal`. The context holds
    only what some policy `reads`; with `arguments_known` false (a tool list) the arguments are
    left out, for the caller to mark unknown."""
    method = call.method
    resource_type = RESOURCE_TYPES.get(method)
    action = method if resource_type is not None else OTHER_ACTION
    server_uid = {"type": "Server", "id": server}
    server_entity = {"uid": server_uid, "attrs": {"name": server}, "parents": []}
    entities = [principal, server_entity]
    context = {name: value for name, value in time.items() if name in reads}
    if resource_type is None:
        if "method" in reads:
            context["method"] = method
        resource = server_uid
    elif resource_type == "Server":
        resource = server_uid
    else:
        resource = {"type": resource_type, "id": _target(call)}
        entities.append(_resource_entity(resource, server, annotations, trust_annotations))
    arguments = None
    if action in ARGUMENT_ACTIONS and "arguments" in reads and arguments_known:
        arguments = _arguments_entity(call.params, max_argument_bytes)
        context["arguments"] = {"__entity": ARGUMENTS_UID}
    return CedarRequest(
        principal["uid"], {"type": "Action", "id": action}, resource, context, entities, arguments
    )


def _target(call: Call) -> str:
    if call.name is not None:
        return call.name
    # resources/subscribe and unsubscribe: call_of names only the targets it must check.
    uri = (call.params or {}).get("uri")
    if not isinstance(uri, str) or not uri or len(uri) > MAX_NAME_CHARS:
        raise PolicyInputError(f'{call.method} needs a non-empty string "uri" to be decided by policy')
    return uri


def _resource_entity(
    uid: dict[str, str], server: str, annotations: ToolAnnotations | None, trust: bool
) -> dict[str, Any]:
    kind, name = uid["type"], uid["id"]
    attrs: dict[str, Any]
    if kind == "Tool":
        hints = annotations if annotations is not None and trust else _WORST_CASE
        attrs = {
            "name": name,
            "server": server,
            "read_only": hints.read_only,
            # MCP: destructiveHint means something only when readOnlyHint is false; it defaults
            # to true, so `annotations_of` calls a read-only tool that leaves it out destructive.
            "destructive": hints.destructive and not hints.read_only,
        }
    elif kind == "Resource":
        attrs = {"uri": name, "server": server}
    else:
        attrs = {"name": name, "server": server}
    return {"uid": uid, "attrs": attrs, "parents": [{"type": "Server", "id": server}]}


def _arguments_entity(params: Mapping[str, Any] | None, max_bytes: int) -> dict[str, Any]:
    arguments = (params or {}).get("arguments")
    tags: dict[str, str] = {}
    if arguments is not None:
        if not isinstance(arguments, dict):
            raise PolicyInputError("the call's arguments are not an object, so no policy can judge them")
        size = len(orjson.dumps(arguments))
        if size > max_bytes:
            raise PolicyInputError(
                f"the call's arguments are {size} bytes, more than policies may be shown "
                f"(policy.max_argument_bytes: {max_bytes})"
            )
        for key, value in arguments.items():
            # Strings as they are; anything else as its JSON text (`5`, `true`, `{"a":1}`).
            tags[key] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return {"uid": ARGUMENTS_UID, "attrs": {}, "parents": [], "tags": tags}


def cedar_uid(kind: str, identifier: str) -> str:
    """`Kind::"id"` in the normalized form Cedar's parser insists on for request uids
    (partial evaluation takes no other form): Rust's `str::escape_debug` of the id. Python's
    `isprintable` and Rust's `is_printable` share their definition; should a character still
    be escaped differently (Unicode versions differ), Cedar refuses the uid and the call that
    needed it is refused."""
    out = []
    for i, char in enumerate(identifier):
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif (i == 0 and unicodedata.category(char) in ("Mn", "Me")) or not char.isprintable():
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return f'{kind}::"{"".join(out)}"'


_ESCAPES: Final = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"', "'": "\\'"}
