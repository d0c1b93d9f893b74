"""Issue 5 acceptance: under a 20 Hz input with a deliberately slow backend, output
latency stays bounded (<= 2 frame periods + inference time) and drops are counted.

The bound is per sweep and counted from the moment the node hands the synchronised set
to its worker: latest-wins means a sweep waits for the frame in progress only until its
successor replaces it, so the last sweep of a burst (no successor) may wait a whole
frame; the others wait at most the gap to the next set. The DDS delivery before that
(publisher -> node callback) is the executor's, not the node's: it is reported and only
checked for a backlog, because on a starved 2-core CI box its scheduling is not the
node's to bound."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from ros_harness import Rig, SimMessages, node_overrides, start_rig, stop_rig, wait_for

from ws3d_ros.msg.kit import ns_to_sec_nsec, stamp_to_ns
from ws3d_ros.ros.perception_node import PerceptionNode, load_pipeline

pytestmark = pytest.mark.ros

RATE_HZ = 20.0
PERIOD_S = 1.0 / RATE_HZ
EXTRA_DELAY_S = 0.25  # on top of the real tiny model's own inference time
DURATION_S = 4.0  # at least; longer until MIN_OUTPUTS sweeps are labelled (loaded box)
MAX_DURATION_S = 40.0
MIN_OUTPUTS = 6
T0 = 1_800_000_000_000_000_000


class SlowPipeline:
    """The real pipeline, made slower by a fixed sleep per frame (a slow backend)."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self.__dict__["inner"] = inner
        self.__dict__["delay_s"] = delay_s
        self.__dict__["durations_s"] = []  # one per call, for the test's bound

    def __call__(self, frame: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        time.sleep(self.delay_s)
        result = self.inner(frame, **kw)
        took = time.perf_counter() - t
        result.timings["total"] = took * 1e3
        self.durations_s.append(took)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)


@pytest.fixture(scope="module")
def slow_rig(tiny_model: Path, sim: SimMessages) -> Iterator[Rig]:
    overrides = node_overrides(sim, tiny_model, **{"publish.instances": False})

    def factory(values: Mapping[str, Any]) -> Any:
        return SlowPipeline(load_pipeline(values), EXTRA_DELAY_S)

    r = start_rig(
        lambda ctx: PerceptionNode(
            context=ctx, parameter_overrides=overrides, pipeline_factory=factory
        )
    )
    r.prime_camera_info(sim)
    # one frame first, so the timed burst below runs warm (lazy set-up is not latency)
    r.send_frame(sim, 0, T0 - 10**9)
    r.wait_output(T0 - 10**9)
    yield r
    stop_rig(r)


