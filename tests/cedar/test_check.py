"""The Cedar check: the three example policies, failing closed, and tool lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_bastion.cedar.check import FORBIDDEN, NOT_PERMITTED, UNEVALUATED
from mcp_bastion.mcp.calls import Call
from mcp_bastion.policy.decide import Permit, Refusal, ToolAnnotations

from .build import (
    AFTER_HOURS,
    BASELINE,
    DESTROYS,
    DESTRUCTIVE,
    MONDAY_10,
    MONDAY_20,
    PATH_PREFIX,
    READ_ONLY,
    SATURDAY_10,
    WRITES,
    listed,
    make_check,
    person,
    tool_call,
)


def _refusal(answer: Refusal | Permit | None) -> Refusal | None:
    """The check's refusal, or None when it lets the call pass (with a permit or without)."""
    return answer if isinstance(answer, Refusal) else None


OPS = person("olga", groups=["ops"])
DEV = person("dan", groups=["dev"])
NOBODY = person("nina")


@pytest.mark.parametrize(
    ("who", "annotations", "refused"),
    [
        (DEV, DESTROYS, True),
        (NOBODY, DESTROYS, True),
        (OPS, DESTROYS, False),
        (DEV, WRITES, False),
        (DEV, READ_ONLY, False),
        (DEV, None, True),  # never listed: the worst case, destructive
    ],
)
def test_only_members_of_ops_may_call_destructive_tools(
    tmp_path: Path, who: Any, annotations: ToolAnnotations | None, refused: bool
) -> None:
    check = make_check(tmp_path, BASELINE, DESTRUCTIVE)
    expected = Refusal(FORBIDDEN, ("destructive-needs-ops",)) if refused else None
    assert _refusal(check.check(who, tool_call("drop_table", {}), annotations)) == expected
    # The list says the same: a tool a caller may never call is hidden.
    assert _refusal(check.check(who, listed("drop_table"), annotations)) == expected


def test_lying_annotations_count_for_nothing_when_not_trusted(tmp_path: Path) -> None:
    # The upstream calls its destructive tool read-only; with trust_annotations: false the
    # gateway treats every tool as destructive, so the rule still applies.
    trusting = make_check(tmp_path, BASELINE, DESTRUCTIVE)
    assert _refusal(trusting.check(DEV, tool_call("drop_table", {}), READ_ONLY)) is None
    wary = make_check(tmp_path, BASELINE, DESTRUCTIVE, server_extra={"trust_annotations": False})
    assert _refusal(wary.check(DEV, tool_call("drop_table", {}), READ_ONLY)) == Refusal(
        FORBIDDEN, ("destructive-needs-ops",)
    )
    assert _refusal(wary.check(DEV, listed("drop_table"), READ_ONLY)) == Refusal(
        FORBIDDEN, ("destructive-needs-ops",)
    )


@pytest.mark.parametrize(
    ("arguments", "refused"),
    [
        ({"path": "/srv/shared/report.txt"}, False),
        ({"path": "/srv/shared/a/b/c"}, False),
        ({"path": "/etc/passwd"}, True),
        ({"path": "/srv/shared/../../etc/passwd"}, True),  # traversal: starts with the prefix
        ({"path": "/srv/sharedevil/x"}, True),
        ({"path": ["/srv/shared/x"]}, True),  # not a string: its JSON text never matches
        ({"path": 5}, True),
        ({"query": "x"}, False),  # no path: the rule does not apply
        ({}, False),
    ],
)
def test_a_path_argument_must_stay_under_the_prefix(
    tmp_path: Path, arguments: dict[str, Any], refused: bool
) -> None:
    check = make_check(tmp_path, BASELINE, PATH_PREFIX)
    expected = Refusal(FORBIDDEN, ("files-path-under-shared",)) if refused else None
    assert _refusal(check.check(DEV, tool_call("write_file", arguments), WRITES)) == expected


def test_the_path_rule_is_for_its_server_only(tmp_path: Path) -> None:
    check = make_check(tmp_path, BASELINE, PATH_PREFIX, server="tickets")
    assert _refusal(check.check(DEV, tool_call("write_file", {"path": "/etc/passwd"}), WRITES)) is None


def test_a_tool_whose_calls_depend_on_arguments_stays_listed(tmp_path: Path) -> None:
    # Some call of write_file passes (a path under the prefix): the list shows it, and each
    # call is decided with its arguments.
    check = make_check(tmp_path, BASELINE, PATH_PREFIX)
    assert _refusal(check.check(DEV, listed("write_file"), WRITES)) is None


def test_a_tool_no_call_of_which_could_pass_is_hidden_whatever_the_arguments(tmp_path: Path) -> None:
    strict = (
        '@id("needs-path") forbid (principal, action == Action::"tools/call", resource)\n'
        'unless { resource.read_only && context.arguments.hasTag("path") };'
    )
    check = make_check(tmp_path, BASELINE, strict)
    assert _refusal(check.check(DEV, listed("write_file"), WRITES)) == Refusal(FORBIDDEN, ("needs-path",))
    assert _refusal(check.check(DEV, listed("read_file"), READ_ONLY)) is None


