"""A server's pin state, mode by mode: what is trusted, told, withheld, and decided with."""

from __future__ import annotations

import copy
from typing import Any

from mcp_bastion.auth.principal import Principal
from mcp_bastion.mcp.calls import Call
from mcp_bastion.pinning import ToolChange, ToolPins
from mcp_bastion.pinning.pins import pin_of, sighting_of
from mcp_bastion.pinning.store import CHANGED, NOT_APPROVED, Mode
from mcp_bastion.policy.catalog import ToolCatalog
from mcp_bastion.policy.decide import ToolAnnotations

READ_ONLY = ToolAnnotations(True, True)  # readOnlyHint alone: destructiveHint defaults to true
WRITES = ToolAnnotations(False, False)
DESTRUCTIVE = ToolAnnotations(False, True)
ALICE = Principal("alice", "https://idp.example", "client", frozenset({"tools.read"}), "h", 1e12)

SEND: dict[str, Any] = {
    "name": "send_email",
    "description": "Send an email.",
    "inputSchema": {"type": "object", "properties": {"to": {"type": "string"}}},
    "annotations": {"readOnlyHint": False, "destructiveHint": False},
}
DROP: dict[str, Any] = {
    "name": "drop_table",
    "description": "Drop a table.",
    "inputSchema": {"type": "object"},
    "annotations": {"readOnlyHint": False, "destructiveHint": True},
}
READ: dict[str, Any] = {
    "name": "read_row",
    "inputSchema": {"type": "object"},
    "annotations": {"readOnlyHint": True},
}


