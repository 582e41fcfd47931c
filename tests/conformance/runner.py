"""Run the official MCP conformance suite's server scenarios and read back what it found.

``run_conformance_server(url, requirements, out_dir)`` runs::

    npx conformance server --url URL --requirements REQ -o OUT

(or ``--scenario NAME --spec-version REQ`` for one scenario) with Node 22 first on ``PATH``,
under a hard timeout, then parses every ``OUT/server-<scenario>-<time>/checks.json`` into a
:class:`ConformanceReport`. Reports are built to be compared: the same suite run directly
against an upstream and through the gateway must give the same :meth:`ConformanceReport.passed`
map, and :meth:`ConformanceReport.diff` says in words where two runs disagree.

What a requirement set scores is read from the suite's own ``requirements/<revision>.yaml``
(scenarios it lists under ``server``); the ``not_scored`` server entries run too and are
reported, but never decide the suite's exit code.

The ``dns-rebinding-protection`` scenario sends ``Host: evil.example.com`` and expects a 4xx;
it fails by design unless the URL's host is ``localhost``, ``127.0.0.1`` or ``[::1]``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from tests.support.node import NODE_DIR, node_env

__all__ = [
    "CheckResult",
    "ConformanceReport",
    "ConformanceRunError",
    "ScenarioResult",
    "requirement_set",
    "run_conformance_server",
]

SUITE_DIR = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance"

# A whole requirement set takes 2-3 s on loopback; the per-scenario limit inside the suite
# is 30 s, so a run past five minutes is hung, not slow.
DEFAULT_TIMEOUT_S = 300.0

# Checks that pass or fail a scenario. INFO and SKIPPED are commentary; WARNING marks a
# SHOULD the implementation missed, which the suite prints but does not count as failing.
FAILURE = "FAILURE"
WARNING = "WARNING"
INFO = "INFO"

_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")


class ConformanceRunError(RuntimeError):
    """The suite could not be run, or left results that cannot be read."""


@dataclass(frozen=True)
class CheckResult:
    """One check as the suite reported it."""

    id: str
    status: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.id} {self.status}" + (f": {self.message}" if self.message else "")


@dataclass(frozen=True)
class ScenarioResult:
    """Every check one scenario emitted, in order."""

    name: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """The suite's own verdict: a scenario passes when none of its checks is a FAILURE."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == FAILURE]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == WARNING]

    def statuses(self) -> Counter[tuple[str, str]]:
        """How many times each (check id, status) occurred, INFO checks left out.

        Ids repeat within a scenario. INFO checks log traffic (requests sent, SSE events seen),
        which a proxy in the path may legitimately change without changing any verdict.
        """
        return Counter((c.id, c.status) for c in self.checks if c.status != INFO)


@dataclass(frozen=True)
class RequirementSet:
    """What one spec revision asks of a server, as the suite's requirements file says."""

    revision: str
    scored: frozenset[str]
    not_scored: frozenset[str]

    @property
    def all(self) -> frozenset[str]:
        return self.scored | self.not_scored


def requirement_set(revision: str) -> RequirementSet:
    """The server scenarios the suite scores, and runs unscored, for ``revision``."""
    path = SUITE_DIR / "requirements" / f"{revision}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConformanceRunError(
            f"No requirement set {revision!r} in the installed suite ({path})"
        ) from None
    not_scored = {entry["scenario"] for entry in data.get("not_scored", []) if entry.get("leg") == "server"}
    return RequirementSet(revision, frozenset(data.get("server", [])), frozenset(not_scored))