def test_when_partial_evaluation_cannot_tell_the_tool_is_listed(tmp_path: Path) -> None:
    # Cedar evaluates `&&` left to right: with the unknown arguments first it cannot see that
    # the right side is false, and answers "it depends". A list errs towards showing; the call
    # itself is refused in full, whatever its arguments.
    strict = (
        '@id("needs-path") forbid (principal, action == Action::"tools/call", resource)\n'
        'unless { context.arguments.hasTag("path") && resource.read_only };'
    )
    check = make_check(tmp_path, BASELINE, strict)
    assert _refusal(check.check(DEV, listed("write_file"), WRITES)) is None
    assert _refusal(check.check(DEV, tool_call("write_file", {"path": "/x"}), WRITES)) == Refusal(
        FORBIDDEN, ("needs-path",)
    )


AGENT = person("svc", client="nightly-agent")


@pytest.mark.parametrize(
    ("who", "when", "annotations", "refused"),
    [
        (AGENT, MONDAY_20, WRITES, True),
        (AGENT, MONDAY_20, DESTROYS, True),
        (AGENT, MONDAY_20, READ_ONLY, False),
        (AGENT, SATURDAY_10, WRITES, True),  # the weekend is outside working hours
        (AGENT, MONDAY_10, WRITES, False),
        (DEV, MONDAY_20, WRITES, False),  # another client
    ],
)
def test_a_client_may_use_only_read_tools_outside_working_hours(
    tmp_path: Path, who: Any, when: float, annotations: ToolAnnotations, refused: bool
) -> None:
    check = make_check(tmp_path, BASELINE, AFTER_HOURS, clock=lambda: when)
    expected = Refusal(FORBIDDEN, ("nightly-agent-reads-after-hours",)) if refused else None
    assert _refusal(check.check(who, tool_call("update", {}), annotations)) == expected
    assert _refusal(check.check(who, listed("update"), annotations)) == expected


def test_working_hours_are_in_the_configured_time_zone(tmp_path: Path) -> None:
    # 10:00 UTC on a Monday is 19:00 in Tokyo: outside its working hours.
    check = make_check(tmp_path, BASELINE, AFTER_HOURS, timezone="Asia/Tokyo")
    assert _refusal(check.check(AGENT, tool_call("update", {}), WRITES)) == Refusal(
        FORBIDDEN, ("nightly-agent-reads-after-hours",)
    )


def test_list_answers_follow_the_clock_minute_by_minute(tmp_path: Path) -> None:
    now = [MONDAY_10 + 8 * 3600 - 30]  # 17:59:30
    check = make_check(tmp_path, BASELINE, AFTER_HOURS, clock=lambda: now[0])
    assert _refusal(check.check(AGENT, listed("update"), WRITES)) is None
    now[0] += 60  # 18:00:30: the remembered answer is for another minute
    assert _refusal(check.check(AGENT, listed("update"), WRITES)) is not None


def test_list_answers_are_remembered_per_caller_and_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = make_check(tmp_path, BASELINE, DESTRUCTIVE)
    asked: list[str] = []
    original = check._authorize

    def counting(request: Any, entities: Any) -> Any:
        asked.append(request.resource["id"])
        return original(request, entities)

    monkeypatch.setattr(check, "_authorize", counting)
    for _ in range(3):
        for name in ("a", "b"):
            _refusal(check.check(DEV, listed(name), DESTROYS))
    _refusal(check.check(OPS, listed("a"), DESTROYS))
    assert asked == ["a", "b", "a"]  # once per (caller, tool); OPS is another caller


def test_calls_are_remembered_only_when_cedar_sees_no_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def counted(check: Any) -> list[str]:
        asked: list[str] = []
        original = check._authorize

        def counting(request: Any, entities: Any) -> Any:
            asked.append(request.resource["id"])
            return original(request, entities)

        monkeypatch.setattr(check, "_authorize", counting)
        return asked

    # No policy reads the arguments: a call's Cedar request is the same whatever they are.
    blind = make_check(tmp_path, BASELINE, DESTRUCTIVE)
    asked = counted(blind)
    for n in range(3):
        assert _refusal(blind.check(DEV, tool_call("a", {"n": n}), DESTROYS)) == Refusal(
            FORBIDDEN, ("destructive-needs-ops",)
        )
    assert _refusal(blind.check(OPS, tool_call("a", {}), DESTROYS)) is None
    assert asked == ["a", "a"]  # once per caller
    # A policy reads them: every call is decided with its own.
    reading = make_check(tmp_path, BASELINE, DESTRUCTIVE, PATH_PREFIX)
    asked = counted(reading)
    for n in range(3):
        _refusal(reading.check(OPS, tool_call("a", {"path": f"/srv/shared/{n}"}), DESTROYS))
    assert asked == ["a", "a", "a"]


