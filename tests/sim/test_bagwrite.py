"""Tests of ws3d_ros.sim.bagwrite: bag topics, label alignment, determinism, exports."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.data.bag import BagReader
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.msg.image import to_rgb8
from ws3d_ros.msg.pointcloud2 import cloud_to_array
from ws3d_ros.sim.bagwrite import (
    CLASSES_FILE,
    LABELS_TOPIC,
    POINTS_TOPIC,
    export_semantickitti,
    write_bag,
)
from ws3d_ros.sim.classes import STREET_CLASSES, load_classes
from ws3d_ros.sim.rig import SimConfig, Simulator

CONFIG = SimConfig(frames=3, seed=11, lidar_beams=32)


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return write_bag(CONFIG, tmp_path_factory.mktemp("bags") / "street", progress=False)


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_topics_types_and_counts(bag: Path) -> None:
    with BagReader(bag) as reader:
        topics = reader.topics
        assert reader.storage == "mcap"
    expected = {
        "/lidar/points": ("sensor_msgs/msg/PointCloud2", 3),
        "/lidar/labels": ("sensor_msgs/msg/PointCloud2", 3),
        "/camera/image_raw": ("sensor_msgs/msg/Image", 3),
        "/camera/camera_info": ("sensor_msgs/msg/CameraInfo", 3),
        "/tf": ("tf2_msgs/msg/TFMessage", 3),
        "/tf_static": ("tf2_msgs/msg/TFMessage", 1),
    }
    assert {t: (i.msgtype, i.count) for t, i in topics.items()} == expected
    assert topics["/tf_static"].latched and not topics["/tf"].latched
    assert load_classes(bag / CLASSES_FILE) == STREET_CLASSES


def test_labels_align_with_the_sweep(bag: Path) -> None:
    sim = Simulator(CONFIG)
    clouds, labels = {}, {}
    with BagReader(bag) as reader:
        for topic, stamp, msg in reader.messages([POINTS_TOPIC, LABELS_TOPIC]):
            header_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert header_ns == stamp
            assert msg.header.frame_id == "lidar"
            target = clouds if topic == POINTS_TOPIC else labels
            target[stamp] = cloud_to_array(msg, copy=True)
    assert sorted(clouds) == sorted(labels) == [sim.stamp_ns(k) for k in range(3)]
    for k, stamp in enumerate(sorted(clouds)):
        pts, lab = clouds[stamp], labels[stamp]
        assert lab.dtype.names == ("label", "instance")
        assert lab.dtype["label"] == np.uint16 and lab.dtype["instance"] == np.uint32
        assert len(pts) == len(lab)
        assert pts.dtype.names == ("x", "y", "z", "intensity", "ring", "time")
        frame = sim.frame(k)
        assert pts.tobytes() == frame.points.tobytes()
        assert np.array_equal(lab["label"], frame.labels)
        assert np.array_equal(lab["instance"], frame.instances)


def test_camera_and_tf_messages(bag: Path) -> None:
    sim = Simulator(CONFIG)
    frame = sim.frame(0)
    with BagReader(bag) as reader:
        msgs = list(
            reader.messages(["/camera/image_raw", "/camera/camera_info", "/tf_static", "/tf"])
        )
    images = [m for t, _, m in msgs if t == "/camera/image_raw"]
    infos = [m for t, _, m in msgs if t == "/camera/camera_info"]
    assert np.array_equal(to_rgb8(images[0]), frame.images["camera"])
    assert images[0].header.frame_id == "camera" and images[0].encoding == "rgb8"
    assert infos[0].header.stamp == images[0].header.stamp
    np.testing.assert_allclose(
        np.asarray(infos[0].k).reshape(3, 3),
        np.asarray(frame.cameras["camera"].camera.K).reshape(3, 3),
    )
    assert infos[0].distortion_model == "plumb_bob" and len(infos[0].d) == 5
    static = next(m for t, _, m in msgs if t == "/tf_static")
    edges = {(tf.header.frame_id, tf.child_frame_id): tf for tf in static.transforms}
    assert set(edges) == {("base_link", "lidar"), ("base_link", "camera")}

    # The camera->lidar chain from /tf_static equals the frame's calibration.
    def as_T(tf) -> Transform:
        t, q = tf.transform.translation, tf.transform.rotation
        return Transform.from_xyz_quat((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))

    T = as_T(edges[("base_link", "camera")]).inverse() @ as_T(edges[("base_link", "lidar")])
    np.testing.assert_allclose(T.matrix, frame.cameras["camera"].T_cam_from_lidar.matrix, atol=1e-9)
    odom = [m for t, _, m in msgs if t == "/tf"]
    assert all(m.transforms[0].header.frame_id == "odom" for m in odom)
    assert all(m.transforms[0].child_frame_id == "base_link" for m in odom)
    xs = [m.transforms[0].transform.translation.x for m in odom]
    assert xs[0] == 0.0 and xs[1] > 0.4 and xs[2] > xs[1]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mcap_ros2 imports a deprecated module
def test_independent_mcap_reader(bag: Path) -> None:
    from mcap_ros2.reader import read_ros2_messages

    (mcap_file,) = bag.glob("*.mcap")
    counts: dict[str, int] = {}
    n_points = n_labels = None
    for m in read_ros2_messages(str(mcap_file)):
        counts[m.channel.topic] = counts.get(m.channel.topic, 0) + 1
        if m.channel.topic == POINTS_TOPIC and n_points is None:
            n_points = m.ros_msg.width
        if m.channel.topic == LABELS_TOPIC and n_labels is None:
            n_labels = m.ros_msg.width
            assert [f.name for f in m.ros_msg.fields] == ["label", "instance"]
        if m.channel.topic == "/camera/image_raw":
            assert (m.ros_msg.width, m.ros_msg.height) == (1242, 375)
    assert counts["/lidar/points"] == counts["/lidar/labels"] == 3
    assert n_points == n_labels and n_points > 30_000


def test_same_seed_identical_files_different_seed_different(tmp_path: Path) -> None:
    cfg = SimConfig(frames=2, seed=5, lidar_beams=32)
    a = file_hashes(write_bag(cfg, tmp_path / "a" / "bag", progress=False))
    b = file_hashes(write_bag(cfg, tmp_path / "b" / "bag", progress=False))
    assert a == b
    c = file_hashes(
        write_bag(
            SimConfig(frames=2, seed=6, lidar_beams=32), tmp_path / "c" / "bag", progress=False
        )
    )
    mcap = [k for k in a if k.endswith(".mcap")]
    assert mcap and all(a[k] != c[k] for k in mcap)


def test_sqlite3_storage_and_frames_reader(tmp_path: Path) -> None:
    from ws3d_ros.data.frames import BagFrames

    path = write_bag(
        SimConfig(frames=2, storage="sqlite3", lidar_beams=32, cameras=6),
        tmp_path / "sq",
        progress=False,
    )
    assert list(path.glob("*.db3"))
    with BagReader(path) as reader:
        assert reader.storage == "sqlite3"
        assert "/camera/front_left/image_raw" in reader.topics
    frames = list(BagFrames(path))
    assert len(frames) == 2
    f = frames[0]
    assert f.labels is not None and len(f.labels) == len(f)
    assert sorted(v.name for v in f.views) == sorted(
        ["front", "front_left", "front_right", "back", "back_left", "back_right"]
    )
    assert all(v.image is not None for v in f.views)


def test_semantickitti_export(tmp_path: Path) -> None:
    sim = Simulator(SimConfig(frames=2, seed=2, lidar_beams=32))
    frames = list(sim.frames())
    root = export_semantickitti(frames, sim, tmp_path / "seq")
    for k, frame in enumerate(frames):
        scan = np.fromfile(root / "velodyne" / f"{k:06d}.bin", np.float32).reshape(-1, 4)
        lab = np.fromfile(root / "labels" / f"{k:06d}.label", np.uint32)
        assert len(scan) == len(lab) == len(frame)
        np.testing.assert_array_equal(scan[:, 0], frame.points["x"])
        np.testing.assert_array_equal(scan[:, 3], frame.points["intensity"])
        np.testing.assert_array_equal(lab & 0xFFFF, frame.labels)
        np.testing.assert_array_equal(lab >> 16, frame.instances)
    calib = {
        line.split(":")[0]: np.array(line.split(":")[1].split(), float)
        for line in (root / "calib.txt").read_text().splitlines()
        if ":" in line
    }
    tr = calib["Tr_velo_to_cam"].reshape(3, 4) if "Tr_velo_to_cam" in calib else calib["Tr"]
    np.testing.assert_allclose(
        tr.reshape(3, 4), frames[0].cameras["camera"].T_cam_from_lidar.matrix[:3], atol=1e-6
    )
    poses = np.loadtxt(root / "poses.txt").reshape(-1, 3, 4)
    assert len(poses) == 2
    np.testing.assert_allclose(poses[0], np.eye(4)[:3], atol=1e-9)
    # KITTI camera frames: forward motion is +z.
    assert poses[1][2, 3] > 0.4 and abs(poses[1][0, 3]) < 0.05
    assert load_classes(root / "classes.yaml") == STREET_CLASSES
    assert len((root / "times.txt").read_text().split()) == 2
