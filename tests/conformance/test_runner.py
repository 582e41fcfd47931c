"""The conformance runner's own logic: reading results, comparing runs, refusing bad setups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance.runner import (
    CheckResult,
    ConformanceReport,
    ConformanceRunError,
    ScenarioResult,
    _read_results,
    requirement_set,
    run_conformance_server,
)


def report(exit_code: int = 0, **scenarios: list[tuple[str, ...]]) -> ConformanceReport:
    """A report as a run would build it; ``ping`` is the one scored scenario."""
    results = {
        name: ScenarioResult(name, tuple(CheckResult(*c) for c in checks))
        for name, checks in scenarios.items()
    }
    return ConformanceReport(
        "http://localhost:1/mcp", "2026-07-28", results, frozenset({"ping"}), exit_code, 2.5
    )


def test_a_scenario_fails_only_on_a_failure_check() -> None:
    run = report(
        ping=[("ping", "SUCCESS"), ("note", "INFO")],
        caching=[("ttl", "WARNING"), ("skip", "SKIPPED")],
        tasks=[("task", "FAILURE"), ("task", "SUCCESS")],
    )
    assert run.passed == {"caching": True, "ping": True, "tasks": False}
    assert run.failing == {"tasks": [CheckResult("task", "FAILURE")]}
    assert run.scenarios["caching"].warnings == [CheckResult("ttl", "WARNING")]
    assert run.scored_passed


def test_summary_lists_counts_and_every_failing_check() -> None:
    run = report(1, ping=[("ping", "FAILURE", "no answer")], tasks=[("task", "SUCCESS")])
    assert run.summary().splitlines() == [
        "conformance 2026-07-28 against http://localhost:1/mcp: exit 1, 2.5 s",
        "  scored:     0/1 scenarios passed",
        "  not scored: 1/1 scenarios passed",
        "  FAILED ping",
        "    - ping FAILURE: no answer",
    ]
    assert not run.scored_passed


def test_diff_names_each_disagreement_and_nothing_else() -> None:
    direct = report(
        ping=[("ping", "SUCCESS")],
        caching=[("ttl", "SUCCESS")],
        tasks=[("t", "FAILURE")],
        lists=[("list", "SUCCESS"), ("incoming-sse-event", "INFO")],
    )
    gateway = report(
        ping=[("ping", "FAILURE")],
        caching=[("ttl", "WARNING")],
        dns=[("host", "SUCCESS")],
        lists=[("list", "SUCCESS")],  # INFO checks only log traffic: not a disagreement
    )
    assert direct.diff(direct) == []
    assert direct.diff(gateway) == [
        "caching: same verdict, different checks: [('ttl', 'SUCCESS'), ('ttl', 'WARNING')]",
        "dns: only in the other run",
        "ping: fails in the other run; its failures: [CheckResult(id='ping', status='FAILURE', message='')]",
        "tasks: only in this run",
    ]


def test_results_are_read_per_scenario_folder(tmp_path: Path) -> None:
    folder = tmp_path / "server-tools-call-error-2026-11-26T07-37-53-904Z"
    folder.mkdir()
    checks = [{"id": "tools-call-error", "status": "FAILURE", "errorMessage": "no isError"}]
    (folder / "checks.json").write_text(json.dumps(checks))
    assert _read_results(tmp_path) == {
        "tools-call-error": ScenarioResult(
            "tools-call-error", (CheckResult("tools-call-error", "FAILURE", "no isError"),)
        )
    }


def test_unreadable_results_are_an_error_not_a_pass(tmp_path: Path) -> None:
    folder = tmp_path / "server-ping-2026-11-26T07-37-53-904Z"
    folder.mkdir()
    (folder / "checks.json").write_text("[{")
    with pytest.raises(ConformanceRunError, match="Unreadable"):
        _read_results(tmp_path)


def test_requirement_sets_come_from_the_installed_suite() -> None:
    modern = requirement_set("2026-07-28")
    assert {"server-stateless", "dns-rebinding-protection"} <= modern.scored
    assert "tasks-lifecycle" in modern.not_scored
    assert "ping" in requirement_set("2025-11-25").scored
    with pytest.raises(ConformanceRunError, match="No requirement set '1999-01-01'"):
        requirement_set("1999-01-01")


def test_a_used_output_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "leftover").mkdir()
    with pytest.raises(ConformanceRunError, match="already holds results"):
        run_conformance_server("http://localhost:1/mcp", "2026-07-28", tmp_path)


@pytest.mark.node
def test_a_run_past_its_deadline_is_stopped(tmp_path: Path) -> None:
    with pytest.raises(ConformanceRunError, match="did not finish within"):
        run_conformance_server("http://localhost:1/mcp", "2026-07-28", tmp_path / "out", timeout_s=0.01)
