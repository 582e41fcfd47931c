"""One approved tool definition (a pin), how a live definition compares with it, and the
annotation ratchet.

Annotations are the upstream's own claim about a tool's blast radius, and they choose the
scopes a call needs (`ServerPolicy.tool_requirement`). An upstream that flips a tool from
destructive to read-only would lower what a caller needs to call it, at once, unless the
gateway holds on to the approved claim: until a change is approved, a tool is judged by the
more dangerous of its pinned and live annotations (`stricter`), in every mode that pins.
Raising is never held back: a tool that now says it destroys data needs the higher scope at
once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from ..policy.decide import ToolAnnotations, annotations_of
from .canonical import definition_digest, field_digests, pinned_definition

__all__ = ["Pin", "Sighting", "Status", "ToolChange", "changed_fields", "pin_of", "sighting_of", "stricter"]

# approved: the definition is the pinned one; added: no pin for this name; changed: it differs
# from its pin; unpinnable: it cannot be canonicalized (too deep), so it matches no pin.
Status = Literal["approved", "added", "changed", "unpinnable"]


class Pin(NamedTuple):
    """An approved definition: its digest, the annotations it claimed, each member's digest
    (to say which parts changed), and the definition itself when a lockfile holds it."""

    digest: str
    annotations: ToolAnnotations
    fields: Mapping[str, str]
    definition: Mapping[str, Any] | None = None


class Sighting(NamedTuple):
    """A live definition as hashed: None as digest when it cannot be canonicalized."""

    digest: str | None
    definition: Mapping[str, Any]


def sighting_of(tool: Mapping[str, Any]) -> Sighting:
    definition = pinned_definition(tool)
    try:
        return Sighting(definition_digest(definition), definition)
    except ValueError:
        return Sighting(None, definition)


def pin_of(sighting: Sighting, *, keep_definition: bool = False) -> Pin:
    """A pin of what was seen (record mode's first sight, or `mcp-bastion pin`)."""
    assert sighting.digest is not None
    definition = sighting.definition
    return Pin(
        sighting.digest,
        annotations_of(definition),
        field_digests(definition),
        definition if keep_definition else None,
    )


def changed_fields(pin: Pin, sighting: Sighting) -> tuple[str, ...]:
    """The members that differ between the pin and the live definition, in a stable order."""
    try:
        live = field_digests(sighting.definition)
    except ValueError:
        return tuple(sorted(set(pin.fields) | set(sighting.definition)))
    names = sorted(set(pin.fields) | set(live))
    return tuple(name for name in names if pin.fields.get(name) != live.get(name))


def _risk(annotations: ToolAnnotations) -> int:
    # The order tool_requirement maps to scopes: read-only < writes < destructive (or unknown).
    if annotations.read_only:
        return 0
    return 2 if annotations.destructive else 1


def stricter(pinned: ToolAnnotations, live: ToolAnnotations) -> ToolAnnotations:
    """The annotations to decide with while a change is not approved: the live ones when they
    claim at least the pinned blast radius, else the pinned ones."""
    return pinned if _risk(pinned) > _risk(live) else live


class ToolChange(NamedTuple):
    """A definition that is not the approved one, as first seen by this process: what the
    log line and the audit event say. `withheld`: enforce mode keeps it from callers."""

    server: str
    tool: str
    status: Status
    pinned: str | None  # the approved digest (None: no pin for this name)
    seen: str | None  # the live digest (None: it cannot be canonicalized)
    fields: tuple[str, ...]  # the members that differ from the pin
    withheld: bool
    lowered: bool  # its annotations claim less than the pinned ones: the pinned ones still apply
