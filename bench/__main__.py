"""The load bench: `bench/run` (which installs what it needs) or `python -m bench`.

Starts every target on loopback, then for each workload runs rounds of A B C D E with wrk,
prints a table per workload, measures idle SSE streams, 1 vs 2 gateway workers and the
session sealer, and writes bench/out/results.json and bench/out/bench.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import goals as issue_goals
from . import report
from .issuer import LocalIssuer
from .load import Sample, machine_load, probe, run_wrk, wait_idle
from .machine import describe
from .streams import StreamSample, measure_idle_streams
from .targets import NATIVE, REPO, Launcher, Target
from .workloads import CEDAR, PINNING, WORKERS, WORKLOADS, Workload

OUT = REPO / "bench" / "out"
QUIET_CORES = 0.25


@dataclass
class Settings:
    rounds: int
    seconds: int
    warmup: int  # seconds of unrecorded load per target before a workload's rounds (0: none)
    streams: int
    fastmcp_streams: int  # each FastMCP stream opens a whole upstream session: ~0.1 s of CPU apiece
    probe_calls: int
    quick: bool


@dataclass
class Run:
    settings: Settings
    targets: list[Target] = field(default_factory=list)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    streams: list[StreamSample] = field(default_factory=list)
    probes: dict[str, dict[str, float | None]] = field(default_factory=dict)
    starters: dict[str, Callable[[], Target]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def names(self) -> dict[str, str]:
        return {t.key: t.name for t in self.targets}

    def section(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:4.0f} s] == {text}", flush=True)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"  ! {text}", flush=True)


def main() -> int:
    args = _parser().parse_args()
    if args.from_json:
        return _rerender(Path(args.from_json))
    settings = (
        Settings(rounds=1, seconds=1, warmup=0, streams=100, fastmcp_streams=50, probe_calls=5, quick=True)
        if args.quick
        else Settings(
            rounds=args.rounds,
            seconds=args.seconds,
            warmup=1,
            streams=args.streams,
            fastmcp_streams=min(args.streams, args.fastmcp_streams),
            probe_calls=10,
            quick=False,
        )
    )
    _raise_file_limit()
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in (*OUT.glob("audit-*.jsonl"), *OUT.glob("logs/*.log")):
        stale.unlink()
    machine = describe()
    machine["load_before_start_cores"] = _background(args.wait_quiet)
    note = (
        f"{machine['nproc']} cores ({machine['cpu_model']}) shared by wrk (1 thread), the target and its "
        "fixture upstream: absolute numbers vary between runs, compare ratios within one run"
    )
    dirty = " + uncommitted changes in src/" if machine["uncommitted_changes"] else ""
    print(f"mcp-bastion load bench — gateway at commit {machine['commit']}{dirty}\n{note}\n", flush=True)
    issuer = LocalIssuer().start()
    run = Run(settings)
    started = time.monotonic()
    try:
        run.section("starting the targets")
        _start_targets(run, Launcher(OUT, issuer), args.skip_fastmcp)
        _idle_streams(run)
        for workload in WORKLOADS:
            _workload(run, workload, run.targets)
        _workers(run, Launcher(OUT, issuer))
        _cedar(run, Launcher(OUT, issuer))
        _pinning(run, Launcher(OUT, issuer))
    finally:
        for target in run.targets:
            target.stop()
        issuer.stop()
    sealing = _sealing(5_000 if settings.quick else 20_000)
    steps = _pinning_steps(100 if settings.quick else 500)
    print(
        f"\nSession sealing (SessionSealer, timeit, {sealing['build']}): seal {sealing['seal_us']} µs,"
        f" unseal {sealing['unseal_us']} µs (an id opened before: {sealing['unseal_known_us']} µs)"
    )
    _finish(run, machine, note, sealing, time.monotonic() - started, steps)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~1.5-minute smoke run: 1 round of 1 s, 100 idle streams, FastMCP at c=1 only",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of A B C D E per workload (default 3)")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per measurement (default 3)")
    parser.add_argument(
        "--streams", type=int, default=1000, help="idle SSE streams held at once (default 1000)"
    )
    parser.add_argument(
        "--fastmcp-streams",
        type=int,
        default=200,
        help="idle streams for FastMCP, which opens an upstream session per stream (default 200)",
    )
    parser.add_argument("--skip-fastmcp", action="store_true", help="leave out target E")
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="measure nothing: re-render tables, goals and plot from a results.json",
    )
    parser.add_argument(
        "--wait-quiet",
        type=int,
        default=0,
        metavar="SECONDS",
        help="wait up to SECONDS for other processes to leave the cores idle before starting",
    )
    return parser


def _background(wait: int) -> float:
    """Cores other processes keep busy before we start; with --wait-quiet, wait for them to stop."""
    deadline = time.monotonic() + wait
    load = machine_load()
    while load > QUIET_CORES and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: other processes use {load:.2f} cores", flush=True)
        time.sleep(10)
        load = machine_load()
    if load > QUIET_CORES:
        print(
            f"  warning: other processes use {load:.2f} cores: throughput and latency will suffer", flush=True
        )
    return round(load, 2)


def _sealing(number: int) -> dict[str, Any]:
    """Sealing figures from the build the gateway targets run (compiled when there is one)."""
    return _steps("bench.sealing", number)


def _pinning_steps(number: int) -> dict[str, Any] | None:
    """The pinning steps (bench/pinning.py), or None for a gateway without pinning (`--ref`)."""
    try:
        steps = _steps("bench.pinning", number)
    except subprocess.CalledProcessError:
        print("\nPinning steps: not measured (this gateway has no pinning)")
        return None
    print(
        f"\nPinning steps ({steps['build']}, 200 tools, µs): filter uncached {steps['filter_uncached_us']},"
        f" cached off/record/enforce {steps['filter_off_us']}/{steps['filter_record_us']}/{steps['filter_enforce_us']};"
        f" first sight {steps['first_sight_us']}, one tool changed {steps['one_changed_us']};"
        f" decide off/enforce {steps['decide_off_us']}/{steps['decide_enforce_us']}"
    )
    return steps


def _steps(module: str, number: int) -> dict[str, Any]:
    """A timeit module's figures (JSON on stdout), run in the build the gateway targets run."""
    env = dict(os.environ)
    if NATIVE is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (NATIVE, env.get("PYTHONPATH"))))
    done = subprocess.run(
        [sys.executable, "-m", module, str(number)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65_536 if hard == resource.RLIM_INFINITY else min(65_536, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by every server we start


def _start_targets(run: Run, launcher: Launcher, skip_fastmcp: bool) -> None:
    starters: list[tuple[str, Callable[[], Target]]] = [
        ("A", launcher.direct),
        ("B", launcher.nginx),
        ("C", lambda: launcher.bastion("C", auth=True)),
        ("D", lambda: launcher.bastion("D", auth=False)),
        ("F", lambda: launcher.bastion("F", auth=True, filters="local")),
        ("G", lambda: launcher.bastion("G", auth=True, filters="guard")),
    ]
    if NATIVE is not None:
        starters.insert(3, ("P", lambda: launcher.bastion("P", auth=True, compiled=False)))
    if not skip_fastmcp:
        starters.append(("E", launcher.fastmcp))
    run.starters = dict(starters)
    with ThreadPoolExecutor(len(starters)) as pool:  # FastMCP alone takes seconds to import
        futures = [(key, pool.submit(start)) for key, start in starters]
    for key, future in futures:
        try:
            target = future.result()
        except Exception as exc:
            run.problem(f"target {key} did not start: {exc}")
            continue
        try:
            target.open_session()
        except Exception as exc:
            run.problem(
                f"target {key}: could not open a session ({exc}); session-era workloads run without one"
            )
        run.targets.append(target)
        print(f"  {target.key} {target.name:<15} {target.title} at {target.url} (pid {target.process.pid})")
    print(flush=True)


def _idle_streams(run: Run) -> None:
    run.section("concurrent idle SSE streams (memory per stream: RSS delta / streams)")
    for target in run.targets:
        count = run.settings.fastmcp_streams if target.key == "E" else run.settings.streams
        try:
            sample = measure_idle_streams(target, count, prime=not run.settings.quick)
        except Exception as exc:
            run.problem(f"idle streams on {target.key}: {exc}")
            continue
        finally:
            wait_idle(target.cpu_seconds)
        run.streams.append(sample)
        if sample.left_open_upstream:
            _restart(
                run,
                target,
                f"it kept {sample.left_open_upstream} upstream streams open after the clients left",
            )
        if sample.opened < count or not sample.settled:
            run.problem(
                f"idle streams on {target.key}: {sample.opened} of {count} opened, settled: {sample.settled}"
            )
    print(report.render(report.stream_table(run.streams, run.names), report.STREAM_HEADER) + "\n", flush=True)


def _restart(run: Run, target: Target, why: str) -> None:
    """Replace a target with a fresh one, so what the last test left behind weighs on nothing else."""
    run.problem(f"{target.key}: {why}; restarting it for the load runs")
    target.stop()
    index = run.targets.index(target)
    try:
        fresh = run.starters[target.key]()
        fresh.open_session()
    except Exception as exc:
        run.problem(f"{target.key} did not restart: {exc}")
        run.targets.pop(index)
        return
    run.targets[index] = fresh


def _workload(run: Run, workload: Workload, targets: list[Target], warmup: int | None = None) -> None:
    run.section(f"{workload.name}: {workload.title}")
    alive = [t for t in targets if t.process.popen.poll() is None]
    if run.settings.quick and workload.connections > 1 and any(t.key == "E" for t in alive):
        print("  (quick: FastMCP needs ~2 s per answer at c=32, so it runs at c=1 only)")
        alive = [t for t in alive if t.key != "E"]
    warm = run.settings.warmup if warmup is None else warmup
    probes = run.probes.setdefault(workload.name, {})
    for target in alive:
        if warm:
            _measure(run, target, workload, -1, warm)
        probes[target.key] = _probe(run, target, workload)
    samples = run.samples.setdefault(workload.name, [])
    for round_ in range(run.settings.rounds):
        for target in alive:
            sample = _measure(run, target, workload, round_, run.settings.seconds)
            if sample is not None:
                samples.append(sample)
    rows = report.summarize(samples, [t.key for t in targets], probes)
    print(report.render(report.table(rows, run.names)) + "\n", flush=True)


def _probe(run: Run, target: Target, workload: Workload) -> float | None:
    try:
        value, failure = probe(
            target.url, workload.request(target), target.upstream.stats, run.settings.probe_calls
        )
    except Exception as exc:
        value, failure = None, str(exc)
    if failure:
        run.problem(f"{workload.name} on {target.key}: probe call failed: {failure}")
    return value


def _measure(run: Run, target: Target, workload: Workload, round_: int, seconds: int) -> Sample | None:
    if workload.connections > 1:
        # A target whose latency under load exceeds the run answers nothing: give it time.
        seconds = max(seconds, target.min_seconds)
    try:
        sample = run_wrk(
            target.url,
            workload.request(target),
            connections=workload.connections,
            seconds=seconds,
            cpu=target.cpu_seconds,
            upstream=target.upstream.stats,
            upstream_cpu=None if target.key == "A" else target.upstream.process.cpu_seconds,
            target=target.key,
            workload=workload.name,
            round_=round_,
        )
    except Exception as exc:
        run.problem(f"{workload.name} on {target.key}: {exc}")
        wait_idle(target.cpu_seconds)
        return None
    stage = "warm-up (not recorded)" if round_ < 0 else f"round {round_ + 1}"
    if sample.errors:
        first = f": first failure {sample.sample_error!r}" if sample.sample_error else ""
        run.problem(
            f"{workload.name} on {target.key}, {stage}: {sample.errors} errors of {sample.requests}{first}"
        )
    elif sample.requests == 0:
        run.problem(f"{workload.name} on {target.key}, {stage}: no answer within {seconds} s")
    return sample


def _workers(run: Run, launcher: Launcher) -> None:
    one = next((t for t in run.targets if t.key == "C"), None)
    if one is None:
        return
    try:
        two = launcher.bastion("C2", auth=True, workers=2)
        two.open_session()
    except Exception as exc:
        run.problem(f"could not start the 2-worker gateway: {exc}")
        return
    print(f"  C2 {two.name:<15} {two.title} at {two.url} (pid {two.process.pid})", flush=True)
    run.targets.append(two)
    try:
        # Always warm up: a fresh worker's first calls are the ones that load the tool catalog.
        _workload(run, WORKERS, [one, two], warmup=max(1, run.settings.warmup))
    finally:
        two.stop()  # stopping again at the end is harmless; it stays listed for the report


CEDAR_TARGETS = {
    "CC": ("baseline", "destructive-needs-group", "read-only-after-hours"),
    "CA": ("baseline", "destructive-needs-group", "read-only-after-hours", "path-under-prefix"),
}


def _cedar(run: Run, launcher: Launcher) -> None:
    """The cost of Cedar policies: C against the same gateway with example policies on."""
    off = next((t for t in run.targets if t.key == "C"), None)
    if off is None:
        return
    on: list[Target] = []
    for key, policies in CEDAR_TARGETS.items():
        try:
            target = launcher.bastion(key, auth=True, cedar=policies)
            target.open_session()
        except Exception as exc:
            run.problem(f"could not start the gateway with Cedar policies ({key}): {exc}")
            continue
        print(
            f"  {key} {target.name:<15} {target.title} at {target.url} (pid {target.process.pid})", flush=True
        )
        run.targets.append(target)
        on.append(target)
    try:
        for workload in CEDAR:
            _workload(run, workload, [off, *on], warmup=max(1, run.settings.warmup))
    finally:
        for target in on:
            target.stop()


def _pinning(run: Run, launcher: Launcher) -> None:
    """Pinning off (O) and enforce (K) beside C (record, the default) and nginx (B): the per-call
    cost of pinning, and of the 200-tool list it caches."""
    others = [t for t in run.targets if t.key in ("B", "C")]
    started: list[Target] = []
    for key, mode in (("O", "off"), ("K", "enforce")):
        try:
            target = launcher.bastion(key, auth=True, pinning=mode)
            target.open_session()
        except Exception as exc:
            run.problem(f"could not start the pinning-{mode} gateway: {exc}")
            continue
        print(
            f"  {key} {target.name:<15} {target.title} at {target.url} (pid {target.process.pid})", flush=True
        )
        started.append(target)
        run.targets.append(target)
    try:
        for workload in PINNING:
            _workload(run, workload, [*others, *started], warmup=max(1, run.settings.warmup))
    finally:
        for target in started:
            target.stop()


def _finish(
    run: Run,
    machine: dict[str, Any],
    note: str,
    sealing: dict[str, float],
    elapsed: float,
    pinning: dict[str, Any] | None = None,
) -> None:
    results = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": os.environ.get("BENCH_COMMAND", "python -m bench " + " ".join(sys.argv[1:])).strip(),
        "settings": run.settings.__dict__,
        "elapsed_seconds": round(elapsed, 1),
        "machine": machine,
        "note": note,
        "targets": {t.key: {"name": t.name, "title": t.title} for t in run.targets},
        "workloads": {w.name: w.title for w in (*WORKLOADS, WORKERS, *CEDAR, *PINNING)},
        "samples": {w: [s.to_json() for s in ss] for w, ss in run.samples.items()},
        "idle_streams": [s.to_json() for s in run.streams],
        "upstream_probes": run.probes,
        "sealing": sealing,
        "pinning_steps": pinning,
        "problems": run.problems,
    }
    _render(results)
    print(f"\nWrote {OUT / 'results.json'}, {OUT / 'tables.md'} and {OUT / 'bench.png'} in {elapsed:.0f} s.")
    if run.problems:
        print(f"{len(run.problems)} problem(s) noted above; they are listed in results.json.")


def _render(results: dict[str, Any]) -> None:
    """Summaries, goals, tables.md and the plot from the raw results (also: --from-json)."""
    samples = {w: [Sample(**s) for s in ss] for w, ss in results["samples"].items()}
    streams = [StreamSample(**s) for s in results["idle_streams"]]
    names = {key: target["name"] for key, target in results["targets"].items()}
    workloads = list(results["workloads"])
    keys = ["A", "B", "C", "P", "D", "F", "G", "E", "C2", "CC", "CA", "O", "K"]
    rows = {
        w: report.summarize(samples.get(w, []), keys, results["upstream_probes"].get(w)) for w in workloads
    }
    nproc = int(results["machine"]["nproc"] or 1)
    goals = issue_goals.goals(rows, samples, streams, results["sealing"], nproc)
    print("\nIssue 4 targets (gateway C, full auth):")
    print(report.render(issue_goals.goal_table(goals), issue_goals.GOAL_HEADER))
    results["results"] = {w: [r.to_json() for r in rows[w]] for w in workloads}
    results["goals"] = goals
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (OUT / "tables.md").write_text(
        report.markdown(results, rows, streams, names, issue_goals.goal_table(goals))
    )
    try:
        report.plot(str(OUT / "bench.png"), [w.name for w in WORKLOADS], rows, names, results["note"])
    except Exception as exc:  # matplotlib missing: the numbers still stand
        print(f"  ! no plot: {exc}")


def _rerender(path: Path) -> int:
    results = json.loads(path.read_text())
    _render(results)
    print(f"Rendered {OUT / 'results.json'}, {OUT / 'tables.md'} and {OUT / 'bench.png'} from {path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
