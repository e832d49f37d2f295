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
    max_wait_s: float
    overloaded: bool = False
    shed: int = 0
    _window_end: float = 0.0
    _seen: int = 0
    _over_target: int = 0
    _last_shed_at: float = field(default=-math.inf)

    def admit(self, delay_s: float, now: float, *, write: bool = False) -> bool:
        if now >= self._window_end:
            if self._seen:  # a window without requests leaves the state as it was
                self.overloaded = 2 * self._over_target > self._seen
            self._seen = self._over_target = 0
            self._window_end = now + self.interval_s
        self._seen += 1
        if delay_s > self.target_s:
            self._over_target += 1
        if self.overloaded:
            admitted = not write and delay_s <= self.target_s
        else:
            admitted = delay_s <= self.max_wait_s
        if not admitted:
            self.shed += 1
            self._last_shed_at = now
        return admitted

    def shedding(self, now: float) -> bool:
        """Overloaded, or shed a request within the last interval: not ready for more."""
        return self.overloaded or now - self._last_shed_at < self.interval_s
