"""app.api.admission: CoDel-style admission by queueing delay, on a fake clock."""

from __future__ import annotations

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


def test_the_overload_ends_with_the_first_interval_whose_requests_mostly_waited_little() -> None:
    g = guard()
    for n in range(11):
        g.admit(0.02, n * 0.01)
    assert g.shedding(0.11) and g.shed == 1  # overloaded: the 20 ms wait at 0.1 was shed
    for n in range(5):
        g.admit(0.001, 0.15 + n * 0.005)  # most of this interval's requests: short waits
    assert g.admit(0.01, 0.21)  # the window closed: not overloaded
    assert not g.overloaded
    assert g.admit(0.01, 0.22, write=True)
    assert not g.shedding(0.21 + INTERVAL)  # nothing shed for an interval
