"""The Cedar schema the gateway generates from its config: what a policy may talk about.

Policies are validated against it when they are loaded (`check-config`, `serve`, a reload), so a
misspelt attribute (`principal.grups`) or a comparison of a set with a string is a config error,
never a rule that silently never matches. The shapes:

    principal  User::"<sub>"       subject, issuer, client, scopes (granted, hierarchy expanded),
                                   and one attribute per `policy.claims` entry
    action     Action::"<method>"  the MCP method (`tools/call`, `resources/read`, …);
                                   any other method is Action::"other" with context.method
    resource   Tool::"<name>"      tools/call: name, server, read_only, destructive
               Resource::"<uri>"   resources/read, subscribe, unsubscribe: uri, server
               Prompt::"<name>"    prompts/get: name, server
               Server::"<name>"    everything else; the parent of every tool, resource and prompt
    context    time {hour, minute, weekday}, now (a datetime, to the minute), and for tools/call
               and prompts/get the call's arguments (an Arguments entity: one String tag per
               top-level argument)

No Cedar library is needed here: the schema is plain data (Cedar's JSON schema format).
"""

from __future__ import annotations

from typing import Any, Final

from ..config.model import PolicyConfig

__all__ = [
    "ACTIONS",
    "ARGUMENT_ACTIONS",
    "CONTEXT_ATTRIBUTES",
    "OTHER_ACTION",
    "RESOURCE_TYPES",
    "cedar_schema",
]

# The methods a policy can name, and the resource type each one is about.
RESOURCE_TYPES: Final = {
    "tools/call": "Tool",
    "resources/read": "Resource",
    "resources/subscribe": "Resource",
    "resources/unsubscribe": "Resource",
    "prompts/get": "Prompt",
    **dict.fromkeys(
        (
            "initialize",
            "ping",
            "server/discover",
            "subscriptions/listen",
            "logging/setLevel",
            "tools/list",
            "resources/list",
            "resources/templates/list",
            "prompts/list",
            "completion/complete",
            "tasks/get",
            "tasks/result",
            "tasks/list",
            "tasks/cancel",
        ),
        "Server",
    ),
}
OTHER_ACTION: Final = "other"  # any request method not above; context.method names it
ACTIONS: Final = (*RESOURCE_TYPES, OTHER_ACTION)
# Calls whose params carry arguments a policy may inspect.
ARGUMENT_ACTIONS: Final = frozenset({"tools/call", "prompts/get"})
CONTEXT_ATTRIBUTES: Final = frozenset({"time", "now", "arguments", "method"})

_STRING: Final = {"type": "String"}
_BOOL: Final = {"type": "Boolean"}
_LONG: Final = {"type": "Long"}
_STRINGS: Final = {"type": "Set", "element": _STRING}


def _record(**attributes: Any) -> dict[str, Any]:
    return {"type": "Record", "attributes": attributes}


def cedar_schema(policy: PolicyConfig) -> dict[str, Any]:
    """The schema (Cedar JSON schema format, no namespace) for this config's policies."""
    claims = {name: _STRINGS if claim.type == "set" else _STRING for name, claim in policy.claims.items()}
    user = _record(subject=_STRING, issuer=_STRING, client=_STRING, scopes=_STRINGS, **claims)
    named = _record(name=_STRING, server=_STRING)
    entity_types = {
        "User": {"shape": user},
        "Server": {"shape": _record(name=_STRING)},
        "Tool": {
            "memberOfTypes": ["Server"],
            "shape": _record(name=_STRING, server=_STRING, read_only=_BOOL, destructive=_BOOL),
        },
        "Resource": {"memberOfTypes": ["Server"], "shape": _record(uri=_STRING, server=_STRING)},
        "Prompt": {"memberOfTypes": ["Server"], "shape": named},
        # One per call: its tags are the call's top-level arguments (Cedar records are closed,
        # tags are not, so a policy can ask `hasTag("path")` of any tool's arguments).
        "Arguments": {"tags": _STRING},
    }
    time = {
        "time": _record(hour=_LONG, minute=_LONG, weekday=_LONG),
        "now": {"type": "Extension", "name": "datetime"},
    }
    actions = {}
    for action in ACTIONS:
        context = dict(time)
        if action in ARGUMENT_ACTIONS:
            context["arguments"] = {"type": "Entity", "name": "Arguments"}
        if action == OTHER_ACTION:
            context["method"] = _STRING
        actions[action] = {
            "appliesTo": {
                "principalTypes": ["User"],
                "resourceTypes": [RESOURCE_TYPES.get(action, "Server")],
                "context": _record(**context),
            }
        }
    return {"": {"entityTypes": entity_types, "actions": actions}}
