"""Prometheus metrics: counters, gauges and histograms, and their text exposition format (0.0.4).

Written here rather than taken from `prometheus_client`: the gateway needs three metric types,
records from one event loop (no locks), and a hot path that pays a dict update per sample.
Every label value is chosen by the gateway from a bounded set (`labels.py`); a value a
client or an upstream sent never becomes a label on its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["LATENCY_BUCKETS", "Counter", "Gauge", "Histogram", "MetricRegistry"]

LabelValues = tuple[str, ...]
# Seconds: a refused request takes tens of microseconds, an upstream call up to its timeout.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_LE_INF = 'le="+Inf"'


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_text
        self.labels = labels

    def lines(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self.samples()

    def samples(self) -> Iterator[str]:
        raise NotImplementedError

    def _series(self, values: LabelValues, extra: str = "") -> str:
        pairs = [f'{k}="{_escape_value(v)}"' for k, v in zip(self.labels, values, strict=True)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""


class _Valued(_Metric):
    """One number per label set: kept here, or read from `source` at each scrape (a value
    another part keeps, such as open connections or the audit sink's losses)."""

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        source: Callable[[], dict[LabelValues, float]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.values: dict[LabelValues, float] = {}
        self.source = source

    def samples(self) -> Iterator[str]:
        current = self.source() if self.source is not None else self.values
        for values, value in sorted(current.items()):
            yield f"{self.name}{self._series(values)} {_number(value)}"


class Counter(_Valued):
    kind = "counter"

    def inc(self, values: LabelValues = (), amount: float = 1.0) -> None:
        self.values[values] = self.values.get(values, 0.0) + amount


class Gauge(_Valued):
    kind = "gauge"

    def add(self, values: LabelValues, amount: float) -> None:
        self.values[values] = self.values.get(values, 0.0) + amount

    def set(self, values: LabelValues, value: float) -> None:
        self.values[values] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = buckets
        # Per series: a count per bucket (not cumulative: one increment per observation), the
        # count above the last bucket, and the sum.
        self.counts: dict[LabelValues, list[int]] = {}
        self.sums: dict[LabelValues, float] = {}

    def observe(self, values: LabelValues, value: float) -> None:
        counts = self.counts.get(values)
        if counts is None:
            counts = self.counts[values] = [0] * (len(self.buckets) + 1)
            self.sums[values] = 0.0
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[values] += value

    def samples(self) -> Iterator[str]:
        for values, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip(self.buckets, counts, strict=False):
                running += count
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{self._series(values, le)} {running}"
            running += counts[-1]
            yield f"{self.name}_bucket{self._series(values, _LE_INF)} {running}"
            yield f"{self.name}_sum{self._series(values)} {_number(self.sums[values])}"
            yield f"{self.name}_count{self._series(values)} {running}"


_M = TypeVar("_M", bound=_Metric)


class MetricRegistry:
    """The metrics of one process, in registration order."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def register(self, metric: _M) -> _M:
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics.append(metric)
        return metric

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        lines = [line for metric in self._metrics for line in metric.lines()]
        return ("\n".join(lines) + "\n").encode()


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_value(value: str) -> str:
    # The exposition format's three escapes; any other byte is literal UTF-8.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
