"""The thread pool that runs blocking CQL calls, instrumented for metrics and tests.

It counts submissions (a request's "hops" into the pool), and knows how many threads are busy
and how many calls wait in its queue: the two numbers that show a pool too small for the load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class InstrumentedExecutor(ThreadPoolExecutor):
    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str = "",
        on_submit: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.max_workers = max_workers
        self.submitted = 0
        self._busy = 0
        self._lock = threading.Lock()
        # Called with (busy threads, queued calls) as each call arrives: what it will wait for.
        self._on_submit = on_submit

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        self.submitted += 1  # only ever called from the event loop thread
        if self._on_submit is not None:
            self._on_submit(self._busy, self.queue_depth)

        def run() -> R:
            with self._lock:
                self._busy += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._busy -= 1

        return super().submit(run)

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def queue_depth(self) -> int:
        queue: Any = self._work_queue
        return int(queue.qsize())
