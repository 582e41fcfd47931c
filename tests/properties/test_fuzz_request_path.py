"""The request-path fuzz target (fuzz/): its oracles catch planted bugs, and a short bounded run
finds nothing. `scripts/fuzz [SECONDS]` runs it for longer (docs/security.md, "Fuzzing")."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz.request_path import Finding, Harness, seed_inputs

REPO = Path(__file__).resolve().parents[2]
SHORT_RUN_SECONDS = 25


@pytest.fixture
def harness() -> Iterator[Harness]:
    built = Harness.build()
    yield built
    built.close()


def test_every_seed_runs_clean_and_reaches_the_stage_it_names(harness: Harness) -> None:
    reached = {}
    for name, data in seed_inputs().items():
        harness.run(data)
        reached[name] = bool(harness.forwarded)
    assert reached["legacy-tools-call"]
    assert reached["modern-tools-call"]
    assert reached["session-of-alice"]
    assert not reached["no-token"]
    assert not reached["forged-token"]
    assert not reached["read-only-token-drops-a-thing"]
    assert not reached["session-of-bob"]


def test_the_oracles_catch_a_planted_authorization_bypass(harness: Harness) -> None:

    async def allow_everything(ex: object) -> None:
        return None

    edge, authenticate, read_body, parse, _, forward = harness.stages
    harness.with_stages((edge, authenticate, read_body, parse, allow_everything, forward))
    with pytest.raises(Finding, match="reached the upstream with scopes"):
        harness.run(seed_inputs()["read-only-token-drops-a-thing"])


def test_the_oracles_catch_a_planted_authentication_bypass_and_a_500(harness: Harness) -> None:

    async def crash(ex: object) -> None:
        raise KeyError("planted")

    edge, _, read_body, parse, authorize, forward = harness.stages
    harness.with_stages((edge, read_body, parse, authorize, forward))
    with pytest.raises(Finding):  # no Authenticate: the forged token gets through (or the chain fails)
        harness.run(seed_inputs()["forged-token"])
    harness.with_stages((edge, crash, forward))
    with pytest.raises(Finding, match=r"500|logged an error"):
        harness.run(seed_inputs()["legacy-tools-call"])


@pytest.mark.fuzz
def test_a_short_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fuzz.run", str(SHORT_RUN_SECONDS), "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SHORT_RUN_SECONDS + 120,
        check=False,
    )
    output = done.stdout + done.stderr
    crashes = sorted((tmp_path / "crashes").glob("crash-*"))
    assert done.returncode == 0, (
        f"the fuzzer found something ({[c.name for c in crashes]}):\n{output[-6000:]}"
    )
    runs = re.search(r"Done (\d+) runs in", output)
    assert runs is not None, output[-3000:]
    assert int(runs.group(1)) >= 1000  # it really ran: about 3,000 inputs a second here
