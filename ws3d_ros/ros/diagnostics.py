"""What the perception node says about itself, as plain key/values (no rclpy here).

Contract:
- :class:`RateMeter` gives messages per second over a sliding window of the caller's
  clock (seconds, monotonic); :class:`LatencyStats` keeps the last ``window`` samples
  per stage (ms) and reports median / p95 / max.
- :class:`NodeDiagnostics` gathers input rates (per topic), output rate, drops by reason
  (``input.<reason>`` for bad messages, ``sync.<reason>`` from the synchroniser,
  ``queue.stale`` for latest-wins drops), LiDAR-only sweeps per missing camera,
  per-stage latency (pipeline stages; ``queue_wait`` = receipt of the sweep to the worker
  taking it; ``worker`` = the worker's whole time on the frame, publishing included;
  ``end_to_end`` = receipt of the sweep to publish)
  and static facts (backend, mode, vocabulary). It is fed from several threads and
  locks internally.
- :meth:`NodeDiagnostics.report` returns ``(level, message, [(key, value), ...])`` with
  level 0 OK, 1 WARN (no output for a while with input arriving, recent drops of bad
  input or errors), 2 ERROR (the pipeline failed on the last frame); values are strings,
  ready for ``diagnostic_msgs/KeyValue``.
- :class:`ThrottleFilter` rate-limits a :mod:`logging` logger per message template.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping

import numpy as np

__all__ = ["LatencyStats", "NodeDiagnostics", "RateMeter", "ThrottleFilter"]

OK, WARN, ERROR = 0, 1, 2


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.count = 0

    def tick(self, now: float) -> None:
        self._times.append(now)
        self.count += 1
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def last(self) -> float | None:
        return self._times[-1] if self._times else None

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class LatencyStats:
    """Per-stage latency samples (ms) over the last ``window`` frames."""

    def __init__(self, window: int = 100) -> None:
        self._samples: dict[str, deque[float]] = {}
        self.window = window

    def add(self, timings: Mapping[str, float]) -> None:
        for stage, ms in timings.items():
            self._samples.setdefault(stage, deque(maxlen=self.window)).append(float(ms))

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage, values in self._samples.items():
            arr = np.fromiter(values, float)
            out[stage] = {
                "median": float(np.median(arr)),
                "p95": float(np.percentile(arr, 95)),
                "max": float(arr.max()),
            }
        return out


class NodeDiagnostics:
    """Counters and meters of one node (see the module docstring)."""

    def __init__(self, *, window_s: float = 5.0, stall_s: float = 3.0) -> None:
        self._lock = threading.Lock()
        self.window_s = window_s
        self.stall_s = stall_s
        self.inputs: dict[str, RateMeter] = {}
        self.output = RateMeter(window_s)
        self.drops: Counter[str] = Counter()
        self.events: Counter[str] = Counter()  # e.g. sync resets after time went back
        self.lidar_only: Counter[str] = Counter()  # camera -> sweeps labelled without it
        self.latency = LatencyStats()
        self.info: dict[str, str] = {}
        self.last_error: str = ""
        self._error_frames = 0
        self._drops_seen: Counter[str] = Counter()
        self._warn_reasons: list[str] = []

    # ---------------------------------------------------------------- feeding
    def received(self, topic: str, now: float) -> None:
        with self._lock:
            meter = self.inputs.get(topic)
            if meter is None:
                meter = self.inputs[topic] = RateMeter(self.window_s)
            meter.tick(now)

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            with self._lock:
                self.drops[reason] += count

    def event(self, name: str) -> None:
        with self._lock:
            self.events[name] += 1

    def set_drops(self, prefix: str, counts: Mapping[str, int]) -> None:
        """Mirror counters kept elsewhere (e.g. the synchroniser's) under ``prefix.``."""
        with self._lock:
            for reason, n in counts.items():
                self.drops[f"{prefix}.{reason}"] = int(n)

    def missing_cameras(self, cameras: Iterable[str]) -> None:
        with self._lock:
            for cam in cameras:
                self.lidar_only[cam] += 1

    def published(self, now: float, timings: Mapping[str, float]) -> None:
        with self._lock:
            self.output.tick(now)
            self.latency.add(timings)
            self._error_frames = 0

    def failed(self, message: str) -> None:
        with self._lock:
            self.last_error = message
            self._error_frames += 1

    def set_info(self, **values: object) -> None:
        with self._lock:
            self.info.update({k: str(v) for k, v in values.items()})

    # --------------------------------------------------------------- reading
    def report(self, now: float) -> tuple[int, str, list[tuple[str, str]]]:
        with self._lock:
            kv: list[tuple[str, str]] = sorted(self.info.items())
            for topic, meter in sorted(self.inputs.items()):
                kv.append((f"rate.in.{topic}", f"{meter.rate(now):.2f}"))
                kv.append((f"count.in.{topic}", str(meter.count)))
            kv.append(("rate.out", f"{self.output.rate(now):.2f}"))
            kv.append(("count.out", str(self.output.count)))
            for reason, n in sorted(self.drops.items()):
                kv.append((f"drops.{reason}", str(n)))
            kv.append(("drops.total", str(sum(self.drops.values()))))
            for name, n in sorted(self.events.items()):
                kv.append((f"events.{name}", str(n)))
            for cam, n in sorted(self.lidar_only.items()):
                kv.append((f"lidar_only_sweeps.{cam}", str(n)))
            for stage, s in sorted(self.latency.summary().items()):
                for stat in ("median", "p95", "max"):
                    kv.append((f"latency_ms.{stage}.{stat}", f"{s[stat]:.1f}"))
            if self.last_error:
                kv.append(("last_error", self.last_error))
            level, message = self._level(now)
            self._drops_seen = Counter(self.drops)
            return level, message, kv

    def _level(self, now: float) -> tuple[int, str]:
        if self._error_frames:
            return ERROR, f"inference failed: {self.last_error}"
        new = {
            r: n - self._drops_seen.get(r, 0)
            for r, n in self.drops.items()
            if n > self._drops_seen.get(r, 0) and r.startswith("input.")
        }
        last_in = max((m.last() or 0.0 for m in self.inputs.values()), default=0.0)
        last_out = self.output.last()
        if (
            last_in
            and now - last_in < self.stall_s
            and (last_out is None or now - last_out > self.stall_s)
        ):
            return WARN, "input arrives but no output for a while"
        if new:
            listed = ", ".join(f"{r} x{n}" for r, n in sorted(new.items()))
            return WARN, f"bad input dropped: {listed}"
        if self.lidar_only and self.output.count:
            return OK, "running (some sweeps without images: see lidar_only_sweeps)"
        return OK, "running"


class ThrottleFilter(logging.Filter):
    """A :mod:`logging` filter passing each message template at most once per ``period_s``
    (bad input at sensor rate must not flood the log); suppressed records are counted."""

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.period_s = period_s
        self._clock = clock
        self._last: dict[tuple[str, int], float] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        key = (str(record.msg), record.levelno)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period_s:
            self.suppressed += 1
            return False
        self._last[key] = now
        return True