def test_slow_backend_drops_stale_frames_and_latency_stays_bounded(
    slow_rig: Rig, sim: SimMessages
) -> None:
    rig = slow_rig
    # prepared messages (restamped per send) so publishing keeps the 20 Hz pace
    clouds = [sim.cloud(k, T0) for k in range(2)]
    images = [sim.image(k, T0) for k in range(2)]
    stamps: list[int] = []
    sent_at: dict[int, float] = {}
    submitted_at: dict[int, float] = {}  # pivot stamp -> when the node queued the set
    worker_frames_s: list[float] = []  # the worker's whole time per frame, publish included
    worker = rig.node.worker
    submit, process = worker.submit, worker._process

    def recording_submit(job: Any) -> bool:
        submitted_at[job.matched.pivot_stamp_ns] = time.monotonic()
        return submit(job)

    def timed_process(job: Any) -> None:
        t = time.monotonic()
        process(job)
        worker_frames_s.append(time.monotonic() - t)

    received_before = int(rig.diagnostics()["count.in.points"])
    # instance attributes: the node calls self.worker.submit, the worker self._process
    worker.submit, worker._process = recording_submit, timed_process
    try:
        start = time.monotonic()
        labelled_before = len(rig.rec.get("panoptic/points"))
        for k in range(int(MAX_DURATION_S * RATE_HZ)):
            if k >= DURATION_S * RATE_HZ and (
                len(rig.rec.get("panoptic/points")) - labelled_before >= MIN_OUTPUTS
            ):
                break
            stamp = T0 + round(k * PERIOD_S * 1e9)
            cloud, image = clouds[k % 2], images[k % 2]
            cloud.header.stamp.sec, cloud.header.stamp.nanosec = ns_to_sec_nsec(stamp)
            image_stamp = stamp + sim.camera_offsets_ns[k % 2]
            image.header.stamp.sec, image.header.stamp.nanosec = ns_to_sec_nsec(image_stamp)
            time.sleep(max(0.0, start + k * PERIOD_S - time.monotonic()))
            rig.pub_image.publish(image)
            rig.pub_points.publish(cloud)
            sent_at[stamp] = time.monotonic()
            stamps.append(stamp)
        wait_for(lambda: worker.idle(), 10, "the worker to finish")
        time.sleep(0.3)
    finally:
        del worker.submit
        worker._process = process

    n = len(stamps)
    outputs = rig.rec.get("panoptic/points")
    diag = rig.diagnostics()
    pipeline = rig.node.pipeline
    inference_max_s = max(pipeline.durations_s[1:])  # the burst's frames, warm-up left out
    # the worker's time per frame holds the model's and more (messages, publish); the
    # node reports it too, warm-up frame included
    worker_max_s = max(worker_frames_s)
    assert worker_max_s >= inference_max_s
    assert float(diag["latency_ms.worker.max"]) / 1e3 >= worker_max_s - 1e-3
    dds_margin_s = 0.2  # output delivery + scheduling on a loaded 2-core box
    submit_order = sorted(submitted_at, key=submitted_at.__getitem__)
    next_submit = {s: submitted_at[t] for s, t in itertools.pairwise(submit_order)}
    latencies, node_latencies, deliveries, excess = [], [], [], []
    for received, msg in outputs:
        stamp = stamp_to_ns(msg.header.stamp)
        if stamp not in sent_at:
            continue
        latency = received - sent_at[stamp]
        node_latency = received - submitted_at[stamp]
        # Latest-wins: a set waits for the frame in progress (<= one worker frame) unless
        # the next set replaces it first, so it waits at most the gap to its successor
        # (one period at 20 Hz; the last set has none), then is processed itself.
        gap = next_submit.get(stamp)
        wait_bound = worker_max_s if gap is None else min(worker_max_s, gap - submitted_at[stamp])
        bound = wait_bound + worker_max_s + dds_margin_s
        latencies.append(latency)
        node_latencies.append(node_latency)
        deliveries.append(submitted_at[stamp] - sent_at[stamp])
        excess.append(node_latency - bound)
    assert len(latencies) >= MIN_OUTPUTS - 1, "too few outputs to judge"
    assert len(latencies) < n  # the slow backend could not keep up, so some were dropped
    steady_bound = 2 * PERIOD_S + inference_max_s + dds_margin_s
    print(
        f"\n20 Hz in, {len(latencies)}/{n} labelled; latency median "
        f"{sorted(latencies)[len(latencies) // 2] * 1e3:.0f} ms, max before the last sweep "
        f"{max(latencies[:-1]) * 1e3:.0f} ms, last {latencies[-1] * 1e3:.0f} ms; from the "
        f"node's queue: max {max(node_latencies) * 1e3:.0f} ms; delivery to the node max "
        f"{max(deliveries) * 1e3:.0f} ms; inference max {inference_max_s * 1e3:.0f} ms, worker "
        f"frame max {worker_max_s * 1e3:.0f} ms; steady bound {steady_bound * 1e3:.0f} ms; "
        f"stale drops {diag.get('drops.queue.stale')}; received by the node "
        f"{int(diag['count.in.points']) - received_before}"
    )
    # every sweep within its bound, the last ones too: no backlog builds up in the node
    assert max(excess) <= 0, (node_latencies, excess)
    # nor in front of it: a sweep reaches the node within about one frame of work, however
    # loaded the box (a queue in front would grow with every sweep sent)
    assert max(deliveries) <= worker_max_s + 1.0, deliveries
    # Every sweep the node received and did not label is accounted for: a queued set was
    # replaced by a newer one (stale); the synchroniser never drops a sweep but one
    # whose stamp goes back (out_of_order). The sensor-data subscription keeps the latest
    # qos.depth sweeps, so on a starved executor DDS itself may replace a few unread.
    dropped = int(diag["drops.queue.stale"])
    queued = [s for s in stamps if s in submitted_at]
    assert dropped == len(queued) - len(latencies), (dropped, len(queued), len(latencies))
    assert dropped > 0
    received = int(diag["count.in.points"]) - received_before
    assert received - len(queued) <= int(diag.get("drops.sync.out_of_order", 0)), (
        received,
        len(queued),
    )
    assert int(diag["queue.dropped_stale"]) == dropped
