"""A server's pins and what the gateway last saw of its tools: the state the list filter and
the call check read.

Every tool list the gateway learns (a client's `tools/list` answer, or its own catalog fetch)
goes through `ToolPins.learn`, which judges each definition against its pin:

- `record`: a name seen for the first time is pinned as it is (first seen is trusted), unless
  a lockfile is the approval; a definition that differs from its pin is logged and audited
  once, and decided with the stricter of its pinned and live annotations;
- `enforce` (pins from a lockfile): as `record`, and a changed or unpinned tool is withheld:
  `PinCheck` refuses it, so lists hide it and calls get a JSON-RPC error;
- `off`: nothing is hashed or remembered.

A pin is never forgotten when its tool disappears, so a tool removed and re-added is judged
against its old pin, not trusted anew. Hashing happens once per distinct list: a list the
upstream sends again byte for byte finds its `CatalogView`, with the filtered lists already
answered from it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final, Literal

import orjson

from ..auth.principal import Principal
from ..cache import BoundedCache
from ..mcp.calls import Call
from ..policy.catalog import ToolCatalog
from ..policy.decide import CallCheck, Refusal, ToolAnnotations
from .canonical import catalog_digest
from .pins import Pin, Sighting, Status, ToolChange, changed_fields, pin_of, sighting_of, stricter
from .views import CatalogView, Known

__all__ = ["CHANGED", "NOT_APPROVED", "Mode", "PinCheck", "Reporter", "ToolPins"]

log = logging.getLogger("mcp_bastion.pinning")
Mode = Literal["off", "record", "enforce"]
# Told of each definition that is not the approved one (once per definition), with the caller
# whose list showed it when there was one, and that request's trace id.
Reporter = Callable[[ToolChange, Principal | None, str], None]

MAX_PINS: Final = 10_000  # the catalog's bound: first sights past it are not remembered
MAX_VIEWS: Final = 4  # distinct lists remembered per server (an upstream flapping between two)
MAX_REPORTED: Final = 4096  # distinct (tool, definition) pairs already reported
# A list up to this size is its own key (exact: a dict compares the bytes on a hash match, and
# Python's hash costs half a SHA-256); a longer one is keyed by its SHA-256.
MAX_KEY_BYTES: Final = 1_048_576
# Tool digests remembered by the tool's bytes (at most 32 MiB of keys): tools larger than
# this are hashed each time their list is judged.
MAX_SIGHTINGS: Final = 4096
MAX_SIGHTING_BYTES: Final = 8192

# What a client reads: the gateway's words, nothing of the tool's definition.
CHANGED: Final = Refusal(
    "Tool definition changed since it was approved; it is withheld until an operator approves it",
    ("pinning:changed",),
)
NOT_APPROVED: Final = Refusal(
    "Tool is not among this server's approved tool definitions; it is withheld until an operator approves it",
    ("pinning:not-approved",),
)


def _no_report(change: ToolChange, principal: Principal | None, trace_id: str) -> None:
    return None


class ToolPins:
    """One server's pins, its remembered lists and, in enforce mode, its call check."""

    def __init__(
        self,
        server: str,
        mode: Mode,
        pins: dict[str, Pin] | None = None,
        *,
        from_lockfile: bool = False,
        report: Reporter = _no_report,
        max_pins: int = MAX_PINS,
    ) -> None:
        self.server = server
        self.max_pins = max_pins
        self.mode = mode
        self.from_lockfile = from_lockfile
        self._pins: dict[str, Pin] = dict(pins or {})
        self._report = report
        self._reported: BoundedCache[tuple[str, str | None], bool] = BoundedCache(MAX_REPORTED)
        self._changed: set[str] = set()  # pinned names whose latest sighting differs (enforce)
        self._views: BoundedCache[bytes, CatalogView] = BoundedCache(MAX_VIEWS)
        self._held: CatalogView | None = None  # the view whose annotations the catalog holds
        self._sightings: BoundedCache[bytes, Sighting] = BoundedCache(MAX_SIGHTINGS)
        self.generation = 0  # bumped whenever a pin is added: views judged before are stale
        self.checks: tuple[CallCheck, ...] = (PinCheck(self),) if mode == "enforce" else ()

    @classmethod
    def off(cls, server: str = "") -> ToolPins:
        return cls(server, "off")

    def pin(self, name: str) -> Pin | None:
        return self._pins.get(name)

    def learn(
        self,
        catalog: ToolCatalog,
        tools: Iterable[Any],
        principal: Principal | None = None,
        trace_id: str = "",
    ) -> CatalogView:
        """Learn an upstream's tool list into `catalog`, judged against the pins."""
        if not isinstance(tools, list):
            tools = list(tools)
        fingerprint = _fingerprint(tools)
        view = self._views.get(fingerprint) if fingerprint is not None else None
        if view is None or view.generation != self.generation:
            view = self._judge(catalog, tools, principal, trace_id)
            if fingerprint is not None:
                self._views.put(fingerprint, view)
        elif view is not self._held:
            catalog.hold(view.annotations)  # another list was learned since: this one's again
        self._held = view
        if self.mode == "enforce":
            self._changed.difference_update(view.pinned)
            self._changed.update(view.changed)
        return view

    def refusal(self, name: str) -> Refusal | None:
        """Enforce mode: why a call of `name` is withheld, if it is. A pinned tool not seen yet
        is served: the lockfile approved it, and nothing seen says it changed."""
        if name not in self._pins:
            return NOT_APPROVED
        if name in self._changed:
            return CHANGED
        return None

    def _judge(
        self, catalog: ToolCatalog, tools: list[Any], principal: Principal | None, trace_id: str
    ) -> CatalogView:
        known = catalog.learn(tools)
        if self.mode == "off":
            return CatalogView(known, {name: a for _, name, a in known}, self.generation)
        judged: Known = []
        annotations: dict[str, ToolAnnotations] = {}
        held: dict[str, ToolAnnotations] = {}
        changed: set[str] = set()
        digests: list[str] = []
        for tool, name, live in known:
            sighting = self._sighting(tool)
            if sighting.digest is not None:
                digests.append(sighting.digest)
            status, effective = self._status(name, sighting, live, principal, trace_id)
            if status != "approved" and name in self._pins:
                changed.add(name)
            if effective is not live:
                held[name] = effective
            judged.append((tool, name, effective))
            annotations[name] = effective
        catalog.hold(held)
        pinned = frozenset(name for name in annotations if name in self._pins)
        return CatalogView(
            judged,
            annotations,
            self.generation,
            changed=frozenset(changed),
            pinned=pinned,
            digest=catalog_digest(digests),
        )

    def _status(
        self,
        name: str,
        sighting: Sighting,
        live: ToolAnnotations,
        principal: Principal | None,
        trace_id: str,
    ) -> tuple[Status, ToolAnnotations]:
        pin = self._pins.get(name)
        if pin is not None and sighting.digest == pin.digest:
            return "approved", live
        if pin is not None:
            effective = stricter(pin.annotations, live)
            status: Status = "changed" if sighting.digest is not None else "unpinnable"
            self._tell(name, status, pin, sighting, effective is not live, principal, trace_id)
            return status, effective
        if self.mode == "record" and sighting.digest is not None and len(self._pins) < self.max_pins:
            self._pins[name] = pin_of(sighting)  # first seen is trusted
            self.generation += 1
            if self.from_lockfile:  # not in the reviewed list: worth a line, though trusted
                self._tell(name, "added", None, sighting, False, principal, trace_id)
            return "approved", live
        status = "added" if sighting.digest is not None else "unpinnable"
        self._tell(name, status, None, sighting, False, principal, trace_id)
        return status, live

    def _tell(
        self,
        name: str,
        status: Status,
        pin: Pin | None,
        sighting: Sighting,
        lowered: bool,
        principal: Principal | None,
        trace_id: str,
    ) -> None:
        key = (name, sighting.digest)
        if key in self._reported:
            return  # told already: once per definition, however often the upstream sends it
        self._reported.put(key, True)
        fields = changed_fields(pin, sighting) if pin is not None else ()
        withheld = self.mode == "enforce"
        change = ToolChange(
            self.server, name, status, pin.digest if pin else None, sighting.digest, fields, withheld, lowered
        )
        self._report(change, principal, trace_id)

    def _sighting(self, tool: Any) -> Sighting:
        """The tool's digest, remembered by its bytes: a list where one tool changed costs one
        hash, not one per tool (an upstream that varies a description per answer)."""
        try:
            key = orjson.dumps(tool)
        except TypeError:
            return sighting_of(tool)
        if len(key) > MAX_SIGHTING_BYTES:
            return sighting_of(tool)
        sighting = self._sightings.get(key)
        if sighting is None:
            sighting = sighting_of(tool)
            self._sightings.put(key, sighting)
        return sighting


class PinCheck:
    """The enforce-mode `CallCheck`: a withheld tool is refused when called, and hidden from
    lists (the list filter asks the same decision). Depends on nothing of the caller."""

    def __init__(self, pins: ToolPins) -> None:
        self._pins = pins

    def check(self, principal: Principal, call: Call, annotations: ToolAnnotations | None) -> Refusal | None:
        if call.method != "tools/call" or call.name is None:
            return None
        return self._pins.refusal(call.name)

    def visibility(self, principal: Principal) -> Hashable:
        return None


def _fingerprint(tools: list[Any]) -> bytes | None:
    """The list exactly as sent (or its SHA-256, when long): the same bytes, the same judgement.
    A JSON array starts with `[`, so it never equals a tagged digest."""
    try:
        data = orjson.dumps(tools)
    except TypeError:  # orjson.JSONEncodeError: not JSON data (never from a parsed answer)
        return None
    return data if len(data) <= MAX_KEY_BYTES else b"sha256:" + hashlib.sha256(data).digest()
