"""Admission by queueing delay: shed load where the queue forms, before any work is done.

A request's queueing delay is the time from its headers' arrival (stamped by the server's
protocol, `app.server`) to the moment its handler starts. Past saturation it grows without
bound wherever requests wait: in the event loop's ready queue in embedded mode, behind
awaited I/O in remote mode. A count of requests in flight misses the first case entirely
(an embedded request never awaits, so the count stays near one).

The policy follows CoDel, as RPC servers apply it to request queues: the service is
overloaded while most requests of an interval waited longer than the target (a standing
queue, not a burst or one pause). While overloaded, a read that waited more than the target
is refused, and every write; otherwise only a request that waited longer than the request
deadline, which it could no longer meet. The event loop works in batches (every socket
read in one pass, then every handler), so the shortest wait, CoDel's usual signal, is near
zero in every batch however long the queue: the share over the target is used instead. A
refusal costs a few microseconds and a 503 with Retry-After, so the loop drains its queue
instead of serving answers nobody waits for any more.

A measured delay arrives late: by the time a handler sees it, the request has already
waited, and so has every request queued behind it. While overloaded, the server's protocol
therefore also asks at each request's arrival (`arrive`), before a task exists: the
requests admitted but not started yet, times the loop's CPU per request over the last
interval, predict this one's wait, and a read predicted past the target (a write past half
of it) is answered 503 at once. Refusals count as waits over the target, and an overload
lasts until fewer than a tenth of an interval's requests waited past it, so refusing at
arrival does not end the overload it is handling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class QueueDelayGuard:
    """Decides, from a request's queueing delay, whether to serve it.

    Pure: the caller passes the delay and the current time (seconds, one monotonic clock),
    and at arrival the loop thread's CPU time (seconds, one thread clock).
    """

    target_s: float
    interval_s: float
    max_wait_s: float
    overloaded: bool = False
    shed: int = 0
    waiting: int = 0  # admitted by `arrive`, handler not started
    cost_s: float = 0.0  # the loop's CPU per started request, over the last interval
    _window_end: float = 0.0
    _seen: int = 0
    _over_target: int = 0
    _last_shed_at: float = field(default=-math.inf)
    _cost_window_end: float = 0.0
    _cpu_mark_s: float = 0.0
    _started: int = 0

    def admit(self, delay_s: float, now: float, *, write: bool = False) -> bool:
        """At the handler's start, `delay_s` after the request arrived."""
        self._roll(now)
        self._seen += 1
        if delay_s > self.target_s:
            self._over_target += 1
        if self.overloaded:
            admitted = not write and delay_s <= self.target_s
        else:
            admitted = delay_s <= self.max_wait_s
        if not admitted:
            self._refused(now)
        return admitted

    def arrive(self, now: float, cpu_s: float, *, write: bool = False) -> bool:
        """At the request's arrival: admitted unless overloaded and predicted to wait too long.

        An admitted request must be followed by `start` when its handler runs.
        """
        self._roll(now)
        if now >= self._cost_window_end:
            if self._started:  # an idle interval keeps the last estimate
                self.cost_s = (cpu_s - self._cpu_mark_s) / self._started
            self._cpu_mark_s, self._started = cpu_s, 0
            self._cost_window_end = now + self.interval_s
        limit_s = self.target_s / 2 if write else self.target_s
        if self.overloaded and self.waiting * self.cost_s > limit_s:
            self._seen += 1
            self._over_target += 1
            self._refused(now)
            return False
        self.waiting += 1
        return True

    def start(self) -> None:
        """The handler of a request that `arrive` admitted starts."""
        self.waiting -= 1
        self._started += 1

    def shedding(self, now: float) -> bool:
        """Overloaded, or shed a request within the last interval: not ready for more."""
        return self.overloaded or now - self._last_shed_at < self.interval_s

    def _roll(self, now: float) -> None:
        if now < self._window_end:
            return
        if self._seen:  # a window without requests leaves the state as it was
            over = self._over_target / self._seen
            self.overloaded = over > (0.1 if self.overloaded else 0.5)
        self._seen = self._over_target = 0
        self._window_end = now + self.interval_s

    def _refused(self, now: float) -> None:
        self.shed += 1
        self._last_shed_at = now
