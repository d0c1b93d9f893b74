"""Reliability suite (issue 20): malformed messages over real DDS. For each of more than
50 bad inputs (clouds, images, camera_info), the node stays alive, the NEXT valid sweep
is labelled, and the drop is counted under its own name in /diagnostics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ros_harness import PERIOD_NS, Rig, SimMessages, node_overrides, start_rig, stop_rig
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from ws3d_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros

T0 = 1_770_000_000_000_000_000
MAX_POINTS = 50_000


@dataclass(frozen=True)
class Case:
    name: str
    topic: str  # "points" | "image" | "camera_info"
    make: Callable[[SimMessages, int], Any]  # (sim, stamp) -> the bad message
    counter: str  # the /diagnostics key that must grow


def _cloud(sim: SimMessages, stamp: int) -> PointCloud2:
    return sim.cloud(0, stamp)


def _with(**fields: Any) -> Callable[[SimMessages, int], PointCloud2]:
    def make(sim: SimMessages, stamp: int) -> PointCloud2:
        msg = _cloud(sim, stamp)
        for k, v in fields.items():
            setattr(msg, k, v(msg) if callable(v) else v)
        return msg

    return make


def _fields(edit: Callable[[list[PointField]], list[PointField]]) -> Callable[..., PointCloud2]:
    def make(sim: SimMessages, stamp: int) -> PointCloud2:
        msg = _cloud(sim, stamp)
        fields = [
            PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
            for f in msg.fields
        ]
        msg.fields = edit(fields)
        return msg

    return make


def _set_field(name: str, **values: Any) -> Callable[[list[PointField]], list[PointField]]:
    def edit(fields: list[PointField]) -> list[PointField]:
        for f in fields:
            if f.name == name:
                for k, v in values.items():
                    setattr(f, k, v)
        return fields

    return edit


def _xyz_values(value: float) -> Callable[[SimMessages, int], PointCloud2]:
    def make(sim: SimMessages, stamp: int) -> PointCloud2:
        pts = sim.points[0].copy()
        for axis in ("x", "y", "z"):
            pts[axis] = value
        from ws3d_ros.msg.pointcloud2 import array_to_cloud

        return array_to_cloud(pts, frame_id=sim.lidar_frame, stamp_ns=stamp, kit=sim.kit)

    return make


def _image(edit: Callable[[Image], None]) -> Callable[[SimMessages, int], Image]:
    def make(sim: SimMessages, stamp: int) -> Image:
        msg = sim.image(0, stamp)
        edit(msg)
        return msg

    return make


def _info(edit: Callable[[CameraInfo], None]) -> Callable[[SimMessages, int], CameraInfo]:
    def make(sim: SimMessages, stamp: int) -> CameraInfo:
        msg = sim.camera_info(stamp)
        edit(msg)
        return msg

    return make


def _set(**values: Any) -> Callable[[Any], None]:
    def edit(msg: Any) -> None:
        for k, v in values.items():
            setattr(msg, k, v(msg) if callable(v) else v)

    return edit


def _cases() -> list[Case]:
    bad_cloud = "drops.input.bad_cloud"
    cases = [
        Case("point_step 0", "points", _with(point_step=0), bad_cloud),
        Case("point_step 1", "points", _with(point_step=1), bad_cloud),
        Case("point_step +4", "points", _with(point_step=lambda m: m.point_step + 4), bad_cloud),
        Case("data empty", "points", _with(data=b""), bad_cloud),
        Case("data short by 1", "points", _with(data=lambda m: bytes(m.data)[:-1]), bad_cloud),
        Case(
            "data half",
            "points",
            _with(data=lambda m: bytes(m.data)[: len(m.data) // 2]),
            bad_cloud,
        ),
        Case(
            "data long by 7", "points", _with(data=lambda m: bytes(m.data) + b"1234567"), bad_cloud
        ),
        Case("row_step 0", "points", _with(row_step=0), bad_cloud),
        Case("row_step short", "points", _with(row_step=lambda m: m.row_step - 1), bad_cloud),
        Case("height 2 same data", "points", _with(height=2), bad_cloud),
        Case("width + 1", "points", _with(width=lambda m: m.width + 1), bad_cloud),
        Case("no fields", "points", _fields(lambda f: []), bad_cloud),
        Case("no x", "points", _fields(lambda f: [x for x in f if x.name != "x"]), bad_cloud),
        Case("no z", "points", _fields(lambda f: [x for x in f if x.name != "z"]), bad_cloud),
        Case(
            "no xyz", "points", _fields(lambda f: [x for x in f if x.name not in "xyz"]), bad_cloud
        ),
        Case("datatype 0", "points", _fields(_set_field("x", datatype=0)), bad_cloud),
        Case("datatype 9", "points", _fields(_set_field("y", datatype=9)), bad_cloud),
        Case("datatype 255", "points", _fields(_set_field("z", datatype=255)), bad_cloud),
        Case("count 0", "points", _fields(_set_field("x", count=0)), bad_cloud),
        Case("offset outside", "points", _fields(_set_field("x", offset=10_000)), bad_cloud),
        Case("offset overlaps", "points", _fields(_set_field("y", offset=2)), bad_cloud),
        Case("float64 overflows", "points", _fields(_set_field("z", datatype=8)), bad_cloud),
        Case("count 1000", "points", _fields(_set_field("x", count=1000)), bad_cloud),
        Case(
            "duplicate field",
            "points",
            _fields(lambda f: [*f, PointField(name="x", offset=0, datatype=7, count=1)]),
            bad_cloud,
        ),
        Case(
            "empty cloud",
            "points",
            _with(width=0, height=0, data=b"", row_step=0),
            "drops.input.empty_cloud",
        ),
        Case("all NaN", "points", _xyz_values(float("nan")), "drops.input.nonfinite_cloud"),
        Case("all +inf", "points", _xyz_values(float("inf")), "drops.input.nonfinite_cloud"),
        Case("all -inf", "points", _xyz_values(-float("inf")), "drops.input.nonfinite_cloud"),
        Case(
            "too many points", "points", _with(width=MAX_POINTS + 1), "drops.input.too_many_points"
        ),
        Case("2**31 points", "points", _with(width=2**31), "drops.input.too_many_points"),
        Case(
            "2**32-1 x 2", "points", _with(width=2**32 - 1, height=2), "drops.input.too_many_points"
        ),
    ]
    bad_image = "drops.input.bad_image"
    cases += [
        Case("encoding unknown", "image", _image(_set(encoding="rgb9")), bad_image),
        Case("encoding empty", "image", _image(_set(encoding="")), bad_image),
        Case("encoding bayer junk", "image", _image(_set(encoding="bayer_xyz8")), bad_image),
        Case("step 0", "image", _image(_set(step=0)), bad_image),
        Case("step short", "image", _image(_set(step=lambda m: m.step - 1)), bad_image),
        Case("image data empty", "image", _image(_set(data=b"")), bad_image),
        Case(
            "image data short", "image", _image(_set(data=lambda m: bytes(m.data)[:-3])), bad_image
        ),
        Case(
            "image data half",
            "image",
            _image(_set(data=lambda m: bytes(m.data)[: len(m.data) // 2])),
            bad_image,
        ),
        Case("height + 1", "image", _image(_set(height=lambda m: m.height + 1)), bad_image),
        Case("step huge", "image", _image(_set(step=2**31)), bad_image),
        Case("width huge", "image", _image(_set(width=10**6)), bad_image),
        Case(
            "zero width",
            "image",
            _image(_set(width=0, step=0, data=b"")),
            "drops.input.empty_image",
        ),
        Case(
            "zero height",
            "image",
            _image(_set(height=0, data=b"")),
            "drops.input.empty_image",
        ),
        Case(
            "half size vs camera_info",
            "image",
            lambda sim, stamp: _half_image(sim, stamp),
            "drops.input.image_size_mismatch",
        ),
    ]
    bad_info = "drops.input.bad_camera_info"
    cases += [
        Case("K zeros", "camera_info", _info(_set(k=[0.0] * 9)), bad_info),
        Case(
            "K NaN",
            "camera_info",
            _info(_set(k=lambda m: [float("nan"), *list(m.k)[1:]])),
            bad_info,
        ),
        Case(
            "fx negative",
            "camera_info",
            _info(_set(k=lambda m: [-abs(m.k[0]), *list(m.k)[1:]])),
            bad_info,
        ),
        Case("width 0", "camera_info", _info(_set(width=0)), bad_info),
        Case("height 0", "camera_info", _info(_set(height=0)), bad_info),
        Case(
            "distortion unknown",
            "camera_info",
            _info(_set(distortion_model="fisheye_magic", d=[0.1, 0.2])),
            bad_info,
        ),
        Case(
            "plumb_bob 2 coeffs",
            "camera_info",
            _info(_set(distortion_model="plumb_bob", d=[0.1, 0.2])),
            bad_info,
        ),
        Case(
            "D NaN",
            "camera_info",
            _info(_set(distortion_model="plumb_bob", d=[float("nan")] * 5)),
            bad_info,
        ),
    ]
    return cases


def _half_image(sim: SimMessages, stamp: int) -> Image:
    from ws3d_ros.msg.image import array_to_image

    half = np.ascontiguousarray(sim.images[0][::2, ::2])
    return array_to_image(half, "rgb8", frame_id=sim.camera.frame_id, stamp_ns=stamp, kit=sim.kit)


CASES = _cases()


def test_there_are_at_least_50_malformed_inputs() -> None:
    assert len(CASES) >= 50
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def rig(tiny_model: Path, sim: SimMessages) -> Iterator[Rig]:
    overrides = node_overrides(
        sim,
        tiny_model,
        **{"qos.sensor_data": False, "max_points": MAX_POINTS, "publish.instances": False},
    )
    r = start_rig(lambda ctx: PerceptionNode(context=ctx, parameter_overrides=overrides))
    r.k = 0  # type: ignore[attr-defined]
    r.prime_camera_info(sim)
    yield r
    stop_rig(r)


def _next_stamp(rig: Rig) -> int:
    rig.k += 1  # type: ignore[attr-defined]
    return T0 + rig.k * PERIOD_NS  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_is_counted_and_the_next_sweep_labelled(
    rig: Rig, sim: SimMessages, case: Case
) -> None:
    before = int(rig.diagnostics().get(case.counter, 0))
    stamp = _next_stamp(rig)
    bad = case.make(sim, stamp)
    if case.topic == "points":
        rig.pub_info.publish(sim.camera_info(stamp))
        rig.pub_image.publish(sim.image(0, stamp))
        rig.pub_points.publish(bad)
    elif case.topic == "image":
        rig.pub_info.publish(sim.camera_info(stamp))
        rig.pub_image.publish(bad)
        rig.pub_points.publish(sim.cloud(0, stamp))
        rig.wait_output(stamp)  # a bad image costs only its camera: the sweep is labelled
    else:
        rig.pub_info.publish(bad)
    # counted under its own name (waited for: a later sweep could replace the bad one in
    # the latest-wins queue before the worker sees it)
    deadline = time.monotonic() + 15
    after = before
    while after <= before and time.monotonic() < deadline:
        after = int(rig.diagnostics().get(case.counter, 0))
    assert after > before, f"{case.name}: {case.counter} {before} -> {after}"
    # the node is alive and the next valid sweep is labelled
    good = _next_stamp(rig)
    rig.send_frame(sim, 1, good)
    rig.wait_output(good)
    if case.topic == "camera_info":
        # a refused camera_info keeps the previous calibration: still fused
        assert rig.node._camera_models["camera"] is not None


def test_one_future_stamped_image_does_not_stop_fusion(rig: Rig, sim: SimMessages) -> None:
    """An image stamped now + 1000 s is dropped (stamp_ahead); the next sane images fuse."""
    before = rig.diagnostics()
    ahead0 = int(before.get("drops.sync.stamp_ahead", 0))
    lidar_only0 = int(before.get("lidar_only_sweeps.camera", 0))
    stamp = _next_stamp(rig)
    rig.pub_image.publish(sim.image(0, stamp + 1000 * 10**9))
    rig.pub_points.publish(sim.cloud(0, stamp))
    rig.wait_output(stamp)  # labelled, LiDAR-only for this sweep at most
    stamps = [_next_stamp(rig) for _ in range(4)]
    for s in stamps:
        rig.send_frame(sim, 1, s)
        rig.wait_output(s)
    after = rig.diagnostics()
    assert int(after.get("drops.sync.stamp_ahead", 0)) == ahead0 + 1
    # at most the sweep that lost its image went without a camera; the next four fused
    assert int(after.get("lidar_only_sweeps.camera", 0)) <= lidar_only0 + 1


@pytest.mark.parametrize(
    "classes",
    [
        ["car", "\x1b[31mred"],  # ESC would reach the logs
        ["car", "road\nbuilding"],
        ["car", "x" * 81],
        [f"class {k}" for k in range(1025)],
    ],
    ids=["escape", "newline", "long name", "1025 classes"],
)
def test_vocabulary_the_worker_would_refuse_is_refused_at_set(rig: Rig, classes: list[str]) -> None:
    from rclpy.parameter import Parameter

    before = list(rig.get_parameter("classes"))
    (result,) = rig.set_parameters([Parameter("classes", value=classes)])
    assert not result.successful and result.reason
    assert "\x1b" not in result.reason and "\n" not in result.reason
    assert list(rig.get_parameter("classes")) == before
    assert list(rig.node.pipeline.vocabulary.names) == before


def test_lifetime_id_limit_is_refused_at_set(
    rig: Rig, sim: SimMessages, monkeypatch: pytest.MonkeyPatch
) -> None:
    """successful=True means applied: a change the live vocabulary cannot take (its ids
    over the node's life are used up) is refused by the parameter service."""
    from rclpy.parameter import Parameter

    from ws3d_ros.runtime import vocabulary

    before = list(rig.get_parameter("classes"))

    def applied(names: list[str]) -> None:
        deadline = time.monotonic() + 20
        while list(rig.node.pipeline.vocabulary.names) != names and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(rig.node.pipeline.vocabulary.names) == names

    # spend an id the active list no longer shows: a fresh vocabulary would not see it
    (result,) = rig.set_parameters([Parameter("classes", value=[*before, "scooter"])])
    assert result.successful
    applied([*before, "scooter"])
    (result,) = rig.set_parameters([Parameter("classes", value=before)])
    assert result.successful
    applied(before)
    used = len(rig.node.pipeline.vocabulary._ids)
    assert used > len(before)
    monkeypatch.setattr(vocabulary, "MAX_CLASSES", used + 1)
    (result,) = rig.set_parameters([Parameter("classes", value=[*before, "stroller", "kayak"])])
    assert not result.successful and "life" in result.reason
    assert list(rig.get_parameter("classes")) == before
    (result,) = rig.set_parameters([Parameter("classes", value=[*before, "stroller"])])
    assert result.successful, result.reason
    stamp = _next_stamp(rig)
    rig.send_frame(sim, 0, stamp)
    rig.wait_output(stamp)
    applied([*before, "stroller"])
    (result,) = rig.set_parameters([Parameter("classes", value=before)])
    assert result.successful
