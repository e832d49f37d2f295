"""Admission by queueing delay: shed load where the queue forms, before any work is done.

A request's queueing delay is the time from its headers' arrival (stamped by the server's
protocol, `app.server`) to the moment its handler starts. Past saturation it grows without
bound wherever requests wait: in the event loop's ready queue in embedded mode, behind
awaited I/O in remote mode. A count of requests in flight misses the first case entirely
(an embedded request never awaits, so the count stays near one).

The policy is CoDel's, as large RPC stacks use it for request queues: the queue is
overloaded when even the shortest delay seen over an interval exceeds the target (a
standing queue, not a burst). While overloaded, a read that waited more than the target is
refused and every write is refused; otherwise only a read that waited a whole interval is.
A refusal costs a few microseconds and a 503 with Retry-After, so the loop drains its
queue instead of serving answers nobody waits for any more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class QueueDelayGuard:
    """Decides, from a request's queueing delay, whether to serve it.

    Pure: the caller passes the delay and the current time (seconds, one monotonic clock).
    """

    target_s: float
    interval_s: float
    overloaded: bool = False
    shed: int = 0
    _window_end: float = 0.0
    _window_min: float = field(default=math.inf)
    _last_shed_at: float = field(default=-math.inf)

    def admit(self, delay_s: float, now: float, *, write: bool = False) -> bool:
        if now >= self._window_end:
            # A window with no request leaves the state as it was (min is inf only if empty).
            if self._window_min != math.inf:
                self.overloaded = self._window_min > self.target_s
            self._window_min = math.inf
            self._window_end = now + self.interval_s
        if delay_s < self._window_min:
            self._window_min = delay_s
        if self.overloaded:
            admitted = not write and delay_s <= self.target_s
        else:
            admitted = delay_s <= self.interval_s
        if not admitted:
            self.shed += 1
            self._last_shed_at = now
        return admitted

    def shedding(self, now: float) -> bool:
        """Overloaded, or shed a request within the last interval: not ready for more."""
        return self.overloaded or now - self._last_shed_at < self.interval_s
