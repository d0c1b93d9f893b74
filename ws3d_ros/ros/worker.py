"""A latest-wins inference worker: the node's executor never waits for the model.

Contract (ROS-free, thread-safe):
- :class:`InferenceWorker` owns one thread and a bounded queue of ``depth`` items
  (default 1). :meth:`~InferenceWorker.submit` never blocks: when the queue is full the
  OLDEST queued item is dropped (counted in ``stats.dropped``, passed to ``on_drop``)
  and the new one queued, so the item the thread takes next is always the most recent.
  With periodic input of period P and processing time S, an item therefore waits at
  most about P + S before its result exists (never a growing backlog).
- :meth:`~InferenceWorker.call_soon` schedules a control task (e.g. a vocabulary
  change) that runs on the worker thread before the next item; tasks with the same
  ``key`` coalesce (only the latest runs). Tasks never drop queued items.
- An exception from ``process`` or a task is caught, counted in ``stats.errors`` and
  passed to ``on_error``; the thread keeps running.
- :meth:`~InferenceWorker.stop` ends the thread after the item in progress, waiting at
  most its ``timeout`` (it returns False when the item was abandoned); queued items are
  discarded (counted as ``stats.discarded_at_stop``), as by :meth:`~InferenceWorker.clear`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["InferenceWorker", "WorkerStats"]

T = TypeVar("T")


@dataclass
class WorkerStats:
    """Counts since start (read without a lock: each is an int written by one thread)."""

    submitted: int = 0
    processed: int = 0
    dropped: int = 0  # stale items replaced by a newer one
    errors: int = 0
    tasks: int = 0
    discarded_at_stop: int = 0
    busy_s: float = 0.0  # time spent in process()


class InferenceWorker(Generic[T]):
    """Runs ``process(item)`` on its own thread, latest item first (module docstring)."""

    def __init__(
        self,
        process: Callable[[T], None],
        *,
        depth: int = 1,
        name: str = "ws3d-inference",
        on_drop: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException, T | None], None] | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, found {depth}")
        self._process = process
        self.depth = depth
        self._on_drop = on_drop
        self._on_error = on_error
        self._items: deque[T] = deque()
        self._tasks: OrderedDict[str, Callable[[], None]] = OrderedDict()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = False
        self.stats = WorkerStats()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # ------------------------------------------------------------------ API
    def start(self) -> InferenceWorker[T]:
        self._thread.start()
        return self

    def submit(self, item: T) -> bool:
        """Queue ``item``; returns True when an older queued item was dropped for it."""
        dropped: T | None = None
        with self._cond:
            if self._stopping:
                return False
            self.stats.submitted += 1
            if len(self._items) >= self.depth:
                dropped = self._items.popleft()
                self.stats.dropped += 1
            self._items.append(item)
            self._cond.notify()
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)
        return dropped is not None

    def call_soon(self, key: str, task: Callable[[], None]) -> None:
        """Run ``task`` on the worker thread before the next item (latest per ``key``)."""
        with self._cond:
            self._tasks.pop(key, None)
            self._tasks[key] = task
            self._cond.notify()

    @property
    def queued(self) -> int:
        return len(self._items)

    @property
    def busy(self) -> bool:
        """True while ``process`` or a task runs."""
        return self._busy

    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        with self._cond:
            return not self._items and not self._tasks and not self._busy

    def clear(self) -> int:
        """Drop the queued items (not the tasks, not the one running); returns how many."""
        with self._cond:
            n = len(self._items)
            self.stats.discarded_at_stop += n
            self._items.clear()
            return n

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Drop what is queued and end the thread, waiting at most ``timeout`` s for the
        item in flight. Returns False when the thread is still running it (abandoned: the
        thread is a daemon and ends with the process)."""
        with self._cond:
            self._stopping = True
            self.stats.discarded_at_stop += len(self._items)
            self._items.clear()
            self._tasks.clear()
            self._cond.notify_all()
        if threading.current_thread() is self._thread:
            return True
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------- internals
    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._items or self._tasks):
                    self._cond.wait()
                if self._stopping:
                    return
                task = item = None
                if self._tasks:
                    _, task = self._tasks.popitem(last=False)
                else:
                    item = self._items.popleft()
                self._busy = True
            try:
                if task is not None:
                    self.stats.tasks += 1
                    task()
                else:
                    t0 = time.perf_counter()
                    try:
                        self._process(item)  # type: ignore[arg-type]
                    finally:
                        self.stats.busy_s += time.perf_counter() - t0
                    self.stats.processed += 1
            except Exception as exc:  # the thread must survive anything a frame does
                self.stats.errors += 1
                if self._on_error is not None:
                    self._on_error(exc, item)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
