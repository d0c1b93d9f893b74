"""Tests of ws3d_ros.data.frames: topic discovery, calibration, sync into Frames, drop reasons.

The bags here are written by hand (tiny clouds and images) so every case is exact:
a missing image, a malformed sweep, labels that do not fit, no /tf_static, a
calibration override, a bag with several LiDAR and image topics.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.data.bag import BagWriter, TopicInfo
from ws3d_ros.data.frame import Frame
from ws3d_ros.data.frames import (
    BagFrames,
    camera_name_of,
    camera_namespace,
    discover_topics,
    iter_frames,
)
from ws3d_ros.errors import BagError, CalibrationError
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.msg.image import array_to_image
from ws3d_ros.msg.kit import rosbags_kit
from ws3d_ros.msg.pointcloud2 import array_to_cloud, structured, xyz_to_cloud

PERIOD = 100_000_000
T0 = 1_000_000_000
N_SWEEPS = 6
T_BASE_FROM_LIDAR = Transform.from_xyz_rpy((0.0, 0.0, 1.7), (0.0, 0.0, 0.0))
T_BASE_FROM_CAM = Transform.from_xyz_rpy((0.3, 0.0, 1.5), (-math.pi / 2, 0.0, -math.pi / 2))
CAMERA = CameraModel.from_intrinsics(16, 12, 10.0, 10.0, 8.0, 6.0, frame_id="cam_optical")


def tf_message(kit, edges: list[tuple[str, str, Transform]]):
    transforms = []
    for parent, child, T in edges:
        xyz, q = T.to_xyz_quat()
        transforms.append(
            kit.make(
                "geometry_msgs/msg/TransformStamped",
                header=kit.header(parent, T0),
                child_frame_id=child,
                transform=kit.make(
                    "geometry_msgs/msg/Transform",
                    translation=kit.make("geometry_msgs/msg/Vector3", x=xyz[0], y=xyz[1], z=xyz[2]),
                    rotation=kit.make(
                        "geometry_msgs/msg/Quaternion", x=q[0], y=q[1], z=q[2], w=q[3]
                    ),
                ),
            )
        )
    return kit.make("tf2_msgs/msg/TFMessage", transforms=transforms)


def sweep(k: int) -> np.ndarray:
    n = 40 + k
    xyz = np.column_stack([np.arange(n), np.full(n, k), np.zeros(n)]).astype(np.float32)
    return xyz


def write_rig_bag(
    path: Path,
    *,
    skip_image: int | None = None,
    bad_cloud: int | None = None,
    bad_labels: int | None = None,
    tf_static: bool = True,
) -> Path:
    kit = rosbags_kit()
    with BagWriter(path) as bag:
        if tf_static:
            bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
            bag.write(
                "/tf_static",
                T0,
                tf_message(
                    kit,
                    [
                        ("base_link", "lidar", T_BASE_FROM_LIDAR),
                        ("base_link", "cam_optical", T_BASE_FROM_CAM),
                    ],
                ),
            )
        for k in range(N_SWEEPS):
            stamp = T0 + k * PERIOD
            xyz = sweep(k)
            cloud = xyz_to_cloud(xyz, frame_id="lidar", stamp_ns=stamp)
            if k == bad_cloud:
                cloud.width += 1  # data too short for width * point_step
            bag.write("/lidar/points", stamp, cloud)
            n = len(xyz) + (3 if k == bad_labels else 0)
            labels = structured(
                label=np.full(n, k, np.uint16), instance=np.arange(n, dtype=np.uint32)
            )
            bag.write(
                "/lidar/labels", stamp, array_to_cloud(labels, frame_id="lidar", stamp_ns=stamp)
            )
            exposure = stamp + 4_000_000  # the camera fires 4 ms after the sweep stamp
            if k != skip_image:
                image = np.full((12, 16, 3), k, np.uint8)
                bag.write(
                    "/cam/image_raw",
                    exposure,
                    array_to_image(image, "rgb8", frame_id="cam_optical", stamp_ns=exposure),
                )
            bag.write("/cam/camera_info", exposure, CAMERA.to_camera_info(stamp_ns=exposure))
    return path


@pytest.fixture(scope="module")
def clean_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rig_bag(tmp_path_factory.mktemp("frames") / "clean")


def test_clean_bag_gives_one_frame_per_sweep(clean_bag: Path) -> None:
    with BagFrames(clean_bag) as bag:
        assert bag.topics.points == "/lidar/points"
        assert bag.topics.labels == "/lidar/labels"
        assert bag.camera_names == ["cam"]
        frames = list(bag)
        stats = bag.stats.summary()
    assert [f.stamp_ns for f in frames] == [T0 + k * PERIOD for k in range(N_SWEEPS)]
    assert stats["frames"] == stats["frames_with_all_cameras"] == N_SWEEPS
    assert stats["dropped"] == {} and stats["missing_images"] == {}
    expected_T = T_BASE_FROM_CAM.inverse() @ T_BASE_FROM_LIDAR
    for k, frame in enumerate(frames):
        assert isinstance(frame, Frame) and frame.index == k and frame.frame_id == "lidar"
        np.testing.assert_array_equal(frame.xyz, sweep(k))
        np.testing.assert_array_equal(frame.labels, np.full(len(frame), k))
        np.testing.assert_array_equal(frame.instances, np.arange(len(frame)))
        view = frame.view("cam")
        assert view.stamp_ns == frame.stamp_ns + 4_000_000
        assert view.image.shape == (12, 16, 3) and np.all(view.image == k)
        assert view.camera.frame_id == "cam_optical" and view.camera.fx == 10.0
        np.testing.assert_allclose(view.T_cam_from_lidar.matrix, expected_T.matrix, atol=1e-12)
    assert frames[0].missing_cameras == ()
    with pytest.raises(KeyError, match="no camera"):
        frames[0].view("other")


def test_iter_frames_and_no_labels(clean_bag: Path) -> None:
    frames = list(iter_frames(clean_bag, use_labels=False))
    assert len(frames) == N_SWEEPS and all(f.labels is None for f in frames)
    skipped = list(iter_frames(clean_bag, decode_images=False))
    assert all(f.views[0].image.size == 0 for f in skipped)  # present but not decoded


def test_missing_image_bad_cloud_and_bad_labels_are_counted(tmp_path: Path) -> None:
    path = write_rig_bag(tmp_path / "faulty", skip_image=2, bad_cloud=4, bad_labels=1)
    with BagFrames(path) as bag:
        frames = list(bag)
        stats = bag.stats.summary()
    # Sweep 4 is malformed and skipped; every other sweep still becomes a frame.
    assert [f.stamp_ns for f in frames] == [T0 + k * PERIOD for k in (0, 1, 2, 3, 5)]
    assert [f.index for f in frames] == list(range(5))
    assert stats["frames"] == 5 and stats["frames_with_all_cameras"] == 4
    assert stats["dropped"]["bad_cloud"] == 1
    assert stats["dropped"]["bad_labels"] == 1
    assert stats["missing_images"] == {"cam": 1}
    by_stamp = {f.stamp_ns: f for f in frames}
    late = by_stamp[T0 + 2 * PERIOD]
    assert late.missing_cameras == ("cam",) and late.view("cam").image is None
    assert by_stamp[T0 + PERIOD].labels is None  # labels that do not fit are not used
    assert by_stamp[T0 + 3 * PERIOD].labels is not None


def test_no_tf_static_needs_a_calibration(tmp_path: Path) -> None:
    path = write_rig_bag(tmp_path / "no_tf", tf_static=False)
    with pytest.raises(CalibrationError, match="tf_static"), BagFrames(path) as bag:
        list(bag)
    T = Transform.from_xyz_rpy((0.1, 0.2, 0.3), (0.0, 0.1, 0.0))
    frames = list(iter_frames(path, calibration={"cam": T}))
    assert len(frames) == N_SWEEPS
    assert all(f.view("cam").T_cam_from_lidar is T for f in frames)
    other = CameraModel.from_intrinsics(16, 12, 20.0, 20.0, 8.0, 6.0)
    frames = list(iter_frames(path, calibration={"cam": T}, camera_models={"cam": other}))
    assert frames[0].view("cam").camera is other


def test_discover_topics_heuristics_and_overrides() -> None:
    pc, img, info = (
        "sensor_msgs/msg/PointCloud2",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CameraInfo",
    )
    compressed = "sensor_msgs/msg/CompressedImage"
    bag = {
        "/velodyne/cloud": TopicInfo("/velodyne/cloud", pc, 5, False),
        "/os/points": TopicInfo("/os/points", pc, 3, False),
        "/os/ground_truth": TopicInfo("/os/ground_truth", pc, 3, False),
        "/front/image_raw": TopicInfo("/front/image_raw", img, 3, False),
        "/front/image_raw/compressed": TopicInfo(
            "/front/image_raw/compressed", compressed, 3, False
        ),
        "/front/camera_info": TopicInfo("/front/camera_info", info, 3, False),
        "/left/image_color/compressed": TopicInfo(
            "/left/image_color/compressed", compressed, 3, False
        ),
        "/left/camera_info": TopicInfo("/left/camera_info", info, 3, False),
        "/orphan/image_raw": TopicInfo("/orphan/image_raw", img, 3, False),
    }
    found = discover_topics(bag)
    assert found.points == "/os/points"  # named like a sweep wins over the busier topic
    assert found.labels == "/os/ground_truth"
    assert [(c.name, c.image, c.camera_info) for c in found.cameras] == [
        ("front", "/front/image_raw", "/front/camera_info"),
        ("left", "/left/image_color/compressed", "/left/camera_info"),
    ]
    assert found.tf_static is None
    chosen = discover_topics(bag, points="/velodyne/cloud", images=["/left/image_color/compressed"])
    assert chosen.points == "/velodyne/cloud" and [c.name for c in chosen.cameras] == ["left"]
    assert discover_topics(bag, use_labels=False).labels is None
    with pytest.raises(BagError, match="not in the bag"):
        discover_topics(bag, points="/nope")
    with pytest.raises(BagError, match="no camera_info"):
        discover_topics(bag, images=["/orphan/image_raw"])
    with pytest.raises(BagError, match="no PointCloud2"):
        discover_topics({"/front/image_raw": bag["/front/image_raw"]})
    # Two cameras with the same last name keep their full namespaces.
    twins = {
        "/a/cam/image_raw": TopicInfo("/a/cam/image_raw", img, 1, False),
        "/a/cam/camera_info": TopicInfo("/a/cam/camera_info", info, 1, False),
        "/b/cam/image_raw": TopicInfo("/b/cam/image_raw", img, 1, False),
        "/b/cam/camera_info": TopicInfo("/b/cam/camera_info", info, 1, False),
        "/points": TopicInfo("/points", pc, 1, False),
    }
    assert [c.name for c in discover_topics(twins).cameras] == ["a_cam", "b_cam"]


@pytest.mark.parametrize(
    ("topic", "namespace", "name"),
    [
        ("/camera/image_raw", "/camera", "camera"),
        ("/camera/front/image_raw", "/camera/front", "front"),
        ("/camera/front/image_rect_color/compressed", "/camera/front", "front"),
        ("/stereo/left/frames", "/stereo/left", "left"),
    ],
)
def test_camera_names(topic: str, namespace: str, name: str) -> None:
    assert camera_namespace(topic) == namespace
    assert camera_name_of(topic) == name


def test_frame_contract() -> None:
    pts = structured(x=np.zeros(4, np.float32), y=np.zeros(4, np.float32), z=np.ones(4, np.float32))
    frame = Frame(stamp_ns=1, frame_id="lidar", points=pts.reshape(2, 2))  # organised: flattened
    assert frame.points.shape == (4,) and len(frame) == 4
    assert frame.xyz.shape == (4, 3) and frame.xyz.dtype == np.float32
    with pytest.raises(ValueError, match="labels has 3 entries for 4 points"):
        Frame(stamp_ns=1, frame_id="lidar", points=pts, labels=np.zeros(3, np.uint16))
