"""Mutation testing of the security modules: `scripts/mutate [MODULE[:LINE,…]] …`.

For each module, every mutant (tests/mutation/operators.py) is written over a private copy of
`src/` (the working tree is never touched), and the module's own tests run against that copy
(`PYTHONPATH` puts it first): a failing test kills the mutant, a run past the time limit
counts as killed too (the change was noticed), a passing run means the mutant survived.
The score is (killed + timed out) / mutants. Survivors are printed as
`file:line: original -> mutant` for a human to judge; docs/security.md ("Mutation testing")
lists the ones judged equivalent.

Not part of CI: a full run takes the better part of an hour on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Queue

from .operators import Mutant, apply, mutants_of

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path("src/mcp_bastion")
DEFAULT_REPORT = Path("out/mutation/report.json")

# Module -> the tests that state its behaviour, fastest first (-x stops at the first failure).
# auth/jwt.py and mcp/jsonrpc.py come last: a full run measures them at the end.
MODULES: dict[str, tuple[str, ...]] = {
    "upstream/responses.py": (
        "tests/upstream/test_responses.py",
        "tests/security/test_up_faults.py",
        "tests/security_leaks/test_sl01_no_secrets_in_logs.py",
    ),
    "pipeline/edge.py": (
        "tests/pipeline/test_edge_rules.py",
        "tests/pipeline/test_edge.py",
        "tests/security/test_transport_and_sessions.py",
        "tests/properties/test_request_headers.py",
    ),
    "policy/decide.py": ("tests/policy/test_decide.py", "tests/security/test_tool_policy.py"),
    "policy/scopes.py": ("tests/policy/test_scopes.py", "tests/policy/test_decide.py"),
    "mcp/era.py": ("tests/mcp/test_era.py",),
    "mcp/sessions.py": ("tests/mcp/test_sessions.py", "tests/properties/test_sealed_sessions.py"),
    "mcp/sse.py": ("tests/mcp/test_sse.py", "tests/properties/test_sse_rewriter.py"),
    "auth/bearer.py": ("tests/auth/test_bearer.py", "tests/properties/test_tokens.py"),
    "auth/keys.py": ("tests/auth/test_keys.py", "tests/auth/test_jwt.py"),
    "urls.py": ("tests/test_urls.py", "tests/auth/test_fetch.py", "tests/auth/test_fetch_reach.py"),
    "auth/fetch.py": (
        "tests/auth/test_fetch.py",
        "tests/auth/test_fetch_reach.py",
        "tests/auth/test_discovery.py",
        "tests/security/test_discovery_and_keys.py",
    ),
    "mcp/statuses.py": ("tests/mcp/test_statuses.py", "tests/security/test_up_faults.py"),
    "mcp/request_state.py": ("tests/mcp/test_request_state.py", "tests/integration/test_request_state.py"),
    "pipeline/listing.py": ("tests/pipeline/test_listing.py",),
    "pipeline/authorize.py": ("tests/pipeline/test_authorize.py",),
    "auth/jwt.py": ("tests/auth/test_jwt.py",),
    "mcp/jsonrpc.py": ("tests/mcp/test_jsonrpc.py", "tests/mcp/test_calls.py"),
}
# Process groups of the pytest runs in flight, ended on Ctrl-C (they are not in our group).
_RUNNING: set[int] = set()
_STOP = threading.Event()
PYTEST_ARGS = ("-x", "-q", "--no-header", "--tb=no", "-rfE", "-p", "no:cacheprovider", "--hypothesis-seed=0")


@dataclass
class Outcome:
    module: str
    line: int
    operator: str
    original: str
    replacement: str
    verdict: str  # killed | survived | timeout
    seconds: float
    description: str
    killed_by: str = ""

    def where(self) -> str:
        return f"{PACKAGE}/{self.module}:{self.line}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/mutate",
        description="Mutation testing of the security modules: each mutant is tested against a copy of src/.",
        epilog="modules: " + ", ".join(MODULES),
    )
    parser.add_argument(
        "modules",
        nargs="*",
        metavar="MODULE[:LINE,…]",
        help="e.g. pipeline/edge.py or pipeline/edge.py:51,53 (default: all, in the order above)",
    )
    parser.add_argument("--jobs", "-j", type=int, default=1, choices=(1, 2), help="parallel runs (default 1)")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument(
        "--tests", nargs="+", metavar="FILE", help="run these test files instead of the module's own"
    )
    parser.add_argument(
        "--report", type=Path, default=DEFAULT_REPORT, help=f"JSON report (default {DEFAULT_REPORT})"
    )
    parser.add_argument(
        "--timeout-factor",
        type=float,
        default=3.0,
        help="a mutant's limit: this times the clean run, plus 10 s",
    )
    args = parser.parse_args(argv)
    try:
        selected = [_parse_target(t) for t in args.modules] or [(m, None) for m in MODULES]
    except ValueError as exc:
        parser.error(str(exc))
    os.chdir(ROOT)
    if args.list:
        for module, lines in selected:
            for mutant in _mutants(module, lines):
                print(f"{PACKAGE}/{module}:{mutant.line}: [{mutant.operator}] {mutant.describe()}")
        return 0
    outcomes: list[Outcome] = []
    scores: dict[str, tuple[int, int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="bastion-mutate-") as scratch:
        copies = [_copy_source(Path(scratch) / f"copy{i}") for i in range(args.jobs)]
        imported = _imported_from(copies[0])
        if not imported.startswith(str(copies[0])):
            print(f"!! the tests would import {imported}, not the copy: is a compiled build installed?")
            return 2
        try:
            for module, lines in selected:
                tests = tuple(args.tests) if args.tests else MODULES[module]
                result = _run_module(module, lines, tests, copies, Path(scratch), args.timeout_factor)
                if result is None:
                    return 2
                outcomes.extend(result)
                scores[module] = _tally(result)
        except KeyboardInterrupt:
            _STOP.set()
            for group in list(_RUNNING):
                _kill(group)
            print("\ninterrupted: the scores below cover the modules that finished", file=sys.stderr)
    _print_summary(scores, outcomes)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps([asdict(o) for o in outcomes], indent=1, ensure_ascii=False) + "\n")
    print(f"\nreport: {args.report}")
    return 0


def _parse_target(text: str) -> tuple[str, set[int] | None]:
    module, _, lines = text.partition(":")
    module = module.removeprefix(f"{PACKAGE}/").removeprefix("mcp_bastion/")
    if not module.endswith(".py"):
        module += ".py"
    if module not in MODULES:
        raise ValueError(f"unknown module {module!r}; known: {', '.join(MODULES)}")
    if not lines:
        return module, None
    try:
        return module, {int(n) for n in lines.split(",")}
    except ValueError:
        raise ValueError(f"{text!r}: lines are numbers separated by commas") from None


def _mutants(module: str, lines: set[int] | None) -> list[Mutant]:
    found = mutants_of((ROOT / PACKAGE / module).read_text(encoding="utf-8"))
    return [m for m in found if lines is None or m.line in lines]


def _copy_source(target: Path) -> Path:
    # Bytecode is left out: a mutant of the same size written in the same second as the
    # original would otherwise be shadowed by the original's cached .pyc.
    shutil.copytree(
        ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd")
    )
    return target / "src"


def _run_module(
    module: str,
    lines: set[int] | None,
    tests: tuple[str, ...],
    copies: list[Path],
    scratch: Path,
    factor: float,
) -> list[Outcome] | None:
    missing = [t for t in tests if not (ROOT / t.split("::")[0]).exists()]
    tests = tuple(t for t in tests if t not in missing)
    mutants = _mutants(module, lines)
    print(f"== {module}: {len(mutants)} mutants; tests: {' '.join(tests)}", flush=True)
    for path in missing:
        print(f"   (no {path} yet)", flush=True)
    if not mutants:
        return []
    started = time.monotonic()
    clean = _pytest(copies[0], tests, scratch, timeout=600)
    baseline = time.monotonic() - started
    if clean[0] != "survived":
        print(
            f"!! the tests fail on the unmutated source ({clean[1] or clean[0]}): fix that first", flush=True
        )
        return None
    timeout = factor * baseline + 10
    print(f"   clean run {baseline:.1f} s; limit per mutant {timeout:.0f} s", flush=True)
    source = (ROOT / PACKAGE / module).read_text(encoding="utf-8")
    free: Queue[Path] = Queue()
    for copy in copies:
        free.put(copy)

    def one(mutant: Mutant) -> Outcome:
        if _STOP.is_set():
            raise KeyboardInterrupt
        copy = free.get()
        target = copy / "mcp_bastion" / module
        try:
            target.write_text(apply(source, mutant), encoding="utf-8")
            began = time.monotonic()
            verdict, killer = _pytest(copy, tests, scratch, timeout)
            took = time.monotonic() - began
        finally:
            target.write_text(source, encoding="utf-8")
            free.put(copy)
        return Outcome(
            module,
            mutant.line,
            mutant.operator,
            mutant.original,
            mutant.replacement,
            verdict,
            took,
            mutant.describe(),
            killer,
        )

    results: list[Outcome] = []
    pool = ThreadPoolExecutor(max_workers=len(copies))
    try:
        for index, outcome in enumerate(pool.map(one, mutants), 1):
            results.append(outcome)
            mark = {"killed": "killed  ", "timeout": "timeout ", "survived": "SURVIVED"}[outcome.verdict]
            print(
                f"[{index}/{len(mutants)}] {mark} {outcome.where()}: {outcome.description}"
                f"  ({outcome.seconds:.1f} s)",
                flush=True,
            )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _environment(copy: Path, scratch: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),  # ahead of the editable install's src/
        "PYTHONDONTWRITEBYTECODE": "1",
        "HYPOTHESIS_STORAGE_DIRECTORY": str(scratch / "hypothesis"),  # no mutant's examples in .hypothesis/
    }
    env.pop("MCP_BASTION_EXPECT_COMPILED", None)
    return env


def _imported_from(copy: Path) -> str:
    command = [sys.executable, "-c", "import mcp_bastion; print(mcp_bastion.__file__)"]
    env = _environment(copy, copy.parent)
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()


def _pytest(copy: Path, tests: tuple[str, ...], scratch: Path, timeout: float) -> tuple[str, str]:
    command = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests]
    # Its own process group: a timed-out run is ended with every server it started.
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=_environment(copy, scratch),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        _RUNNING.add(proc.pid)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc.pid)
            proc.communicate()
            return "timeout", ""
        finally:
            _RUNNING.discard(proc.pid)
    if proc.returncode == 0:
        return "survived", ""
    if _STOP.is_set():
        raise KeyboardInterrupt
    return "killed", _first_failure(output.decode("utf-8", "replace"))


def _kill(group: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].split(" ", 1)[1]
    tail = [line for line in output.splitlines() if line.strip()]
    return tail[-1][:120] if tail else "pytest exited non-zero"


def _tally(outcomes: list[Outcome]) -> tuple[int, int, int]:
    killed = sum(o.verdict == "killed" for o in outcomes)
    timeouts = sum(o.verdict == "timeout" for o in outcomes)
    return killed, timeouts, len(outcomes)


def _print_summary(scores: dict[str, tuple[int, int, int]], outcomes: list[Outcome]) -> None:
    print("\n== scores (killed + timed out) / mutants")
    for module, (killed, timeouts, total) in scores.items():
        score = f"{100 * (killed + timeouts) / total:5.1f} %" if total else "    -  "
        print(f"{module:24} {score}  {killed + timeouts:4d} / {total:<4d} ({timeouts} timed out)")
    survivors = list(_survivors(outcomes))
    print(f"\n== {len(survivors)} surviving mutants")
    for line in survivors:
        print(line)


def _survivors(outcomes: list[Outcome]) -> Iterator[str]:
    for outcome in outcomes:
        if outcome.verdict == "survived":
            yield f"{outcome.where()}: {outcome.description}"


if __name__ == "__main__":
    sys.exit(main())
