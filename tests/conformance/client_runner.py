"""Run one of the official conformance suite's client scenarios against a client command.

``run_conformance_client(command, scenario, spec_version, out_dir)`` runs::

    npx conformance client --command COMMAND --scenario SCENARIO --spec-version V -o OUT

with Node 22 first on ``PATH`` and this repository on ``PYTHONPATH`` (the suite runs the
command through a shell, from its own folder, with the server URL appended), under a hard
timeout, and reads back ``OUT/<scenario>-<time>/checks.json``. ``suite=SUITE_0_1_16`` runs
the suite's 0.1.16 release instead, installed beside it under the npm alias
``conformance-0.1.16`` (tests/node/package.json); both releases name their command
``conformance``, so that one is started by its file.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.conformance.runner import CheckResult, ConformanceRunError, ScenarioResult
from tests.support.node import NODE_DIR, REPO, node_env

__all__ = ["CONNECT_CLIENT_COMMAND", "SUITE_0_1_16", "run_conformance_client"]

# The suite's own limit per scenario is 30 s; a scenario still running after 90 s is hung.
TIMEOUT_S = 90.0
CONNECT_CLIENT_COMMAND = f"{shlex.quote(sys.executable)} -m tests.conformance.connect_client"
SUITE: tuple[str, ...] = ("npx", "conformance")
SUITE_0_1_16: tuple[str, ...] = (
    "node",
    str(NODE_DIR / "node_modules" / "conformance-0.1.16" / "dist" / "index.js"),
)


def run_conformance_client(
    command: str, scenario: str, spec_version: str | None, out_dir: Path, *, suite: tuple[str, ...] = SUITE
) -> ScenarioResult:
    """The suite's verdict on ``command`` for one client scenario at one spec version
    (None for extension scenarios, which are on no spec's timeline)."""
    out_dir.mkdir(parents=True, exist_ok=False)
    argv = [
        *suite, "client", "--command", command, "--scenario", scenario, "-o", str(out_dir),
    ]  # fmt: skip
    if spec_version is not None:
        argv += ["--spec-version", spec_version]
    env = node_env(NO_COLOR="1", FORCE_COLOR="0", PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        argv, cwd=NODE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # npx starts node, node starts the client: a timeout stops them all
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise ConformanceRunError(
            f"{scenario} did not finish within {TIMEOUT_S:.0f} s:\n{output[-4000:]}"
        ) from None
    files = sorted(out_dir.glob("**/checks.json"))
    if len(files) != 1:
        raise ConformanceRunError(
            f"{scenario}: expected one checks.json, found {len(files)}:\n{output[-4000:]}"
        )
    raw = json.loads(files[0].read_text(encoding="utf-8"))
    checks = tuple(CheckResult(c["id"], c["status"], c.get("errorMessage") or "") for c in raw)
    return ScenarioResult(scenario, checks)