def with_bcc(tool: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(tool)
    changed["inputSchema"]["properties"]["bcc"] = {"type": "string"}  # only the schema changes
    return changed


def read_only(tool: dict[str, Any]) -> dict[str, Any]:
    return {**tool, "annotations": {"readOnlyHint": True}}


class Told:
    def __init__(self) -> None:
        self.changes: list[ToolChange] = []

    def __call__(self, change: ToolChange, principal: Principal | None, trace_id: str) -> None:
        self.changes.append(change)


def pinned(*tools: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: pin_of(sighting_of(t)) for t in tools}


def store(mode: Mode, *lock: dict[str, Any]) -> tuple[ToolPins, ToolCatalog, Told]:
    told = Told()
    pins = ToolPins("mail", mode, pinned(*lock) if lock else None, from_lockfile=bool(lock), report=told)
    return pins, ToolCatalog(), told


def refused(pins: ToolPins, name: str) -> object:
    if not pins.checks:
        return None
    return pins.checks[0].check(ALICE, Call("tools/call", name, 1), None)


# --- record ----------------------------------------------------------------------------------


def test_record_trusts_first_sight_and_tells_each_change_once() -> None:
    pins, catalog, told = store("record")
    pins.learn(catalog, [SEND, DROP])
    assert told.changes == []
    assert pins.checks == ()  # record refuses nothing

    pins.learn(catalog, [with_bcc(SEND), DROP], ALICE, "trace-1")
    pins.learn(catalog, [with_bcc(SEND), DROP])
    pins.learn(catalog, [SEND, DROP])
    pins.learn(catalog, [with_bcc(SEND), DROP])  # the same change again: told already
    assert [(c.tool, c.status, c.fields, c.withheld) for c in told.changes] == [
        ("send_email", "changed", ("inputSchema",), False)
    ]
    assert told.changes[0].pinned == pin_of(sighting_of(SEND)).digest
    assert told.changes[0].seen == sighting_of(with_bcc(SEND)).digest


def test_a_lowered_annotation_keeps_the_pinned_one_in_record_mode() -> None:
    pins, catalog, told = store("record")
    pins.learn(catalog, [DROP])
    view = pins.learn(catalog, [read_only(DROP)])
    assert catalog.get("drop_table") == DESTRUCTIVE  # what later calls are decided with
    assert [a for _, _, a in view.known] == [DESTRUCTIVE]  # and what the list filter decides with
    assert told.changes[0].lowered


def test_a_raised_annotation_applies_at_once() -> None:
    pins, catalog, _ = store("record")
    pins.learn(catalog, [READ])
    pins.learn(catalog, [{**READ, "annotations": {"readOnlyHint": False}}])
    assert catalog.get("read_row") == DESTRUCTIVE


def test_record_with_a_lockfile_tells_tools_it_does_not_hold_and_trusts_them() -> None:
    pins, catalog, told = store("record", SEND)
    pins.learn(catalog, [SEND, DROP])
    assert [(c.tool, c.status, c.withheld) for c in told.changes] == [("drop_table", "added", False)]
    pins.learn(catalog, [SEND, read_only(DROP)])  # its first sight is its pin now
    assert catalog.get("drop_table") == DESTRUCTIVE


# --- enforce ---------------------------------------------------------------------------------


def test_enforce_withholds_changed_and_added_tools_and_serves_the_rest() -> None:
    pins, catalog, told = store("enforce", SEND, DROP)
    pins.learn(catalog, [with_bcc(SEND), DROP, READ])
    assert refused(pins, "send_email") == CHANGED
    assert refused(pins, "read_row") == NOT_APPROVED
    assert refused(pins, "drop_table") is None
    assert {(c.tool, c.status, c.withheld) for c in told.changes} == {
        ("send_email", "changed", True),
        ("read_row", "added", True),
    }
    pins.learn(catalog, [SEND, DROP])  # the upstream went back: the approved definition again
    assert refused(pins, "send_email") is None


def test_a_tool_removed_and_readded_is_judged_against_its_old_pin() -> None:
    pins, catalog, _ = store("enforce", SEND, DROP)
    pins.learn(catalog, [SEND, DROP])
    pins.learn(catalog, [DROP])  # removed
    assert refused(pins, "send_email") is None  # the removal forgot nothing
    pins.learn(catalog, [DROP, with_bcc(SEND)])  # re-added, changed: not trusted anew
    assert refused(pins, "send_email") == CHANGED
    pins.learn(catalog, [DROP])
    pins.learn(catalog, [SEND, DROP])  # re-added as approved
    assert refused(pins, "send_email") is None


def test_a_list_that_differs_between_two_calls_is_judged_each_time() -> None:
    pins, catalog, _ = store("enforce", SEND)
    for _ in range(3):
        pins.learn(catalog, [SEND])
        assert refused(pins, "send_email") is None
        pins.learn(catalog, [with_bcc(SEND)])
        assert refused(pins, "send_email") == CHANGED


def test_pages_of_one_list_do_not_unsee_each_other() -> None:
    # A paginated tools/list is learned page by page: a page without a tool says nothing of it.
    pins, catalog, _ = store("enforce", SEND, DROP)
    pins.learn(catalog, [with_bcc(SEND)])
    pins.learn(catalog, [DROP])
    assert refused(pins, "send_email") == CHANGED


def test_enforce_ratchets_annotations_too() -> None:
    pins, catalog, _ = store("enforce", DROP)
    pins.learn(catalog, [read_only(DROP)])
    assert catalog.get("drop_table") == DESTRUCTIVE
    assert refused(pins, "drop_table") == CHANGED


def test_the_check_concerns_tool_calls_only() -> None:
    pins, _, _ = store("enforce", SEND)
    check = pins.checks[0]
    assert check.check(ALICE, Call("tools/list", None, 1), None) is None
    assert check.check(ALICE, Call("prompts/get", "anything", 1), None) is None
    assert check.check(ALICE, Call("tools/call", "unknown", 1), None) == NOT_APPROVED


def test_a_definition_that_cannot_be_canonical_matches_no_pin() -> None:
    deep: Any = {"type": "object"}
    for _ in range(100):
        deep = {"items": deep}
    pins, catalog, told = store("enforce", SEND)
    pins.learn(catalog, [{**SEND, "inputSchema": deep}, {"name": "deep", "inputSchema": deep}])
    assert refused(pins, "send_email") == CHANGED
    assert refused(pins, "deep") == NOT_APPROVED
    assert {(c.tool, c.status) for c in told.changes} == {
        ("send_email", "unpinnable"),
        ("deep", "unpinnable"),
    }


# --- off, and the remembered lists ------------------------------------------------------------


def test_off_hashes_nothing_and_ratchets_nothing() -> None:
    pins, catalog, told = store("off")
    pins.learn(catalog, [DROP])
    view = pins.learn(catalog, [read_only(DROP)])
    assert catalog.get("drop_table") == READ_ONLY
    assert view.digest is None
    assert told.changes == []
    assert pins.checks == ()


def test_a_list_sent_again_is_not_judged_again() -> None:
    pins, catalog, _ = store("enforce", SEND, DROP)
    first = pins.learn(catalog, [SEND, DROP])
    assert pins.learn(catalog, copy.deepcopy([SEND, DROP])) is first  # equal, not identical: no new view
    assert pins.learn(catalog, [DROP, SEND]) is not first  # another list (order is part of it)


def test_a_remembered_list_restores_its_annotations_to_the_catalog() -> None:
    # Two lists alternating: each brings back the annotations it was judged with.
    pins, catalog, _ = store("off")
    pins.learn(catalog, [READ])
    pins.learn(catalog, [{**READ, "annotations": {"readOnlyHint": False}}])
    assert catalog.get("read_row") == DESTRUCTIVE
    pins.learn(catalog, [READ])
    assert catalog.get("read_row") == READ_ONLY


def test_a_new_pin_makes_remembered_lists_stale() -> None:
    pins, catalog, _ = store("record")
    first = pins.learn(catalog, [SEND])
    pins.learn(catalog, [SEND, DROP])  # pins drop_table
    assert pins.learn(catalog, [SEND]) is not first
    assert pins.generation == 2


def test_past_the_bound_first_sights_are_not_remembered() -> None:
    told = Told()
    pins = ToolPins("mail", "record", report=told, max_pins=1)
    pins.learn(ToolCatalog(), [SEND, DROP])
    assert pins.pin("send_email") is not None
    assert pins.pin("drop_table") is None
    assert [(c.tool, c.status, c.withheld) for c in told.changes] == [("drop_table", "added", False)]
