"""The sensor-set description: discovery, camera naming, calibration files, intensity,
label maps (issue 22's problems 1, 2, 4 and 6 at the unit level)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.data.bag import TopicInfo
from ws3d_ros.data.frame import Frame
from ws3d_ros.data.frames import camera_name_of, discover_topics, is_project_output
from ws3d_ros.data.intensity import IntensityNormalizer, parse_range, snap_range
from ws3d_ros.data.labels import SHIPPED_MAPS, SidecarLabels, load_label_map
from ws3d_ros.data.sensors import SensorSet, camera_topics, load_calibration
from ws3d_ros.errors import BagError, CalibrationError, Ws3dError
from ws3d_ros.geometry.extrinsics import Transform, matrix_to_quat, write_kitti_calib
from ws3d_ros.msg.pointcloud2 import structured


def _topics(**kinds: tuple[str, int]) -> dict[str, TopicInfo]:
    out = {}
    for key, (msgtype, count) in kinds.items():
        name = "/" + key.replace("__", "/")
        out[name] = TopicInfo(name, f"sensor_msgs/msg/{msgtype}", count, False)
    return out


def test_discovery_never_takes_the_project_outputs_and_prefers_lidar_fields() -> None:
    topics = _topics(
        panoptic__points=("PointCloud2", 50),  # ws3d infer's output: never the LiDAR
        camera__depth__points=("PointCloud2", 90),  # a depth camera: busier, named *points
        kitti__velo__pointcloud=("PointCloud2", 10),
        panoptic__overlay=("Image", 50),
    )
    fields = {
        "/panoptic/points": ("x", "y", "z", "label", "instance", "score"),
        "/camera/depth/points": ("x", "y", "z", "rgb"),
        "/kitti/velo/pointcloud": ("x", "y", "z", "intensity"),
    }
    found = discover_topics(topics, cloud_fields=fields)
    assert found.points == "/kitti/velo/pointcloud"
    assert found.labels is None  # panoptic/points is not taken as labels either
    assert found.cameras == ()  # nor the overlay as a camera
    assert is_project_output("/robot/panoptic/points") and not is_project_output("/points")
    # ... but a flag may name them.
    assert discover_topics(topics, labels="/panoptic/points", cloud_fields=fields).labels == (
        "/panoptic/points"
    )
    with pytest.raises(BagError, match="--points /panoptic/overlay is a sensor_msgs/msg/Image"):
        discover_topics(topics, points="/panoptic/overlay")


def test_compressed_and_raw_cameras_share_the_node_naming() -> None:
    for transport in ("raw", "compressed"):
        image, info = camera_topics("/front", transport)
        assert camera_name_of(image) == "front"
        assert info == "/front/camera_info"
    assert camera_topics("/front", "compressed")[0] == "/front/image/compressed"
    assert camera_topics("", "compressed") == ("image/compressed", "camera_info")
    topics = _topics(
        CAM_FRONT__image_raw__compressed=("CompressedImage", 3),
        CAM_FRONT__camera_info=("CameraInfo", 3),
        CAM_BACK__image=("Image", 3),
        calib__back=("CameraInfo", 3),
        lidar=("PointCloud2", 3),
    )
    found = discover_topics(
        topics,
        images=["/CAM_FRONT/image_raw/compressed", "/CAM_BACK/image"],
        camera_infos=["/CAM_FRONT/camera_info", "/calib/back"],
    )
    assert [(c.name, c.camera_info) for c in found.cameras] == [
        ("CAM_FRONT", "/CAM_FRONT/camera_info"),
        ("CAM_BACK", "/calib/back"),
    ]
    with pytest.raises(Ws3dError, match="one per image topic"):
        SensorSet(images=("/a/image",), camera_infos=("/a/camera_info", "/b/camera_info"))


def test_kitti_calibration_of_any_name_takes_the_image_size(tmp_path: Path) -> None:
    K = np.array([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]])
    T = Transform.from_xyz_rpy([0.27, -0.08, -0.06], [-1.57, 0.0, -1.57])
    path = tmp_path / "2011_09_26_velo_to_cam.txt"
    write_kitti_calib(path, np.hstack([K, np.zeros((3, 1))]), np.eye(3), T)
    calib = load_calibration(path, ["left"])
    assert calib.kind == "kitti"
    np.testing.assert_allclose(calib.extrinsics["left"].matrix, T.matrix, atol=1e-9)
    model = calib.camera_model("left", 1224, 370)
    assert (model.width, model.height) == (1224, 370)  # not the assumed 1242x375
    bad = tmp_path / "notes.txt"
    bad.write_text("hello: world\n")
    with pytest.raises(CalibrationError, match=r"KITTI calib\.txt"):
        load_calibration(bad, ["left"])


def test_nuscenes_calibration(tmp_path: Path) -> None:
    T_ego_lidar = Transform.from_xyz_rpy([0.9, 0.0, 1.8], [0.0, 0.0, 1.57])
    T_ego_cam = Transform.from_xyz_rpy([1.7, 0.0, 1.5], [-1.57, 0.0, -1.57])

    def record(T: Transform) -> dict:
        x, y, z, w = matrix_to_quat(T.matrix[:3, :3])
        return {"translation": T.matrix[:3, 3].tolist(), "rotation": [w, x, y, z]}

    path = tmp_path / "calibrated_sensor.json"
    path.write_text(json.dumps({"LIDAR_TOP": record(T_ego_lidar), "CAM_FRONT": record(T_ego_cam)}))
    calib = load_calibration(path, ["CAM_FRONT", "CAM_BACK"])
    expected = T_ego_cam.inverse() @ T_ego_lidar
    np.testing.assert_allclose(calib.extrinsics["CAM_FRONT"].matrix, expected.matrix, atol=1e-9)
    assert "CAM_BACK" not in calib.extrinsics


def _frame(intensity: np.ndarray) -> Frame:
    n = len(intensity)
    return Frame(0, "lidar", structured(x=np.zeros(n), y=np.zeros(n), z=np.zeros(n),
                                        intensity=intensity.astype(np.float32)))  # fmt: skip


def test_intensity_rule_and_normaliser(caplog: pytest.LogCaptureFixture) -> None:
    assert snap_range(0.93) == (0.0, 1.0)
    assert snap_range(242.0) == (0.0, 255.0)
    assert snap_range(4000.0) == (0.0, 65535.0)
    assert parse_range("0,255") == (0.0, 255.0) == parse_range("255")
    with pytest.raises(Ws3dError, match="LO < HI"):
        parse_range("5,1")
    norm = IntensityNormalizer((0.0, 1.0))
    values = np.array([0.0, 51.0, 255.0])
    with caplog.at_level(logging.INFO, logger="ws3d_ros.data.intensity"):
        out = norm(_frame(values))  # detected: 0-255
        norm(_frame(values))
    np.testing.assert_allclose(out.points["intensity"], [0.0, 0.2, 1.0], atol=1e-6)
    assert len([r for r in caplog.records if "intensity" in r.message]) == 1  # logged once
    declared = _frame(np.array([0.0, 100.0]))
    declared.intensity_range = (0.0, 100.0)
    np.testing.assert_allclose(norm(declared).points["intensity"], [0.0, 1.0])
    assert declared.points["intensity"][1] == 100.0  # the input frame is not modified


def test_shipped_semantic_kitti_map(tmp_path: Path) -> None:
    m = load_label_map(SHIPPED_MAPS / "semantic_kitti.yaml")
    assert len(m.names) == 19 and m.names[0] == "car" and "road" in m.names
    assert len(m.things) == 8
    raw = np.array([10, 252, 40, 0, 1, 52, 70], np.uint32)
    got = m.apply(raw).tolist()
    assert got == [0, 0, m.names.index("road"), 65535, 65535, 65535, m.names.index("vegetation")]
    packed = (raw | (np.arange(7, dtype=np.uint32) << 16)).astype("<u4")
    packed.tofile(tmp_path / "000003.label")
    labels, instances = SidecarLabels(tmp_path, m).read(3, 7)
    assert labels.tolist() == got and instances.tolist() == list(range(7))
    assert SidecarLabels(tmp_path, m).read(4, 7) is None
