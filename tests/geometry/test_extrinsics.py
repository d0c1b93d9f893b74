"""Tests of ws3d_ros.geometry.extrinsics: transforms, YAML, KITTI and nuScenes calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ws3d_ros.errors import CalibrationError
from ws3d_ros.geometry.extrinsics import (
    KittiCalib,
    Transform,
    from_nuscenes_sensor,
    load_extrinsics_entries,
    load_extrinsics_yaml,
    load_kitti_calib,
    transform_from_spec,
    write_kitti_calib,
)

angle = st.floats(-math.pi, math.pi, allow_nan=False)
coord = st.floats(-100, 100, allow_nan=False)


def Rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def Ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def Rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# ---------------------------------------------------------------------- Transform


@given(st.tuples(coord, coord, coord), st.tuples(angle, angle, angle))
def test_rpy_is_ros_fixed_axes_and_round_trips(xyz, rpy) -> None:
    T = Transform.from_xyz_rpy(xyz, rpy)
    roll, pitch, yaw = rpy
    np.testing.assert_allclose(T.rotation, Rz(yaw) @ Ry(pitch) @ Rx(roll), atol=1e-12)
    np.testing.assert_allclose(T.translation, xyz)
    xyz2, rpy2 = T.to_xyz_rpy()
    np.testing.assert_allclose(Transform.from_xyz_rpy(xyz2, rpy2).matrix, T.matrix, atol=1e-9)


@given(st.tuples(coord, coord, coord), st.tuples(coord, coord, coord, coord))
def test_quaternion_round_trip(xyz, q) -> None:
    if np.linalg.norm(q) < 1e-3:
        return
    T = Transform.from_xyz_quat(xyz, q)
    xyz2, q2 = T.to_xyz_quat()
    assert q2[3] >= 0 and abs(np.linalg.norm(q2) - 1) < 1e-12
    expected = np.asarray(q) / np.linalg.norm(q)
    # q and -q are the same rotation.
    assert min(np.abs(q2 - expected).max(), np.abs(q2 + expected).max()) < 1e-9
    np.testing.assert_allclose(Transform.from_xyz_quat(xyz2, q2).matrix, T.matrix, atol=1e-12)


def test_known_rotations() -> None:
    yaw90 = Transform.from_xyz_rpy((1, 2, 3), (0, 0, math.pi / 2))
    np.testing.assert_allclose(yaw90.apply(np.array([[1.0, 0, 0]])), [[1, 3, 3]], atol=1e-12)
    q = Transform.from_xyz_quat((0, 0, 0), (0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)))
    np.testing.assert_allclose(
        q.matrix, Transform.from_xyz_rpy((0, 0, 0), (0, 0, math.pi / 2)).matrix, atol=1e-12
    )
    # Scaled quaternions are normalised.
    np.testing.assert_allclose(
        Transform.from_xyz_quat((0, 0, 0), (0, 0, 3, 3)).matrix, q.matrix, atol=1e-12
    )
    # Gimbal lock: pitch 90 deg still round-trips through rpy.
    T = Transform.from_xyz_rpy((0, 0, 0), (0.3, math.pi / 2, -0.2))
    _, rpy = T.to_xyz_rpy()
    assert rpy[1] == pytest.approx(math.pi / 2) and rpy[0] == 0.0
    np.testing.assert_allclose(Transform.from_xyz_rpy((0, 0, 0), rpy).matrix, T.matrix, atol=1e-9)


@settings(max_examples=50)
@given(
    st.tuples(coord, coord, coord),
    st.tuples(angle, angle, angle),
    st.tuples(coord, coord, coord),
    st.tuples(angle, angle, angle),
)
def test_inverse_and_composition(xyz_a, rpy_a, xyz_b, rpy_b) -> None:
    A = Transform.from_xyz_rpy(xyz_a, rpy_a)
    B = Transform.from_xyz_rpy(xyz_b, rpy_b)
    pts = np.random.default_rng(0).normal(size=(20, 3)) * 10
    np.testing.assert_allclose((A @ B).apply(pts), A.apply(B.apply(pts)), atol=1e-9)
    np.testing.assert_allclose(A.inverse().apply(A.apply(pts)), pts, atol=1e-9)
    np.testing.assert_allclose((A @ A.inverse()).matrix, np.eye(4), atol=1e-12)


def test_apply_keeps_float32_and_is_accurate() -> None:
    T = Transform.from_xyz_rpy((1.5, -0.3, 2.0), (0.1, -0.2, 2.5))
    pts = np.random.default_rng(1).uniform(-80, 80, (1000, 3))
    out32 = T.apply(pts.astype(np.float32))
    out64 = T.apply(pts)
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    assert T.apply(pts.astype(np.int32)).dtype == np.float64
    np.testing.assert_allclose(out32, out64, atol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        T.apply(np.zeros((4, 2)))


def test_identity_matrix_is_read_only_and_3x4_accepted() -> None:
    I = Transform.identity()
    np.testing.assert_array_equal(I.matrix, np.eye(4))
    with pytest.raises(ValueError):
        I.matrix[0, 0] = 2.0
    T = Transform.from_matrix(np.hstack([Rz(0.3), [[1], [2], [3]]]))
    np.testing.assert_allclose(T.matrix[3], [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.diag([1.0, 1.0, 1.001, 1.0]), "orthonormal"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "reflection"),
        (np.vstack([np.eye(4)[:3], [0, 0, 1, 1]]), "last row"),
        (np.full((4, 4), np.nan), "non-finite"),
        (np.eye(3), "4x4"),
    ],
)
def test_non_rigid_matrices_raise(matrix, message) -> None:
    with pytest.raises(CalibrationError, match=message):
        Transform.from_matrix(matrix)


def test_zero_quaternion_raises() -> None:
    with pytest.raises(CalibrationError, match="zero length"):
        Transform.from_xyz_quat((0, 0, 0), (0, 0, 0, 0))
    with pytest.raises(CalibrationError, match="4 numbers"):
        Transform.from_xyz_quat((0, 0, 0), (0, 0, 1))


# ---------------------------------------------------------------------- YAML

YAML_DOC = """
transforms:
  camera_in_lidar:
    parent: velodyne
    child: camera_optical
    xyz: [0.27, 0.0, -0.08]
    rpy: [-1.5707963267948966, 0.0, -1.5707963267948966]
  imu:
    matrix: [[1, 0, 0, 0.1], [0, 1, 0, 0], [0, 0, 1, 0.2], [0, 0, 0, 1]]
  gnss:
    xyz: [0.0, 0.0, 1.2]
    quat: [0.0, 0.0, 0.7071067811865476, 0.7071067811865476]
