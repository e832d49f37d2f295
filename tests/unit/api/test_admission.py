"""app.api.admission: CoDel-style admission by queueing delay, on a fake clock."""

from __future__ import annotations

from app.api.admission import QueueDelayGuard

TARGET, INTERVAL = 0.005, 0.1


def guard() -> QueueDelayGuard:
    return QueueDelayGuard(target_s=TARGET, interval_s=INTERVAL)


def test_short_queues_are_served_reads_and_writes() -> None:
    g = guard()
    for n in range(100):
        assert g.admit(0.001, n * 0.01)
        assert g.admit(0.004, n * 0.01 + 0.005, write=True)
    assert not g.overloaded and g.shed == 0 and not g.shedding(1.0)


def test_a_burst_is_absorbed_but_no_request_waits_past_the_interval() -> None:
    g = guard()
    assert g.admit(0.0, 0.0)  # the window's shortest wait is short: no standing queue
    assert g.admit(0.05, 0.01)
    assert g.admit(0.05, 0.02, write=True)
    assert not g.admit(0.2, 0.03)  # waited longer than a whole interval
    assert g.admit(0.001, 0.11)  # the next window: still not overloaded
    assert not g.overloaded


def test_a_standing_queue_sheds_what_waited_past_the_target_and_every_write() -> None:
    g = guard()
    for n in range(10):  # a whole interval in which even the shortest wait was 20 ms
        g.admit(0.02 + n * 0.001, n * 0.01)
    assert g.admit(0.02, 0.1) is False  # the window closed: overloaded, 20 ms > target
    assert g.overloaded
    assert g.admit(0.003, 0.11)  # a read that hardly waited is still served
    assert not g.admit(0.003, 0.12, write=True)  # writes go first
    assert g.shedding(0.12)


def test_the_overload_ends_with_the_first_window_whose_shortest_wait_is_short() -> None:
    g = guard()
    for n in range(11):
        g.admit(0.02, n * 0.01)
    assert g.overloaded
    g.admit(0.001, 0.15)  # a short wait in this window
    assert g.admit(0.01, 0.21)  # the window closed with a short minimum: not overloaded
    assert not g.overloaded
    assert g.admit(0.01, 0.22, write=True)
    assert not g.shedding(0.21 + INTERVAL)  # nothing shed for an interval
