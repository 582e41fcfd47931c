"""GCRA in integer microseconds: the admissions of a token bucket, one number per key."""

from __future__ import annotations

import pytest

from mcp_bastion.quota.gcra import admit, retry_seconds

SECOND = 1_000_000


def _run(times: list[int], interval: int, burst: int) -> list[bool]:
    tat = None
    allowed = []
    for now in times:
        admission = admit(tat, now, interval, burst)
        tat = admission.tat
        allowed.append(admission.allowed)
    return allowed


def test_a_burst_is_admitted_at_once_then_the_sustained_rate() -> None:
    # 2 per second, burst 3: three at t=0, the fourth refused, one more every half second.
    times = [0, 0, 0, 0, SECOND // 2, SECOND // 2, SECOND, SECOND + 1]
    assert _run(times, SECOND // 2, 3) == [True, True, True, False, True, False, True, False]


def test_refusal_says_how_long_until_the_same_request_passes() -> None:
    tat = admit(None, 0, SECOND, 1).tat  # one per second, burst 1: the first uses it
    refused = admit(tat, 250_000, SECOND, 1)
    assert (refused.allowed, refused.retry_after_us) == (False, 750_000)
    assert refused.tat == tat  # a refusal records nothing
    assert admit(tat, 250_000 + refused.retry_after_us, SECOND, 1).allowed


def test_a_batch_costs_one_per_call_and_is_admitted_whole_or_not_at_all() -> None:
    assert admit(None, 0, SECOND, 5, cost=5).allowed
    assert not admit(None, 0, SECOND, 5, cost=6).allowed


def test_a_clock_stepping_back_admits_nothing_more() -> None:
    # Clock skew: a replica (or an NTP step) whose clock goes back must not refill the bucket.
    tat = None
    for _ in range(3):
        tat = admit(tat, 10 * SECOND, SECOND, 3).tat
    assert not admit(tat, 10 * SECOND, SECOND, 3).allowed
    assert not admit(tat, 5 * SECOND, SECOND, 3).allowed  # five seconds back: still refused
    assert not admit(tat, 0, SECOND, 3).allowed


def test_a_key_whose_time_has_passed_is_the_same_as_a_new_key() -> None:
    # What lets the stores forget such keys without changing any decision.
    tat = admit(None, 0, SECOND, 2).tat
    later = 5 * SECOND
    assert admit(tat, later, SECOND, 2) == admit(None, later, SECOND, 2)


@pytest.mark.parametrize(
    ("micros", "seconds"), [(1, 1), (999_999, 1), (1_000_000, 1), (1_000_001, 2), (59_500_000, 60)]
)
def test_retry_after_is_whole_seconds_rounded_up(micros: int, seconds: int) -> None:
    # RFC 9110 §10.2.3: delay-seconds is a non-negative integer; rounding down would invite an
    # early retry that is refused again.
    assert retry_seconds(micros) == seconds
