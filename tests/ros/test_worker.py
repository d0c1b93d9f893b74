"""The latest-wins inference worker and the diagnostics helpers (ROS-free)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from ros_harness import wait_for

from ws3d_ros.ros.diagnostics import LatencyStats, NodeDiagnostics, RateMeter, ThrottleFilter
from ws3d_ros.ros.worker import InferenceWorker


def test_latest_wins_drops_the_oldest_and_processes_the_newest() -> None:
    gate = threading.Event()
    done: list[int] = []
    dropped: list[int] = []

    def process(item: int) -> None:
        gate.wait(5)
        done.append(item)

    worker = InferenceWorker(process, depth=1, on_drop=dropped.append).start()
    worker.submit(0)  # taken at once, blocks on the gate
    wait_for(lambda: worker.busy, 5, "the worker to start")
    for k in range(1, 6):
        worker.submit(k)
    assert worker.queued == 1
    gate.set()
    wait_for(worker.idle, 5, "the worker to finish")
    worker.stop()
    assert done == [0, 5]  # the newest wins, nothing stale is processed
    assert dropped == [1, 2, 3, 4]
    s = worker.stats
    assert (s.submitted, s.processed, s.dropped) == (6, 2, 4)
    assert s.submitted == s.processed + s.dropped  # every item accounted for


def test_tasks_run_before_the_next_item_and_coalesce() -> None:
    order: list[str] = []
    gate = threading.Event()
    worker = InferenceWorker(lambda item: (gate.wait(5), order.append(item)), depth=2).start()
    worker.submit("a")
    wait_for(lambda: worker.busy, 5, "busy")
    worker.submit("b")
    worker.call_soon("vocab", lambda: order.append("vocab-1"))
    worker.call_soon("vocab", lambda: order.append("vocab-2"))  # replaces vocab-1
    gate.set()
    wait_for(worker.idle, 5, "idle")
    worker.stop()
    assert order == ["a", "vocab-2", "b"]
    assert worker.stats.dropped == 0


def test_errors_are_counted_and_the_thread_survives() -> None:
    errors: list[str] = []

    def process(item: int) -> None:
        if item == 1:
            raise ValueError("bad frame")

    worker = InferenceWorker(process, on_error=lambda e, item: errors.append(f"{item}:{e}"))
    worker.start()
    for k in range(3):
        worker.submit(k)
        wait_for(worker.idle, 5, "idle")
    worker.stop()
    assert errors == ["1:bad frame"]
    assert worker.stats.errors == 1 and worker.stats.processed == 2


def test_stop_discards_queue_and_refuses_new_items() -> None:
    gate = threading.Event()
    worker = InferenceWorker(lambda item: gate.wait(5), depth=3).start()
    for k in range(4):
        worker.submit(k)
    gate.set()
    worker.stop()
    assert not worker.submit(9)
    s = worker.stats
    assert s.submitted == s.processed + s.dropped + s.discarded_at_stop
    with pytest.raises(ValueError):
        InferenceWorker(lambda item: None, depth=0)


def test_rate_meter_and_latency_stats() -> None:
    meter = RateMeter(window_s=2.0)
    for k in range(21):
        meter.tick(10.0 + k * 0.1)
    assert meter.rate(12.0) == pytest.approx(10.0, rel=0.05)
    assert meter.rate(30.0) == 0.0  # nothing in the window any more
    stats = LatencyStats(window=3)
    for ms in (10.0, 20.0, 30.0, 40.0):
        stats.add({"total": ms})
    s = stats.summary()["total"]
    assert (s["median"], s["max"]) == (30.0, 40.0)


def test_node_diagnostics_report() -> None:
    d = NodeDiagnostics(stall_s=1.0)
    d.set_info(backend="onnxruntime", vocabulary="car,road")
    d.received("points", 1.0)
    d.received("points", 1.1)
    d.published(1.2, {"total": 12.0, "end_to_end": 20.0})
    d.drop("input.bad_cloud")
    d.set_drops("sync", {"late": 2})
    d.missing_cameras(["front"])
    d.event("sync_reset")
    level, message, kv = d.report(1.3)
    values = dict(kv)
    assert level == 1 and "bad_cloud" in message
    assert values["backend"] == "onnxruntime"
    assert values["drops.input.bad_cloud"] == "1" and values["drops.sync.late"] == "2"
    assert values["drops.total"] == "3"
    assert values["lidar_only_sweeps.front"] == "1"
    assert values["events.sync_reset"] == "1"
    assert values["latency_ms.end_to_end.median"] == "20.0"
    assert all(isinstance(v, str) for _, v in kv)
    level, _, _ = d.report(1.4)
    assert level == 0  # the drop was reported once
    d.received("points", 5.0)
    level, message, _ = d.report(5.1)
    assert level == 1 and "no output" in message
    d.failed("RuntimeError: boom")
    assert d.report(5.2)[0] == 2


def test_throttle_filter_limits_repeated_log_lines() -> None:
    now = [0.0]
    f = ThrottleFilter(5.0, clock=lambda: now[0])
    rec = logging.LogRecord("x", logging.WARNING, __file__, 1, "sweep at %s skipped", (1,), None)
    assert f.filter(rec)
    assert not f.filter(rec)
    now[0] = 6.0
    assert f.filter(rec)
    assert f.suppressed == 1


def test_worker_keeps_latency_bounded_under_a_slow_consumer() -> None:
    """Period 20 ms, processing 60 ms: each processed item waited < one period + one job."""
    waits: list[float] = []

    def process(item: float) -> None:
        waits.append(time.monotonic() - item)
        time.sleep(0.06)

    worker = InferenceWorker(process).start()
    for _ in range(40):
        worker.submit(time.monotonic())
        time.sleep(0.02)
    wait_for(worker.idle, 5, "idle")
    worker.stop()
    assert worker.stats.dropped > 0
    assert max(waits) < 0.02 + 0.06 + 0.05
