"""The perception node over real DDS: outputs per the contract, live vocabulary, refused
parameters, bad input, late images and bag loops (issue 5)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter
from ros_harness import (
    CLASSES,
    PERIOD_NS,
    Rig,
    SimMessages,
    labels_of,
    node_overrides,
    start_rig,
    stop_rig,
    wait_for,
)
from sensor_msgs.msg import PointField

from ws3d_ros.msg.kit import rclpy_kit, stamp_to_ns
from ws3d_ros.msg.pointcloud2 import array_to_cloud, cloud_to_array, structured
from ws3d_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros

T0 = 1_700_000_000_000_000_000


class Clock:
    """Increasing sweep stamps shared by the tests of one node."""

    def __init__(self) -> None:
        self.k = 0

    def next(self) -> int:
        self.k += 1
        return T0 + self.k * PERIOD_NS


@pytest.fixture(scope="module")
def rig(tiny_model: Path, sim: SimMessages) -> Iterator[Rig]:
    # reliable inputs: every bad message sent must arrive to be counted (the sensor-data
    # default is exercised by test_slow_backend and test_cli_node)
    overrides = node_overrides(
        sim, tiny_model, **{"publish.overlay": True, "qos.sensor_data": False}
    )
    r = start_rig(lambda ctx: PerceptionNode(context=ctx, parameter_overrides=overrides))
    r.clock = Clock()  # type: ignore[attr-defined]
    r.prime_camera_info(sim)
    yield r
    stop_rig(r)


def test_panoptic_points_follow_the_contract(rig: Rig, sim: SimMessages) -> None:
    stamp = rig.clock.next()  # type: ignore[attr-defined]
    rig.send_frame(sim, 0, stamp)
    out = rig.wait_output(stamp)
    assert out.header.frame_id == sim.lidar_frame
    fields = {f.name: f.datatype for f in out.fields}
    assert fields == {
        "x": PointField.FLOAT32,
        "y": PointField.FLOAT32,
        "z": PointField.FLOAT32,
        "label": PointField.UINT16,
        "instance": PointField.UINT32,
        "score": PointField.FLOAT32,
    }
    arr = cloud_to_array(out).reshape(-1)
    assert len(arr) == len(sim.points[0])
    np.testing.assert_array_equal(arr["x"], sim.points[0]["x"])  # same point order
    label_map = rig.label_maps()[-1]
    ids = {c["id"] for c in label_map["classes"]}
    assert [c["name"] for c in label_map["classes"]] == CLASSES
    assert set(np.unique(arr["label"])) <= ids | {65535}
    assert ((arr["score"] >= 0) & (arr["score"] <= 1)).all()
    # optional outputs carry the input stamp; the overlay the image's
    wait_for(lambda: rig.rec.get("panoptic/instances"), 10, "panoptic/instances")
    markers = rig.rec.messages("panoptic/instances")[-1].markers
    assert markers[0].action == 3  # DELETEALL first
    assert all(stamp_to_ns(m.header.stamp) == stamp for m in markers)
    wait_for(lambda: rig.rec.get("panoptic/overlay"), 10, "panoptic/overlay")
    overlay = rig.rec.messages("panoptic/overlay")[-1]
    assert overlay.encoding == "rgb8" and overlay.width == sim.images[0].shape[1]
    diag = rig.diagnostics()
    assert diag["backend"] == "torch" and diag["vocabulary"] == ",".join(CLASSES)
    assert float(diag["latency_ms.end_to_end.median"]) > 0
    assert int(diag["count.out"]) >= 1


def test_invalid_parameters_are_refused_with_a_reason(rig: Rig) -> None:
    before = list(rig.get_parameter("classes"))
    cases = [
        (Parameter("classes", Parameter.Type.STRING_ARRAY, []), "must not be empty"),
        (Parameter("classes", value=["car", "car"]), "duplicates"),
        (Parameter("score_threshold", value=1.5), "1.5"),
        (Parameter("prompt_templates", value=["a photo"]), "{}"),
        (Parameter("mode", value="magic"), "mode"),
        (Parameter("backend", value="tensorrt"), "read-only"),
        (Parameter("extrinsics.camera.matrix", value=[1.0, 2.0]), "12 or 16"),
        (Parameter("sync.slop", value=-0.1), "sync.slop"),
    ]
    for param, reason in cases:
        (result,) = rig.set_parameters([param])
        assert not result.successful, param.name
        assert reason in result.reason, (param.name, result.reason)
    assert list(rig.get_parameter("classes")) == before
    assert rig.get_parameter("score_threshold") == 0.0
    assert rig.get_parameter("backend") == "torch"


def test_bad_input_is_dropped_counted_and_survived(rig: Rig, sim: SimMessages) -> None:
    kit = rclpy_kit()
    worker = rig.node.worker  # type: ignore[attr-defined]

    def settle(publish: Callable[[], None]) -> None:
        """Publish, then wait until the worker took the sweep (so latest-wins cannot
        replace one bad sweep by the next before it is looked at)."""
        before = worker.stats.submitted
        publish()
        wait_for(lambda: worker.stats.submitted > before and worker.idle(), 10, "the worker")

    # a cloud whose data is shorter than width * point_step
    short = sim.cloud(0, rig.clock.next())  # type: ignore[attr-defined]
    short.data = short.data[: len(short.data) // 2]
    settle(lambda: rig.pub_points.publish(short))
    # a cloud whose points are all NaN, and one with no points
    nan_pts = structured(x=np.full(50, np.nan, np.float32), y=np.zeros(50, np.float32),
                         z=np.zeros(50, np.float32))  # fmt: skip
    for pts in (nan_pts, nan_pts[:0]):
        msg = array_to_cloud(pts, frame_id="lidar", stamp_ns=rig.clock.next(), kit=kit)  # type: ignore[attr-defined]
        settle(lambda msg=msg: rig.pub_points.publish(msg))
    # an image with an unknown encoding, paired with a good sweep
    stamp = rig.clock.next()  # type: ignore[attr-defined]
    bad_image = sim.image(0, stamp)
    bad_image.encoding = "no_such_encoding"
    rig.pub_image.publish(bad_image)
    rig.pub_points.publish(sim.cloud(0, stamp))
    out = rig.wait_output(stamp)  # labelled anyway (LiDAR-only for that camera)
    assert len(labels_of(out)) == len(sim.points[0])
    # a camera_info the camera model refuses (K all zero)
    info = sim.camera_info(stamp)
    info.k = [0.0] * 9
    rig.pub_info.publish(info)

    keys = ("bad_cloud", "nonfinite_cloud", "empty_cloud", "bad_image", "bad_camera_info")
    last: dict[str, str] = {}

    def counted() -> bool:
        last.update(rig.diagnostics())
        return all(int(last.get(f"drops.input.{k}", 0)) >= 1 for k in keys)

    try:
        wait_for(counted, 15, "the bad input to be counted in /diagnostics")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {dict(sorted(last.items()))}") from None
    diag = last
    assert diag["__level__"] in ("0", "1")
    # still alive: the next good frame is labelled
    stamp = rig.clock.next()  # type: ignore[attr-defined]
    rig.send_frame(sim, 1, stamp)
    assert len(labels_of(rig.wait_output(stamp))) == len(sim.points[1])


def test_late_image_gives_lidar_only_output_and_is_flagged(rig: Rig, sim: SimMessages) -> None:
    stamp = rig.clock.next()  # type: ignore[attr-defined]
    before = int(rig.diagnostics().get("drops.sync.missing_image.camera", 0))
    rig.send_frame(sim, 0, stamp, image=False)
    out = rig.wait_output(stamp)
    assert len(labels_of(out)) == len(sim.points[0])
    wait_for(
        lambda: int(rig.diagnostics().get("drops.sync.missing_image.camera", 0)) > before,
        10,
        "the late image to be flagged",
    )


def test_time_going_back_resets_sync_and_keeps_labelling(rig: Rig, sim: SimMessages) -> None:
    stamp = rig.clock.next()  # type: ignore[attr-defined]
    rig.send_frame(sim, 0, stamp)
    rig.wait_output(stamp)
    looped = T0 - 10 * PERIOD_NS  # the bag started again
    rig.send_frame(sim, 1, looped)
    out = rig.wait_output(looped)
    assert len(labels_of(out)) == len(sim.points[1])
    assert int(rig.diagnostics()["events.sync_reset"]) >= 1
    # the next sweeps follow the loop's start within sync.max_stamp_jump (a jump of many
    # seconds more than the wall clock moved is an outlier: one sweep dropped, counted)


def test_changing_classes_live_updates_label_map_and_labels(rig: Rig, sim: SimMessages) -> None:
    first = rig.label_maps()[-1]
    old_ids = {c["name"]: c["id"] for c in first["classes"]}
    n_maps = len(rig.label_maps())
    (result,) = rig.set_parameters([Parameter("classes", value=["car", "stroller"])])
    assert result.successful, result.reason
    wait_for(lambda: len(rig.label_maps()) > n_maps, 15, "a new panoptic/label_map")
    new = rig.label_maps()[-1]
    new_ids = {c["name"]: c["id"] for c in new["classes"]}
    assert list(new_ids) == ["car", "stroller"]
    assert new_ids["car"] == old_ids["car"]  # ids stable per name
    assert new_ids["stroller"] not in old_ids.values()  # a fresh id, nobody renumbered
    things = {c["name"]: c["thing"] for c in new["classes"]}
    assert things == {"car": True, "stroller": False}  # thing_classes kept, filtered
    stamp = rig.clock.next()  # type: ignore[attr-defined]
    rig.send_frame(sim, 0, stamp)
    labels = labels_of(rig.wait_output(stamp))
    assert set(np.unique(labels)) <= {new_ids["car"], new_ids["stroller"], 65535}
    assert rig.diagnostics()["vocabulary"] == "car,stroller"
    # the label map is latched: a late subscriber gets the current one
    assert json.loads(rig.rec.messages("panoptic/label_map")[-1].data) == new
    assert rig.node.get_parameter("classes").type_.value == ParameterType.PARAMETER_STRING_ARRAY


def test_lidar_only_mode_does_not_wait_for_images(rig: Rig, sim: SimMessages) -> None:
    (result,) = rig.set_parameters([Parameter("mode", value="lidar_only")])
    assert result.successful, result.reason
    try:
        before = int(rig.diagnostics().get("drops.sync.missing_image.camera", 0))
        stamp = rig.clock.next()  # type: ignore[attr-defined]
        rig.send_frame(sim, 0, stamp, image=False)
        out = rig.wait_output(stamp)
        assert len(labels_of(out)) == len(sim.points[0])
        # No image was awaited, so none is reported late.
        after = int(rig.diagnostics().get("drops.sync.missing_image.camera", 0))
        assert after == before
    finally:
        (result,) = rig.set_parameters([Parameter("mode", value="fusion")])
        assert result.successful, result.reason
