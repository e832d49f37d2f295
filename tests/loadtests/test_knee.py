"""The benchmark's knee rule: which ramp steps count as sustained (`runner.KneeLimits`)."""

from __future__ import annotations

from pathlib import Path

from loadtests.bench import vegeta
from loadtests.bench.runner import KneeLimits


def result(latencies_ms: list[float]) -> vegeta.Result:
    attack = vegeta.Attack.constant(Path("targets.jsonl"), 1000.0, 2.5)
    return vegeta.Result(
        attack=attack,
        requests=len(latencies_ms),
        statuses={"200": len(latencies_ms)},
        errors={},
        latencies_ms=sorted(latencies_ms),
        wall_s=2.5,
        per_second_ok=[],
    )


# A light step: median 0.5 ms, p95 1.0 ms (100 answers).
LIGHT = result([0.5] * 90 + [1.0] * 10)


def test_limits_are_twice_the_light_step_or_two_ms_more_whichever_is_larger() -> None:
    limits = KneeLimits.above(LIGHT)
    assert limits == KneeLimits(p50_ms=2.5, p95_ms=3.0)
    slow = KneeLimits.above(result([6.0] * 90 + [8.0] * 10))
    assert slow == KneeLimits(p50_ms=12.0, p95_ms=16.0)


def test_a_step_within_both_limits_is_sustained() -> None:
    limits = KneeLimits.above(LIGHT)
    assert limits.allow(result([0.6] * 94 + [2.9] * 5 + [400.0]))  # one stall: the slowest


def test_a_queue_the_median_hides_fails_the_step() -> None:
    # A queue a tenth of the answers waited in: the median fine, the p95 far gone.
    limits = KneeLimits.above(LIGHT)
    step = result([0.6] * 90 + [117.0] * 10)
    assert step.percentile(50) == 0.6
    assert not limits.allow(step)


def test_a_slow_median_fails_the_step() -> None:
    limits = KneeLimits.above(LIGHT)
    assert not limits.allow(result([2.6] * 100))


def test_a_step_without_a_successful_answer_is_not_sustained() -> None:
    assert not KneeLimits.above(LIGHT).allow(result([]))
