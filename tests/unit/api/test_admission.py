"""app.api.admission: CoDel-style admission by queueing delay, on a fake clock."""

from __future__ import annotations

import pytest

from app.api.admission import QueueDelayGuard

TARGET, INTERVAL, MAX_WAIT = 0.005, 0.1, 0.25


def guard() -> QueueDelayGuard:
    return QueueDelayGuard(target_s=TARGET, interval_s=INTERVAL, max_wait_s=MAX_WAIT)


def test_short_queues_are_served_reads_and_writes() -> None:
    g = guard()
    for n in range(100):
        assert g.admit(0.001, n * 0.01)
        assert g.admit(0.004, n * 0.01 + 0.005, write=True)
    assert not g.overloaded and g.shed == 0 and not g.shedding(1.0)


def test_a_pause_is_absorbed_but_no_request_waits_past_the_deadline() -> None:
    g = guard()
    for n in range(8):  # most of the interval's requests waited little
        assert g.admit(0.001, n * 0.01)
    assert g.admit(0.05, 0.08)  # a pause: these waited, and are served
    assert g.admit(0.05, 0.09, write=True)
    assert not g.admit(0.3, 0.095)  # waited longer than its deadline: refused
    assert g.admit(0.001, 0.11)  # the next window: not overloaded
    assert not g.overloaded


def test_a_standing_queue_sheds_what_waited_past_the_target_and_every_write() -> None:
    g = guard()
    for n in range(10):  # an interval in which most requests waited past the target
        g.admit(0.0 if n % 3 == 0 else 0.02, n * 0.01)
    assert g.admit(0.02, 0.1) is False  # the window closed: overloaded, 20 ms > target
    assert g.overloaded
    assert g.admit(0.003, 0.11)  # a read that hardly waited is still served
    assert not g.admit(0.003, 0.12, write=True)  # writes go first
    assert g.shedding(0.12)


def test_the_overload_ends_with_the_first_interval_whose_requests_nearly_all_waited_little() -> (
    None
):
    g = guard()
    for n in range(11):
        g.admit(0.02, n * 0.01)
    assert g.shedding(0.11) and g.shed == 1  # overloaded: the 20 ms wait at 0.1 was shed
    for n in range(5):
        g.admit(0.001, 0.12 + n * 0.005)  # most of this interval's requests: short waits
    g.admit(0.001, 0.2)  # the window closed: one in six waited long, still overloaded
    assert g.shedding(0.2) and not g.admit(0.001, 0.2, write=True)
    for n in range(10):
        g.admit(0.001, 0.21 + n * 0.005)  # the next interval: every request waited little
    assert g.admit(0.01, 0.31)  # the window closed: not overloaded
    assert not g.overloaded
    assert g.admit(0.01, 0.32, write=True)
    assert not g.shedding(0.31 + INTERVAL)  # nothing shed for an interval


def overloaded_guard() -> QueueDelayGuard:
    g = guard()
    for n in range(10):
        g.admit(0.02, n * 0.01)
    g.admit(0.0, 0.1)  # the window closes: overloaded
    assert g.overloaded
    return g


def test_at_arrival_everything_is_admitted_while_not_overloaded() -> None:
    g = guard()
    for n in range(1000):  # a queue of a thousand requests, none started
        assert g.arrive(n * 1e-5, cpu_s=n * 1e-3)
    assert g.waiting == 1000 and g.shed == 0


def test_while_overloaded_a_request_predicted_to_wait_past_the_target_is_refused() -> None:
    g = overloaded_guard()
    for n in range(51):  # an interval in which 51 requests started, each after a long wait
        g.arrive(0.1 + n * 1e-4, cpu_s=0.0)
        g.start()
        g.admit(0.02, 0.1 + n * 1e-4)
    g.arrive(0.21, cpu_s=0.0612)  # the next interval: 61.2 ms of loop CPU for 51 starts
    assert g.cost_s == pytest.approx(0.0012)
    assert g.waiting == 1
    shed_before = g.shed
    admitted = [g.arrive(0.22, cpu_s=0.07) for _ in range(8)]
    # Each admitted read adds 1.2 ms to the next one's predicted wait; the target is 5 ms.
    assert admitted == [True] * 4 + [False] * 4
    assert g.waiting == 5 and g.shed == shed_before + 4 and g.shedding(0.22)
    g.start()
    g.start()
    assert not g.arrive(0.22, cpu_s=0.07, write=True)  # 3 waiting: 3.6 ms > half the target
    g.start()
    assert g.arrive(0.22, cpu_s=0.07, write=True)  # 2 waiting: 2.4 ms
    assert g.waiting == 3


def test_refusals_at_arrival_keep_the_overload_going() -> None:
    g = overloaded_guard()
    g.cost_s = 0.001
    g.waiting = 100  # far past the target: every arrival is refused
    for n in range(10):
        assert not g.arrive(0.11 + n * 0.005, cpu_s=0.0)
    for n in range(20):  # the requests already admitted start after short waits
        g.start()
        assert g.admit(0.004, 0.16 + n * 0.001)
    g.arrive(0.21, cpu_s=0.0)  # the window closed: a third of it refused
    assert g.overloaded
