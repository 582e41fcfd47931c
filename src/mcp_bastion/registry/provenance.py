"""Why a tool needs the scopes it needs: a per-tool override, its annotations, or the default.

`requirement_of` mirrors `ServerPolicy.tool_requirement` (policy/decide.py) step for step and
adds where each answer comes from; `tests/registry/test_provenance.py` checks the two agree
over a table of cases, so neither can change without the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from ..policy.decide import ServerPolicy

__all__ = ["Requirement", "Source", "requirement_of"]

# override: `servers[].tools.<name>.scopes`; annotation: an explicit readOnlyHint or
# destructiveHint decided; default: nothing (trusted) said, so the tool counts as destructive.
Source = Literal["override", "annotation", "default"]


class Requirement(NamedTuple):
    scopes: tuple[str, ...]
    source: Source


def requirement_of(policy: ServerPolicy, name: str, tool: Mapping[str, Any] | None) -> Requirement:
    """The scopes a call of tool `name` needs, and where that comes from.

    `tool` is the upstream's definition (untrusted), or None for a tool the upstream does not
    list (a call naming it is decided without annotations)."""
    override = policy.tool_scopes.get(name)
    if override is not None:
        return Requirement(override, "override")  # config wins; annotations never relax it
    destructive = (
        policy.destructive_scopes if policy.destructive_scopes is not None else (policy.registry.write,)
    )
    if tool is None or not policy.trust_annotations:
        return Requirement(destructive, "default")
    hints = tool.get("annotations")
    if not isinstance(hints, Mapping):
        return Requirement(destructive, "default")
    # The same tests as `annotations_of`: only the JSON booleans count, anything else is absent.
    if hints.get("readOnlyHint") is True:
        return Requirement((policy.registry.read,), "annotation")
    destructive_hint = hints.get("destructiveHint")
    if destructive_hint is False:
        return Requirement((policy.registry.write,), "annotation")
    # MCP: destructiveHint defaults to true; only an explicit true is the annotation's doing.
    return Requirement(destructive, "annotation" if destructive_hint is True else "default")