@dataclass(frozen=True)
class ConformanceReport:
    """The outcome of one suite run against one URL."""

    url: str
    requirements: str
    scenarios: Mapping[str, ScenarioResult]
    scored: frozenset[str]
    exit_code: int
    duration_s: float
    output: str = field(repr=False, default="")

    @cached_property
    def passed(self) -> dict[str, bool]:
        """Scenario name -> whether it passed; the map two runs are compared on."""
        return {name: result.passed for name, result in sorted(self.scenarios.items())}

    @property
    def failing(self) -> dict[str, list[CheckResult]]:
        """Scenario name -> its failing checks, for every scenario that failed."""
        return {name: r.failures for name, r in sorted(self.scenarios.items()) if not r.passed}

    @property
    def scored_passed(self) -> bool:
        """Whether every scenario the requirement set scores ran and passed."""
        return all(self.passed.get(name, False) for name in self.scored)

    def summary(self) -> str:
        """A human-readable account: counts, timing, and each failing check with its message."""
        scored = [n for n in self.passed if n in self.scored]
        extra = [n for n in self.passed if n not in self.scored]
        run = f"conformance {self.requirements} against {self.url}"
        lines = [
            f"{run}: exit {self.exit_code}, {self.duration_s:.1f} s",
            f"  scored:     {sum(self.passed[n] for n in scored)}/{len(scored)} scenarios passed",
            f"  not scored: {sum(self.passed[n] for n in extra)}/{len(extra)} scenarios passed",
        ]
        if missing := sorted(self.scored - self.passed.keys()):
            lines.append(f"  scored but never reported: {', '.join(missing)}")
        for name, failures in self.failing.items():
            lines.append(f"  FAILED {name}{'' if name in self.scored else ' (not scored)'}")
            lines.extend(f"    - {check}" for check in failures)
        return "\n".join(lines)

    def diff(self, other: ConformanceReport) -> list[str]:
        """Where ``other`` (e.g. through the gateway) disagrees with this run, one line each."""
        lines = []
        for name in sorted(self.scenarios.keys() | other.scenarios.keys()):
            mine, theirs = self.scenarios.get(name), other.scenarios.get(name)
            if mine is None or theirs is None:
                lines.append(f"{name}: only in {'this' if theirs is None else 'the other'} run")
            elif mine.passed != theirs.passed:
                verdict = "passes" if theirs.passed else "fails"
                lines.append(
                    f"{name}: {verdict} in the other run; its failures: {theirs.failures or mine.failures}"
                )
            elif mine.statuses() != theirs.statuses():
                changed = sorted(
                    (mine.statuses() - theirs.statuses()) + (theirs.statuses() - mine.statuses())
                )
                lines.append(f"{name}: same verdict, different checks: {changed}")
        return lines


def run_conformance_server(
    url: str,
    requirements: str,
    out_dir: Path,
    scenario: str | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ConformanceReport:
    """Run the suite's server scenarios against ``url`` and parse what it wrote to ``out_dir``.

    ``requirements`` is a spec revision (``2025-11-25``, ``2026-07-28``). Without ``scenario``
    the whole requirement set runs; with one, only that scenario, at that revision's wire.
    ``out_dir`` must be empty or absent, so results of different runs never mix.

    Raises:
        ConformanceRunError: The suite did not finish within ``timeout_s``, could not start,
            or wrote no readable results.
    """
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConformanceRunError(f"{out_dir} already holds results; give each run an empty directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    selection = ["--requirements", requirements] if scenario is None else ["--scenario", scenario]
    if scenario is not None:
        # --requirements refuses --scenario; --spec-version picks the same wire for one scenario.
        selection += ["--spec-version", requirements]
    command = ["npx", "conformance", "server", "--url", url, *selection, "-o", str(out_dir)]
    started = time.monotonic()
    exit_code, output = _run(command, timeout_s)
    duration = time.monotonic() - started
    scenarios = _read_results(out_dir)
    if not scenarios:
        raise ConformanceRunError(f"The suite wrote no results (exit {exit_code}):\n{output[-4000:]}")
    scored = requirement_set(requirements).scored
    if scenario is not None:
        scored &= {scenario}
    return ConformanceReport(url, requirements, scenarios, scored, exit_code, duration, output)


def _run(command: list[str], timeout_s: float) -> tuple[int, str]:
    # Own process group: npx starts node as a child, and a timeout must stop both.
    env = node_env(NO_COLOR="1", FORCE_COLOR="0")
    try:
        process = subprocess.Popen(
            command,
            cwd=NODE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise ConformanceRunError(f"Could not start {command[0]}: {exc}") from exc
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise ConformanceRunError(
            f"The suite did not finish within {timeout_s:.0f} s:\n{output[-4000:]}"
        ) from None
    return process.returncode, output


def _read_results(out_dir: Path) -> dict[str, ScenarioResult]:
    scenarios: dict[str, ScenarioResult] = {}
    for checks_file in sorted(out_dir.glob("*/checks.json")):
        match = _RESULT_DIR.match(checks_file.parent.name)
        if match is None:
            raise ConformanceRunError(f"Unexpected result folder {checks_file.parent}")
        name = match["scenario"]
        if name in scenarios:
            raise ConformanceRunError(f"Two result folders for scenario {name!r} in {out_dir}")
        try:
            raw = json.loads(checks_file.read_text(encoding="utf-8"))
            checks = tuple(CheckResult(c["id"], c["status"], c.get("errorMessage") or "") for c in raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConformanceRunError(f"Unreadable {checks_file}: {exc}") from exc
        scenarios[name] = ScenarioResult(name, checks)
    return scenarios
