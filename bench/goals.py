"""The targets of issue 4, checked against this run's numbers for the gateway (target C)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from .load import Sample
from .report import Row
from .streams import StreamSample

GOAL_HEADER = ("goal (issue 4)", "target", "measured", "verdict")


def goals(
    rows: Mapping[str, Sequence[Row]],
    samples: Mapping[str, Sequence[Sample]],
    streams: Sequence[StreamSample],
    sealing: Mapping[str, float],
    cores: int,
) -> list[dict[str, Any]]:
    c_json = _row(rows, "call_json_c32", "C")
    c_json1 = _row(rows, "call_json_c1", "C")
    stream = next((s for s in streams if s.target == "C"), None)
    scaling = _within_round_ratio(samples.get("workers_call_json_c32", []), "C2", "C")
    return [
        _goal(
            "gateway CPU per authorized tools/call (JSON), c=32",
            "≤ 100 µs",
            c_json.cpu_us.median if c_json and c_json.cpu_us else None,
            "{:.0f} µs",
            lambda v: v <= 100,
            extra=f"; at c=1: {c_json1.cpu_us.median:.0f} µs" if c_json1 and c_json1.cpu_us else "",
        ),
        _goal(
            "added p50 latency over direct, c=1",
            "≤ 0.25 ms",
            c_json1.added_p50_ms.median if c_json1 and c_json1.added_p50_ms else None,
            "{:+.3f} ms",
            lambda v: v <= 0.25,
        ),
        _goal(
            "throughput at c=32 vs the nginx hop",
            "≥ 25 %",
            c_json.vs_nginx.median * 100 if c_json and c_json.vs_nginx else None,
            "{:.0f} %",
            lambda v: v >= 25,
        ),
        _goal(
            "upstream HTTP requests per tools/call",
            "exactly 1",
            c_json.upstream_per_call if c_json else None,
            "{:.3f}",
            lambda v: v == 1,
        ),
        _goal("seal a session id", "≤ 20 µs", sealing.get("seal_us"), "{:.1f} µs", lambda v: v <= 20),
        _goal("unseal a session id", "≤ 20 µs", sealing.get("unseal_us"), "{:.1f} µs", lambda v: v <= 20),
        _goal(
            "memory per idle SSE stream",
            "≤ 50 KB",
            stream.kb_per_stream if stream else None,
            "{:.1f} KB",
            lambda v: v <= 50,
            extra=f" ({stream.opened} streams)" if stream else "",
        ),
        _goal(
            "throughput gain, serve --workers 1 → 2 (c=32)",
            "near-linear where cores allow",
            scaling,
            "{:.2f}x",
            (lambda v: v >= 1.8) if cores >= 4 else None,
            extra="" if cores >= 4 else f"; {cores} cores shared with wrk and the upstream: no room to scale",
        ),
    ]


def _row(rows: Mapping[str, Sequence[Row]], workload: str, target: str) -> Row | None:
    return next((r for r in rows.get(workload, ()) if r.target == target), None)


def _within_round_ratio(samples: Sequence[Sample], numerator: str, denominator: str) -> float | None:
    by = {(s.target, s.round): s for s in samples}
    ratios = [
        s.rps / by[(denominator, s.round)].rps
        for s in samples
        if s.target == numerator and (denominator, s.round) in by and by[(denominator, s.round)].rps > 0
    ]
    return statistics.median(ratios) if ratios else None


def _goal(
    name: str, target: str, value: float | None, fmt: str, test: Any, extra: str = ""
) -> dict[str, Any]:
    if value is None:
        return {"goal": name, "target": target, "value": None, "measured": "not measured", "met": None}
    met = test(value) if test is not None else None
    return {
        "goal": name,
        "target": target,
        "value": round(value, 4),
        "measured": fmt.format(value) + extra,
        "met": met,
    }


def goal_table(items: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    verdict = {True: "met", False: "MISSED", None: "n/a"}
    return [[g["goal"], g["target"], g["measured"], verdict[g["met"]]] for g in items]