"""


def test_load_extrinsics_yaml_three_forms(tmp_path) -> None:
    path = tmp_path / "extrinsics.yaml"
    path.write_text(YAML_DOC)
    transforms = load_extrinsics_yaml(path)
    assert list(transforms) == ["camera_in_lidar", "imu", "gnss"]
    cam = transforms["camera_in_lidar"]
    # The usual optical-frame mount: optical z is LiDAR x (forward), optical x LiDAR -y.
    np.testing.assert_allclose(cam.rotation @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(cam.rotation @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(cam.apply(np.zeros((1, 3))), [[0.27, 0.0, -0.08]])
    np.testing.assert_allclose(transforms["imu"].translation, [0.1, 0, 0.2])
    np.testing.assert_allclose(transforms["gnss"].rotation, Rz(math.pi / 2), atol=1e-12)
    entries = load_extrinsics_entries(path)
    assert (entries[0].parent, entries[0].child) == ("velodyne", "camera_optical")
    assert entries[1].parent is None and entries[1].child is None


def test_top_level_mapping_and_flat_matrix(tmp_path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("a:\n  matrix: [1,0,0,5, 0,1,0,0, 0,0,1,0, 0,0,0,1]\nb:\n  xyz: [1, 2, 3]\n")
    t = load_extrinsics_yaml(path)
    np.testing.assert_allclose(t["a"].translation, [5, 0, 0])
    np.testing.assert_allclose(t["b"].matrix[:3, :3], np.eye(3))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("bad:\n  xyz: [1, 2]\n  rpy: [0, 0, 0]\n", "'bad'.*xyz must be 3 numbers"),
        ("bad:\n  xyz: [1, 2, 3]\n  rotation: [0, 0, 0]\n", "'bad'.*unknown key"),
        ("bad:\n  rpy: [0, 0, 0]\n  quat: [0, 0, 0, 1]\n", "'bad'.*not both"),
        ("bad:\n  matrix: [[1, 0], [0, 1]]\n", "'bad'.*4x4"),
        ("bad:\n  parent: a\n", "'bad'.*needs matrix"),
        ("bad:\n  xyz: [0, 0, 0]\n  parent: a\n  child: a\n", "'bad'.*same frame"),
        ("bad: [1, 2, 3]\n", "'bad'.*mapping"),
        ("- just a list\n", "mapping of named transforms"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_yaml_entries_name_the_entry(tmp_path, body, message) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(body)
    with pytest.raises(CalibrationError, match=message):
        load_extrinsics_yaml(path)


def test_missing_yaml_file(tmp_path) -> None:
    with pytest.raises(CalibrationError, match="cannot read"):
        load_extrinsics_yaml(tmp_path / "nope.yaml")


def test_transform_from_spec_forms_agree() -> None:
    T = Transform.from_xyz_rpy((1, 2, 3), (0.1, 0.2, 0.3))
    xyz, q = T.to_xyz_quat()
    for spec in (
        {"matrix": T.matrix.tolist()},
        {"matrix": T.matrix[:3].reshape(-1).tolist()},
        {"xyz": [1, 2, 3], "rpy": [0.1, 0.2, 0.3]},
        {"xyz": xyz.tolist(), "quat": q.tolist()},
    ):
        np.testing.assert_allclose(transform_from_spec(spec).matrix, T.matrix, atol=1e-12)
    with pytest.raises(CalibrationError, match="not both"):
        transform_from_spec({"matrix": np.eye(4).tolist(), "xyz": [0, 0, 0]})


# ---------------------------------------------------------------------- KITTI

# KITTI object training/calib/000000.txt (values as printed there, %.12e without the zeros).
KITTI_VALUES = {
    "P0": "7.070493e+02 0 6.040814e+02 0 0 7.070493e+02 1.805066e+02 0 0 0 1 0",
    "P1": "7.070493e+02 0 6.040814e+02 -3.797842e+02 0 7.070493e+02 1.805066e+02 0 0 0 1 0",
    "P2": "7.070493e+02 0 6.040814e+02 4.575831e+01 0 7.070493e+02 1.805066e+02 "
    "-3.454157e-01 0 0 1 4.981016e-03",
    "P3": "7.070493e+02 0 6.040814e+02 -3.341081e+02 0 7.070493e+02 1.805066e+02 "
    "2.330660e+00 0 0 1 3.201153e-03",
    "R0_rect": "9.999128e-01 1.009263e-02 -8.511932e-03 -1.012729e-02 9.999406e-01 "
    "-4.037671e-03 8.470675e-03 4.123522e-03 9.999556e-01",
    "Tr_velo_to_cam": "6.927964e-03 -9.999722e-01 -2.757829e-03 -2.457729e-02 -1.162982e-03 "
    "2.749836e-03 -9.999955e-01 -6.127237e-02 9.999753e-01 6.931141e-03 -1.143899e-03 "
    "-3.321029e-01",
    "Tr_imu_to_velo": "9.999976e-01 7.553071e-04 -2.035826e-03 -8.086759e-01 -7.854027e-04 "
    "9.998898e-01 -1.482298e-02 3.195559e-01 2.024406e-03 1.482454e-02 9.998881e-01 "
    "-7.997231e-01",
}
KITTI_TEXT = "".join(f"{k}: {v}\n" for k, v in KITTI_VALUES.items())


def _lidar_points(n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.column_stack([rng.uniform(5, 70, n), rng.uniform(-20, 20, n), rng.uniform(-2, 2, n)])


def _kitti_reference(P2, R0, Tr, pts) -> np.ndarray:
    R0h = np.eye(4)
    R0h[:3, :3] = R0
    Trh = np.vstack([np.asarray(Tr).reshape(3, 4), [0, 0, 0, 1]])
    h = (P2 @ R0h @ Trh @ np.column_stack([pts, np.ones(len(pts))]).T).T
    return h[:, :2] / h[:, 2:]


def test_kitti_projection_equals_p2_r0_tr(tmp_path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text(KITTI_TEXT)
    calib = load_kitti_calib(path)
    assert isinstance(calib, KittiCalib)
    assert (calib.camera.width, calib.camera.height) == (1242, 375)
    assert not calib.camera.is_distorted
    np.testing.assert_array_equal(calib.camera.P, calib.P2)
    pts = _lidar_points()
    uv, depth = calib.camera.project(calib.T_cam_from_lidar.apply(pts))
    P2 = calib.P2
    ref = _kitti_reference(P2, calib.R0_rect, calib.Tr_velo_to_cam.matrix[:3], pts)
    np.testing.assert_allclose(uv, ref, atol=1e-6)
    assert np.all(depth > 0)


def test_kitti_write_load_round_trip_is_exact(tmp_path) -> None:
    K = np.array([[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    P2 = np.hstack([K, K @ [[0.06], [-0.0003], [0.0027]]])
    R0 = Rz(0.01) @ Ry(-0.008) @ Rx(0.004)
    T_lidar_from_cam = Transform.from_xyz_rpy((0.27, 0.0, -0.08), (-math.pi / 2 + 0.01, 0, -1.56))
    Tr = T_lidar_from_cam.inverse()
    path = tmp_path / "calib.txt"
    write_kitti_calib(path, P2, R0, Tr)
    calib = load_kitti_calib(path, width=1000, height=300)
    assert (calib.camera.width, calib.camera.height) == (1000, 300)
    np.testing.assert_allclose(calib.P2, P2, rtol=1e-12)
    np.testing.assert_allclose(calib.Tr_velo_to_cam.matrix, Tr.matrix, atol=1e-12)
    pts = _lidar_points()
    uv, _ = calib.camera.project(calib.T_cam_from_lidar.apply(pts))
    np.testing.assert_allclose(uv, _kitti_reference(P2, R0, Tr.matrix[:3], pts), atol=1e-6)
    # The file also reads as the odometry format (Tr into the rectified camera).
    text = path.read_text().splitlines()
    odo = tmp_path / "odometry.txt"
    odo.write_text("\n".join(line for line in text if line.split(":")[0] in ("P2", "Tr")))
    odometry = load_kitti_calib(odo)
    np.testing.assert_allclose(
        odometry.T_cam_from_lidar.matrix, calib.T_cam_from_lidar.matrix, atol=1e-9
    )
    # An array Tr is accepted too.
    write_kitti_calib(path, P2, R0, Tr.matrix[:3])
    np.testing.assert_allclose(load_kitti_calib(path).Tr_velo_to_cam.matrix, Tr.matrix, atol=1e-12)


@pytest.mark.parametrize(
    ("drop", "message"),
    [("P2", "missing P2"), ("R0_rect", "missing R0_rect"), ("Tr_velo_to_cam", "missing")],
)
def test_kitti_missing_key(tmp_path, drop, message) -> None:
    path = tmp_path / "calib.txt"
    path.write_text(
        "\n".join(line for line in KITTI_TEXT.splitlines() if not line.startswith(drop + ":"))
    )
    with pytest.raises(CalibrationError, match=message):
        load_kitti_calib(path)


def test_kitti_rotations_rounded_in_the_file_are_reorthonormalised(tmp_path) -> None:
    values = {k: np.array(v.split(), float) for k, v in KITTI_VALUES.items()}
    tr = np.round(values["Tr_velo_to_cam"], 4)  # max |R^T R - I| ~ 1e-4 / 2
    path = tmp_path / "calib.txt"
    path.write_text(KITTI_TEXT.replace(KITTI_VALUES["Tr_velo_to_cam"], " ".join(map(str, tr))))
    calib = load_kitti_calib(path)
    R = calib.Tr_velo_to_cam.rotation
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R, tr.reshape(3, 4)[:, :3], atol=1e-4)


def test_kitti_bad_values(tmp_path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text(KITTI_TEXT.replace("R0_rect: 9.999128e-01", "R0_rect:"))
    with pytest.raises(CalibrationError, match="R0_rect must have 9"):
        load_kitti_calib(path)
    path.write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        + KITTI_TEXT.replace("R0_rect: 9.999128e-01", "R0_rect: 2.0")
    )
    with pytest.raises(CalibrationError, match=r"R0_rect.*orthonormal"):
        load_kitti_calib(path)
    with pytest.raises(CalibrationError, match="cannot read"):
        load_kitti_calib(tmp_path / "missing.txt")


# ---------------------------------------------------------------------- nuScenes


def test_nuscenes_sensor_record_uses_wxyz() -> None:
    # nuScenes LIDAR_TOP calibrated_sensor of scene-0061.
    record = {
        "translation": [0.985793, 0.0, 1.84019],
        "rotation": [
            0.706749235646644,
            -0.015300993788500868,
            0.01739745181256607,
            -0.7070846669051719,
        ],
    }
    T = from_nuscenes_sensor(record)
    xyz, q = T.to_xyz_quat()
    np.testing.assert_allclose(xyz, record["translation"])
    w, x, y, z = record["rotation"]
    np.testing.assert_allclose(q, np.array([x, y, z, w]) / np.linalg.norm([x, y, z, w]))
    # The sensor's x axis points to the ego's right (yaw about -90 deg).
    np.testing.assert_allclose(T.rotation @ [1, 0, 0], [0, -1, 0], atol=0.05)
    with pytest.raises(CalibrationError, match="rotation"):
        from_nuscenes_sensor({"translation": [0, 0, 0]})
