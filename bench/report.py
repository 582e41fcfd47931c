"""From samples to what a reader sees: per-workload tables, the issue-4 targets, JSON, a plot.

Ratios (vs direct, vs nginx) are computed within a round, from samples taken seconds
apart, then summarized as median and min-max over the rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .load import Sample
from .streams import StreamSample


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread | None:
        data = list(values)
        return cls(statistics.median(data), min(data), max(data)) if data else None

    def to_json(self) -> dict[str, float]:
        return {"median": round(self.median, 4), "min": round(self.low, 4), "max": round(self.high, 4)}


@dataclass(frozen=True)
class Row:
    target: str
    rps: Spread
    p50_ms: Spread
    p99_ms: Spread
    errors: int
    requests: int
    cpu_us: Spread | None
    upstream_per_call: float | None  # exact, from sequential probe calls
    upstream_per_call_wrk: Spread | None  # from the wrk runs: requests in flight at the end add a little
    vs_direct: Spread | None  # throughput ratio to A within a round
    vs_nginx: Spread | None  # throughput ratio to B within a round
    added_p50_ms: Spread | None  # p50 minus A's p50 within a round
    background_cores: Spread | None  # other processes' CPU on the machine during the samples
    sample_error: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "errors": self.errors, "requests": self.requests}
        out["upstream_per_call"] = self.upstream_per_call
        for name in (
            "rps",
            "p50_ms",
            "p99_ms",
            "cpu_us",
            "upstream_per_call_wrk",
            "vs_direct",
            "vs_nginx",
            "added_p50_ms",
            "background_cores",
        ):
            value = getattr(self, name)
            out[name] = value.to_json() if value is not None else None
        if self.sample_error:
            out["first_error"] = self.sample_error
        return out


def summarize(
    samples: Sequence[Sample], targets: Sequence[str], probes: dict[str, float | None] | None = None
) -> list[Row]:
    rows = []
    by_round: dict[tuple[str, int], Sample] = {(s.target, s.round): s for s in samples}
    for target in targets:
        mine = [s for s in samples if s.target == target]
        if not mine:
            continue

        def ratio(ref: str, mine: list[Sample] = mine) -> Spread | None:
            pairs = [(s, by_round.get((ref, s.round))) for s in mine]
            return Spread.of(s.rps / r.rps for s, r in pairs if r is not None and r.rps > 0)

        direct = [(s, by_round.get(("A", s.round))) for s in mine]
        rows.append(
            Row(
                target=target,
                rps=_spread([s.rps for s in mine]),
                p50_ms=_spread([s.p50_ms for s in mine]),
                p99_ms=_spread([s.p99_ms for s in mine]),
                errors=sum(s.errors for s in mine),
                requests=sum(s.requests for s in mine),
                cpu_us=Spread.of(s.cpu_us_per_call for s in mine if s.cpu_us_per_call is not None),
                upstream_per_call=(probes or {}).get(target),
                upstream_per_call_wrk=Spread.of(
                    s.upstream_per_call for s in mine if s.upstream_per_call is not None
                ),
                vs_direct=ratio("A") if target != "A" else None,
                vs_nginx=ratio("B") if target not in ("A", "B") else None,
                added_p50_ms=(
                    Spread.of(s.p50_ms - r.p50_ms for s, r in direct if r is not None)
                    if target != "A"
                    else None
                ),
                background_cores=Spread.of(
                    s.background_cores for s in mine if s.background_cores is not None
                ),
                sample_error=next((s.sample_error for s in mine if s.sample_error), ""),
            )
        )
    return rows


def _spread(values: list[float]) -> Spread:
    spread = Spread.of(values)
    assert spread is not None
    return spread


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _range(spread: Spread | None, *, scale: float = 1.0, suffix: str = "") -> str:
    if spread is None:
        return "-"
    return f"{_fmt(spread.median * scale)}{suffix} ({_fmt(spread.low * scale)}-{_fmt(spread.high * scale)})"


def _single(spread: Spread | None, *, signed: bool = False) -> str:
    if spread is None:
        return "-"
    text = _fmt(abs(spread.median))
    return ("+" if spread.median >= 0 else "-") + text if signed else text


def _upstream(row: Row) -> str:
    if row.upstream_per_call is not None:
        return f"{row.upstream_per_call:.2f}"
    return "~" + _single(row.upstream_per_call_wrk) if row.upstream_per_call_wrk else "-"


HEADER = (
    "target",
    "req/s median (min-max)",
    "p50 ms",
    "p99 ms",
    "errors",
    "CPU µs/call",
    "upstream req/call",
    "vs direct req/s",
    "vs nginx req/s",
    "+p50 vs direct ms",
    "other load, cores (max)",
)


def table(rows: Sequence[Row], names: dict[str, str]) -> list[list[str]]:
    lines = []
    for row in rows:
        lines.append(
            [
                f"{row.target} {names.get(row.target, '')}",
                _range(row.rps),
                _single(row.p50_ms),
                _single(row.p99_ms),
                f"{row.errors}/{row.requests}",
                _single(row.cpu_us),
                _upstream(row),
                _range(row.vs_direct, scale=100, suffix="%"),
                _range(row.vs_nginx, scale=100, suffix="%"),
                _single(row.added_p50_ms, signed=True),
                "-" if row.background_cores is None else f"{row.background_cores.high:.2f}",
            ]
        )
    return lines


def render(cells: list[list[str]], header: Sequence[str] = HEADER, markdown: bool = False) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in cells]
        return "\n".join(out)
    widths = [max(len(str(h)), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(out)


STREAM_HEADER = (
    "target",
    "streams opened",
    "held upstream",
    "RSS before MB",
    "RSS with streams MB",
    "KB per stream",
    "upstream still open 3 s after hang-up",
)


def stream_table(samples: Sequence[StreamSample], names: dict[str, str]) -> list[list[str]]:
    return [
        [
            f"{s.target} {names.get(s.target, '')}",
            f"{s.opened}/{s.streams}",
            str(s.upstream_held),
            f"{s.rss_before_mb:.1f}",
            f"{s.rss_after_mb:.1f}",
            "-" if s.kb_per_stream is None else f"{s.kb_per_stream:.1f}",
            str(s.left_open_upstream),
        ]
        for s in samples
    ]


def plot(
    path: str, workloads: Sequence[str], results: dict[str, list[Row]], names: dict[str, str], note: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [
        t
        for t in ("A", "B", "C", "P", "D", "F", "G", "E")
        if any(r.target == t for rows in results.values() for r in rows)
    ]
    fig, axes = plt.subplots(2, 1, figsize=(12, 9), constrained_layout=True)
    width = 0.8 / max(1, len(targets))
    for index, target in enumerate(targets):
        xs, rps, low, high, cpu, cpu_xs = [], [], [], [], [], []
        for w, workload in enumerate(workloads):
            row = next((r for r in results.get(workload, []) if r.target == target), None)
            if row is None:
                continue
            x = w + (index - (len(targets) - 1) / 2) * width
            xs.append(x)
            rps.append(row.rps.median)
            low.append(row.rps.median - row.rps.low)
            high.append(row.rps.high - row.rps.median)
            if row.cpu_us is not None:
                cpu_xs.append(x)
                cpu.append(row.cpu_us.median)
        label = f"{target} {names.get(target, '')}"
        axes[0].bar(xs, rps, width, yerr=[low, high], capsize=2, label=label)
        axes[1].bar(cpu_xs, cpu, width, label=label)
    for ax, title in (
        (axes[0], "Throughput, verified answers per second (median, min-max over rounds)"),
        (axes[1], "Target's own CPU per call, µs (median over rounds)"),
    ):
        ax.set_yscale("log")
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads, rotation=20, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(ncol=len(targets), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    head, _, tail = note.partition(": ")
    fig.suptitle(f"mcp-bastion load bench — {head}\n{tail}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(
    results: dict[str, Any],
    rows: dict[str, list[Row]],
    streams: Sequence[StreamSample],
    names: dict[str, str],
    goal_cells: list[list[str]],
) -> str:
    """The whole report as Markdown, for docs/performance.md."""
    settings = results["settings"]
    out = [
        f"Command: `{results['command']}` — {settings['rounds']} round(s) of {settings['seconds']} s per target "
        f"per workload, commit {results['machine']['commit']}, {results['generated']}.",
        "",
        f"_{results['note']}._ Other processes kept {results['machine']['load_before_start_cores']} cores "
        "busy when the run started; the last column of each table gives the most any sample saw.",
        "",
    ]
    for name, title in results["workloads"].items():
        if rows.get(name):
            out += [f"**{name}** — {title}", "", render(table(rows[name], names), markdown=True), ""]
    if streams:
        out += [
            "**idle SSE streams**",
            "",
            render(stream_table(streams, names), STREAM_HEADER, markdown=True),
            "",
        ]
    sealing = results["sealing"]
    out += [
        f"**session sealing** (`SessionSealer`, timeit, {sealing.get('build', 'interpreted')}): seal {sealing['seal_us']} µs, "
        f"unseal {sealing['unseal_us']} µs, or {sealing.get('unseal_known_us', '-')} µs for an id opened before "
        f"({sealing['sealed_id_chars']}-character id)",
        "",
    ]
    steps = results.get("pinning_steps")
    if steps:
        out += [
            f"**pinning steps** (timeit, {steps['build']}, the fixture's 200 tools, µs): "
            f"tools/list filter, parse and serialize excluded: uncached {steps['filter_uncached_us']}, "
            f"cached with pinning off / record / enforce {steps['filter_off_us']} / {steps['filter_record_us']} / "
            f"{steps['filter_enforce_us']}; parsing and serializing the answer {steps['parse_serialize_us']}; "
            f"judging a new list {steps['first_sight_us']}, one with one tool changed {steps['one_changed_us']}; "
            f"one tools/call decision with pinning off / enforce {steps['decide_off_us']} / {steps['decide_enforce_us']}",
            "",
        ]
    out += [
        render(goal_cells, ("goal (issue 4)", "target", "measured", "verdict"), markdown=True),
        "",
    ]
    return "\n".join(out)
