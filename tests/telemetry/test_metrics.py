"""The exposition format, read back by a strict parser: escapes, histogram buckets, gauges."""

from __future__ import annotations

import pytest

from mcp_bastion.telemetry.metrics import Counter, Gauge, Histogram, MetricRegistry

from ..support.prometheus import parse_exposition


def test_counter_series_per_label_values_and_escapes_survive_a_round_trip() -> None:
    registry = MetricRegistry()
    counter = registry.register(Counter("things_total", "Things.\nSecond line.", ("kind",)))
    hostile = 'a"b\\c\nd'  # each of the format's three escapes
    counter.inc(("plain",))
    counter.inc(("plain",), 2)
    counter.inc((hostile,))
    text = registry.exposition().decode()
    assert "# HELP things_total Things.\\nSecond line.\n" in text
    parsed = parse_exposition(text)
    assert parsed.types == {"things_total": "counter"}
    assert parsed.value("things_total", kind="plain") == 3
    assert parsed.value("things_total", kind=hostile) == 1
    assert len(text.splitlines()) == 4  # a line feed in a value never starts a new line


def test_histogram_buckets_are_cumulative_with_sum_count_and_inf() -> None:
    registry = MetricRegistry()
    histogram = registry.register(Histogram("wait_seconds", "Waits.", ("server",), buckets=(0.1, 1.0)))
    for value in (0.05, 0.1, 0.5, 3.0):  # 0.1 falls in the le="0.1" bucket (le: less or equal)
        histogram.observe(("a",), value)
    parsed = parse_exposition(registry.exposition().decode())
    assert parsed.types == {"wait_seconds": "histogram"}
    assert parsed.value("wait_seconds_bucket", server="a", le="0.1") == 2
    assert parsed.value("wait_seconds_bucket", server="a", le="1") == 3
    assert parsed.value("wait_seconds_bucket", server="a", le="+Inf") == 4
    assert parsed.value("wait_seconds_count", server="a") == 4
    assert parsed.value("wait_seconds_sum", server="a") == pytest.approx(3.65)


def test_gauge_reads_its_source_at_exposition_time() -> None:
    registry = MetricRegistry()
    open_now = [3]
    registry.register(Gauge("open", "Open.", source=lambda: {(): float(open_now[0])}))
    assert parse_exposition(registry.exposition().decode()).value("open") == 3
    open_now[0] = 0
    assert parse_exposition(registry.exposition().decode()).value("open") == 0


def test_a_name_registered_twice_is_refused() -> None:
    registry = MetricRegistry()
    registry.register(Counter("x_total", "X."))
    with pytest.raises(ValueError, match="twice"):
        registry.register(Gauge("x_total", "X again."))