def test_no_permit_refuses_with_its_own_reason(tmp_path: Path) -> None:
    only_reads = '@id("reads") permit (principal, action, resource) when { resource has read_only && resource.read_only };'
    check = make_check(tmp_path, only_reads)
    assert _refusal(check.check(DEV, tool_call("w", {}), WRITES)) == Refusal(NOT_PERMITTED)
    assert _refusal(check.check(DEV, tool_call("r", {}), READ_ONLY)) is None
    # Methods about the server itself have no read_only: refused by default too.
    assert _refusal(check.check(DEV, Call("initialize", None, 1, {}), None)) == Refusal(NOT_PERMITTED)


def test_an_evaluation_error_refuses_the_call_naming_the_policy(tmp_path: Path) -> None:
    # Cedar skips a policy that errors: for a forbid, that would allow what it was written to
    # stop. An overflow on a claim-dependent value makes this forbid error for long group lists.
    overflow = (
        '@id("overflows") forbid (principal, action == Action::"tools/call", resource)\n'
        'when { principal.groups.contains("x") || 9223372036854775807 + 1 > 0 };'
    )
    check = make_check(tmp_path, BASELINE, overflow)
    assert _refusal(check.check(DEV, tool_call("w", {}), WRITES)) == Refusal(UNEVALUATED, ("overflows",))
    assert _refusal(check.check(DEV, listed("w"), WRITES)) == Refusal(UNEVALUATED, ("overflows",))


def test_claims_of_the_wrong_shape_and_oversized_arguments_refuse(tmp_path: Path) -> None:
    check = make_check(tmp_path, BASELINE, DESTRUCTIVE, PATH_PREFIX, max_argument_bytes=1024)
    refusal = _refusal(check.check(person(groups=["ops", "dev", 3]), tool_call("w", {}), WRITES))
    assert refusal == Refusal("the token's claim for principal.groups is not a list of strings")
    big = _refusal(check.check(DEV, tool_call("w", {"path": "/srv/shared/a", "content": "x" * 2048}), WRITES))
    assert big is not None
    assert "policy.max_argument_bytes: 1024" in big.reason


def test_an_engine_failure_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check = make_check(tmp_path, BASELINE)

    def broken(*_: Any) -> Any:
        raise RuntimeError("the engine broke")

    monkeypatch.setattr("mcp_bastion.cedar.check.cedarpy.is_authorized", broken)
    assert _refusal(check.check(DEV, tool_call("w", {}), WRITES)) == Refusal(UNEVALUATED)


def test_notifications_and_responses_are_not_put_to_cedar(tmp_path: Path) -> None:
    nothing = '@id("never") permit (principal, action, resource) when { false };'
    check = make_check(tmp_path, nothing)
    assert _refusal(check.check(DEV, Call("notifications/initialized", None, None, {}), None)) is None
    assert _refusal(check.check(DEV, Call("", None, 7, None), None)) is None
    # A request that merely has a notification's name is a request like any other.
    assert _refusal(check.check(DEV, Call("notifications/initialized", None, 8, {}), None)) == Refusal(
        NOT_PERMITTED
    )


def test_hostile_names_and_subjects_are_decided_not_crashed_on(tmp_path: Path) -> None:
    check = make_check(tmp_path, BASELINE, DESTRUCTIVE, PATH_PREFIX)
    who = person('x"\n\u2028\\', groups=["dev"])
    for name in ('a"b', "new\nline", "\u0301x", "漢字", "x" * 4096):
        assert _refusal(check.check(who, listed(name), WRITES)) is None
        assert _refusal(check.check(who, tool_call(name, {"path": "/srv/shared/x"}), WRITES)) is None
        assert _refusal(check.check(who, listed(name), DESTROYS)) == Refusal(
            FORBIDDEN, ("destructive-needs-ops",)
        )


def test_visibility_tells_callers_apart_by_what_policies_can_read(tmp_path: Path) -> None:
    # The list caches (pinning/views.py) share a filtered list between callers whose
    # visibility is equal: two callers policies cannot tell apart, and no others.
    check = make_check(tmp_path, BASELINE, DESTRUCTIVE)
    assert check.visibility(person("olga", groups=["ops"])) == check.visibility(
        person("olga", groups=["ops"])
    )
    assert check.visibility(OPS) != check.visibility(DEV)
    assert check.visibility(DEV) != check.visibility(person("dan", groups=["dev"], client="other"))
    assert check.visibility(OPS) == check.visibility(person("olga", groups=["ops"], unread="x"))


def test_visibility_changes_with_the_minute_when_a_policy_reads_the_time(tmp_path: Path) -> None:
    now = [MONDAY_10]
    timed = make_check(tmp_path, BASELINE, AFTER_HOURS, clock=lambda: now[0])
    untimed = make_check(tmp_path, BASELINE, DESTRUCTIVE, clock=lambda: now[0])
    before = (timed.visibility(AGENT), untimed.visibility(AGENT))
    now[0] += 60
    assert timed.visibility(AGENT) != before[0]
    assert untimed.visibility(AGENT) == before[1]
