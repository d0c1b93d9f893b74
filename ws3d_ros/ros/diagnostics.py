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
- :class:`StampGaps` estimates messages lost before the node saw them (DDS under load,
  best-effort QoS) from each input's header stamps: a stamp step longer than 1.5 times
  the topic's typical period (median of recent steps) counts the missing periods.
- :meth:`NodeDiagnostics.report` returns ``(level, message, [(key, value), ...])`` with
  level 0 OK, 1 WARN (no output for a while with input arriving, recent drops of bad
  input, more than ``lidar_only_warn`` of the sweeps of the last ``window_s`` labelled
  without a camera's image — back to OK when the share falls), 2 ERROR (the pipeline
  failed on the last frame); values are strings, ready for ``diagnostic_msgs/KeyValue``.
  ``last_error`` is reported for ``error_ttl_s`` after it happened, then ages out.
- :class:`ThrottleFilter` rate-limits a :mod:`logging` logger per message template.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping

import numpy as np

__all__ = [
    "LatencyStats",
    "NodeDiagnostics",
    "RateMeter",
    "StampGaps",
    "ThrottleFilter",
    "printable",
]

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


class StampGaps:
    """Missing messages per topic, estimated from header stamps (module docstring)."""

    def __init__(self, history: int = 32) -> None:
        self._last: dict[str, int] = {}
        self._steps: dict[str, deque[int]] = {}
        self.history = history
        self.gaps: Counter[str] = Counter()

    def add(self, topic: str, stamp_ns: int) -> int:
        """Record one stamp; returns the messages estimated missing before it."""
        last = self._last.get(topic)
        self._last[topic] = stamp_ns
        if last is None or stamp_ns <= last:
            if last is not None and stamp_ns < last:
                self._steps.pop(topic, None)  # time went back (bag loop): start over
            return 0
        step = stamp_ns - last
        steps = self._steps.setdefault(topic, deque(maxlen=self.history))
        missing = 0
        if len(steps) >= 4:
            period = float(np.median(np.fromiter(steps, float)))
            if period > 0 and step > 1.5 * period:
                missing = max(0, round(step / period) - 1)
                self.gaps[topic] += missing
        if missing == 0:
            steps.append(step)  # only regular steps teach the period
        return missing


class NodeDiagnostics:
    """Counters and meters of one node (see the module docstring)."""

    def __init__(
        self,
        *,
        window_s: float = 5.0,
        stall_s: float = 3.0,
        lidar_only_warn: float = 0.5,
        error_ttl_s: float = 30.0,
    ) -> None:
        self._lock = threading.Lock()
        self.window_s = window_s
        self.stall_s = stall_s
        self.lidar_only_warn = lidar_only_warn
        self.error_ttl_s = error_ttl_s
        self.stamp_gaps = StampGaps()
        self._frames: deque[tuple[float, tuple[str, ...]]] = deque()  # (time, cameras missing)
        self._error_time: float | None = None
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

    def missing_cameras(self, cameras: Iterable[str], now: float | None = None) -> None:
        """One labelled sweep and the cameras it went without (``()``: fully fused)."""
        cams = tuple(cameras)
        with self._lock:
            for cam in cams:
                self.lidar_only[cam] += 1
            if now is not None:
                self._frames.append((now, cams))
                self._trim_frames(now)

    def stamp(self, topic: str, stamp_ns: int) -> None:
        """An input's header stamp, for the ``gaps.<topic>`` estimate."""
        with self._lock:
            self.stamp_gaps.add(topic, stamp_ns)

    def _trim_frames(self, now: float) -> None:
        while self._frames and now - self._frames[0][0] > self.window_s:
            self._frames.popleft()

    def lidar_only_share(self, now: float) -> tuple[float, int]:
        """(share of the last ``window_s``'s sweeps labelled without some camera, sweeps)."""
        with self._lock:
            self._trim_frames(now)
            n = len(self._frames)
            return (sum(1 for _, c in self._frames if c) / n if n else 0.0), n

    def published(self, now: float, timings: Mapping[str, float]) -> None:
        with self._lock:
            self.output.tick(now)
            self.latency.add(timings)
            self._error_frames = 0

    def failed(self, message: str, now: float | None = None) -> None:
        with self._lock:
            self.last_error = message
            self._error_time = time.monotonic() if now is None else now
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
            for topic, n in sorted(self.stamp_gaps.gaps.items()):
                kv.append((f"gaps.{topic}", str(n)))
            kv.append(("gaps.total", str(sum(self.stamp_gaps.gaps.values()))))
            for stage, s in sorted(self.latency.summary().items()):
                for stat in ("median", "p95", "max"):
                    kv.append((f"latency_ms.{stage}.{stat}", f"{s[stat]:.1f}"))
            if self.last_error and self._error_time is not None:
                if now - self._error_time > self.error_ttl_s and not self._error_frames:
                    self.last_error, self._error_time = "", None  # aged out
                else:
                    kv.append(("last_error", self.last_error))
                    kv.append(("last_error_age_s", f"{max(0.0, now - self._error_time):.1f}"))
            self._trim_frames(now)
            n_frames = len(self._frames)
            share = sum(1 for _, c in self._frames if c) / n_frames if n_frames else 0.0
            kv.append(("lidar_only_share", f"{share:.2f}"))
            level, message = self._level(now, share, n_frames)
            self._drops_seen = Counter(self.drops)
            return level, message, kv

    def _level(self, now: float, lidar_only_share: float, n_frames: int) -> tuple[int, str]:
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
        if n_frames and lidar_only_share > self.lidar_only_warn:
            cams = sorted({c for _, missing in self._frames for c in missing})
            return WARN, (
                f"{lidar_only_share:.0%} of the last {n_frames} sweeps labelled without "
                f"images of {', '.join(cams)} (LiDAR-only)"
            )
        if self.lidar_only and self.output.count:
            return OK, "running (some sweeps without images: see lidar_only_sweeps)"
        return OK, "running"


def printable(text: object, limit: int = 500) -> str:
    """``text`` safe for a terminal log line: control and format characters (ESC, newline,
    bidi overrides) shown as ``\\xNN`` / ``\\uNNNN``, at most ``limit`` characters.
    Message contents (field names, frame ids, encodings) come from other programs."""
    out = []
    for ch in str(text):
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    joined = "".join(out)
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


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
        if record.args:  # values from messages: no terminal control sequences in the log
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(printable(a) if isinstance(a, str | Exception) else a for a in args)
        return True
