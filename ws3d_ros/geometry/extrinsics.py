"""Rigid transforms between sensor frames, and the calibration files that carry them.

Contract:
- :class:`Transform` is a validated rigid 4x4 matrix. Naming: ``T_a_from_b`` maps points
  expressed in frame ``b`` into frame ``a`` (``p_a = T_a_from_b.apply(p_b)``), and
  ``T_a_from_b @ T_b_from_c == T_a_from_c``. Euler angles follow ROS (fixed axes,
  ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``); quaternions are ``(x, y, z, w)`` like
  ``geometry_msgs`` except in :func:`from_nuscenes_sensor` (nuScenes stores ``w, x, y, z``).
- Extrinsics YAML (:func:`load_extrinsics_yaml`): a mapping of entry names to transforms,
  either at the top level or under a ``transforms:`` key::

      transforms:
        lidar_to_camera:                # entry name
          parent: camera_optical        # optional: the frame points are mapped INTO
          child: velodyne               # optional: the frame points are expressed in
          xyz: [0.0, -0.08, -0.27]      # metres
          rpy: [-1.5708, 0.0, -1.5708]  # radians, ROS fixed axes
        imu:
          matrix: [[1, 0, 0, 0.1], [0, 1, 0, 0], [0, 0, 1, 0.2], [0, 0, 0, 1]]
        gnss:
          xyz: [0.0, 0.0, 1.2]
          quat: [0.0, 0.0, 0.0, 1.0]    # x, y, z, w

  Each entry is ``T_parent_from_child`` (like a tf edge) given in exactly one form:
  ``matrix`` (4x4 or 3x4 nested, or 16/12 numbers row-major), or ``xyz`` with ``rpy`` or
  ``quat`` (either part may be left out: zero translation / identity rotation). Unknown
  keys are errors (a typo must not silently become the identity). The node's extrinsics
  parameters use the same forms (:func:`transform_from_spec`).
- KITTI ``calib.txt`` (:func:`load_kitti_calib`, :func:`write_kitti_calib`): object-format
  names ``P2``, ``R0_rect``, ``Tr_velo_to_cam``; the odometry format's ``Tr`` (velodyne to
  the rectified reference camera, no ``R0_rect``) and the raw-data names ``P_rect_02`` /
  ``R_rect_00`` are read too. :class:`KittiCalib` folds the P2 baseline into
  ``T_cam_from_lidar`` so that ``camera.project(T_cam_from_lidar.apply(p))`` equals
  ``P2 @ R0_rect @ Tr_velo_to_cam @ p``.
- Bad input raises :class:`~ws3d_ros.errors.CalibrationError` naming the entry or key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ws3d_ros.errors import CalibrationError
from ws3d_ros.geometry.camera import CameraModel

ORTHONORMAL_TOL = 1e-6
# Rotations read from text files carry ~7 significant digits; within this we re-orthonormalise.
_FILE_ROUNDING_TOL = 1e-4


def _vector(value: Any, n: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{name} must be {n} numbers: {exc}") from None
    if arr.size != n:
        raise CalibrationError(f"{name} must be {n} numbers, found {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{name} has non-finite values: {arr.tolist()}")
    return arr


def _orthonormal_error(R: np.ndarray) -> float:
    return float(np.max(np.abs(R.T @ R - np.eye(3))))


def nearest_rotation(R: np.ndarray) -> np.ndarray:
    """The rotation matrix closest to ``R`` (Frobenius norm), via SVD."""
    U, _, Vt = np.linalg.svd(R)
    D = np.diag([1.0, 1.0, float(np.sign(np.linalg.det(U @ Vt)))])
    return U @ D @ Vt


def rpy_to_matrix(rpy: Any) -> np.ndarray:
    """``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`` for ``rpy = (roll, pitch, yaw)``."""
    roll, pitch, yaw = _vector(rpy, 3, "rpy")
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def quat_to_matrix(quat_xyzw: Any) -> np.ndarray:
    """Rotation matrix of a quaternion ``(x, y, z, w)``; normalised first."""
    q = _vector(quat_xyzw, 4, "quaternion")
    norm = float(np.linalg.norm(q))
    if norm < 1e-12:
        raise CalibrationError(f"quaternion {q.tolist()} has zero length")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` with ``w >= 0`` of a rotation matrix (Shepperd's method)."""
    m = R
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] >= m[1, 1] and m[0, 0] >= m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] >= m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    quat = np.array(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


@dataclass(frozen=True, eq=False)
class Transform:
    """A rigid transform; ``matrix`` is a read-only (4,4) float64 array."""

    matrix: np.ndarray

    def __post_init__(self) -> None:
        try:
            m = np.array(self.matrix, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"transform matrix is not numeric: {exc}") from None
        if m.shape == (3, 4):
            m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
        if m.shape != (4, 4):
            raise CalibrationError(f"transform matrix must be 4x4 (or 3x4), found {m.shape}")
        if not np.all(np.isfinite(m)):
            raise CalibrationError(f"transform matrix has non-finite values: {m.tolist()}")
        if np.max(np.abs(m[3] - (0.0, 0.0, 0.0, 1.0))) > 1e-9:
            raise CalibrationError(f"transform's last row must be [0, 0, 0, 1], found {m[3]}")
        err = _orthonormal_error(m[:3, :3])
        if err > ORTHONORMAL_TOL:
            raise CalibrationError(
                f"transform rotation is not orthonormal (max |R^T R - I| = {err:.2e} "
                f"> {ORTHONORMAL_TOL:g})"
            )
        if np.linalg.det(m[:3, :3]) < 0:
            raise CalibrationError("transform rotation is a reflection (det < 0)")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)

    # ------------------------------------------------------------------ construction

    @classmethod
    def identity(cls) -> Transform:
        return cls(np.eye(4))

    @classmethod
    def from_matrix(cls, m: Any) -> Transform:
        """From a 4x4 (or 3x4) matrix."""
        return cls(np.asarray(m, dtype=np.float64))

    @classmethod
    def from_rotation_translation(cls, R: Any, t: Any) -> Transform:
        m = np.eye(4)
        m[:3, :3] = np.asarray(R, np.float64).reshape(3, 3)
        m[:3, 3] = _vector(t, 3, "translation")
        return cls(m)

    @classmethod
    def from_xyz_rpy(cls, xyz: Any, rpy: Any) -> Transform:
        return cls.from_rotation_translation(rpy_to_matrix(rpy), _vector(xyz, 3, "xyz"))

    @classmethod
    def from_xyz_quat(cls, xyz: Any, quat_xyzw: Any) -> Transform:
        return cls.from_rotation_translation(quat_to_matrix(quat_xyzw), _vector(xyz, 3, "xyz"))

    # ------------------------------------------------------------------ access

    @property
    def rotation(self) -> np.ndarray:
        return self.matrix[:3, :3]

    @property
    def translation(self) -> np.ndarray:
        return self.matrix[:3, 3]

    def inverse(self) -> Transform:
        R, t = self.rotation, self.translation
        m = np.eye(4)
        m[:3, :3] = R.T
        m[:3, 3] = -R.T @ t
        return Transform(m)

    def __matmul__(self, other: Transform) -> Transform:
        if not isinstance(other, Transform):
            return NotImplemented
        return Transform(self.matrix @ other.matrix)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N,3)`` points; float32 input is computed and returned in float32."""
        pts = np.asarray(points)
        if pts.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), found {pts.shape}")
        dtype = np.float32 if pts.dtype == np.float32 else np.float64
        pts = pts.astype(dtype, copy=False)
        out = pts @ self.rotation.T.astype(dtype)
        out += self.translation.astype(dtype)
        return out

    def to_xyz_quat(self) -> tuple[np.ndarray, np.ndarray]:
        """``(xyz, quat (x, y, z, w) with w >= 0)``."""
        return self.translation.copy(), matrix_to_quat(self.rotation)

    def to_xyz_rpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(xyz, (roll, pitch, yaw))``; at gimbal lock (pitch = +-90 deg) roll is 0."""
        R = self.rotation
        sp = -float(R[2, 0])
        if abs(sp) > 1.0 - 1e-12:
            pitch = math.copysign(0.5 * math.pi, sp)
            roll = 0.0
            yaw = math.atan2(-float(R[0, 1]), float(R[1, 1]))
        else:
            pitch = math.asin(sp)
            roll = math.atan2(float(R[2, 1]), float(R[2, 2]))
            yaw = math.atan2(float(R[1, 0]), float(R[0, 0]))
        return self.translation.copy(), np.array([roll, pitch, yaw])

    def __repr__(self) -> str:
        xyz, rpy = self.to_xyz_rpy()
        return (
            f"Transform(xyz={np.round(xyz, 4).tolist()}, "
            f"rpy_deg={np.round(np.degrees(rpy), 3).tolist()})"
        )


# --------------------------------------------------------------------------- YAML

_SPEC_KEYS = {"matrix", "xyz", "rpy", "quat", "parent", "child"}


def transform_from_spec(spec: Mapping[str, Any]) -> Transform:
    """One transform of the extrinsics schema (see the module docstring)."""
    if not isinstance(spec, Mapping):
        raise CalibrationError(
            "a transform must be a mapping with matrix or xyz/rpy/quat, "
            f"found {type(spec).__name__}"
        )
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise CalibrationError(
            f"unknown key(s) {sorted(unknown)}; expected some of {sorted(_SPEC_KEYS)}"
        )
    if "matrix" in spec:
        extra = {"xyz", "rpy", "quat"} & set(spec)
        if extra:
            raise CalibrationError(f"give either matrix or {sorted(extra)}, not both")
        values = spec["matrix"]
        try:
            m = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"matrix is not numeric: {exc}") from None
        if m.size in (12, 16) and m.ndim == 1:
            m = m.reshape(-1, 4)
        if m.shape not in ((3, 4), (4, 4)):
            raise CalibrationError(f"matrix must be 4x4 or 3x4 (or 16/12 numbers), found {m.shape}")
        return Transform.from_matrix(m)
    if "rpy" in spec and "quat" in spec:
        raise CalibrationError("give either rpy or quat, not both")
    if not {"xyz", "rpy", "quat"} & set(spec):
        raise CalibrationError("a transform needs matrix, or xyz with rpy or quat")
    xyz = _vector(spec.get("xyz", (0.0, 0.0, 0.0)), 3, "xyz")
    if "quat" in spec:
        return Transform.from_xyz_quat(xyz, spec["quat"])
    return Transform.from_xyz_rpy(xyz, spec.get("rpy", (0.0, 0.0, 0.0)))


@dataclass(frozen=True)
class ExtrinsicsEntry:
    """One named entry of an extrinsics file: ``transform`` is ``T_parent_from_child``."""

    name: str
    transform: Transform
    parent: str | None = None
    child: str | None = None


def load_extrinsics_entries(path: str | Path) -> list[ExtrinsicsEntry]:
    """Every entry of an extrinsics YAML file, in file order, with its frame names."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CalibrationError(f"cannot read extrinsics file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path} is not valid YAML: {exc}") from None
    if isinstance(doc, Mapping) and "transforms" in doc:
        doc = doc["transforms"]
    if not isinstance(doc, Mapping) or not doc:
        raise CalibrationError(f"{path}: expected a mapping of named transforms, found {doc!r}")
    entries = []
    for name, spec in doc.items():
        try:
            transform = transform_from_spec(spec)
            frames = {}
            for key in ("parent", "child"):
                value = spec.get(key)
                if value is not None and (not isinstance(value, str) or not value):
                    raise CalibrationError(f"{key} must be a non-empty string, found {value!r}")
                frames[key] = value
            if frames["parent"] is not None and frames["parent"] == frames["child"]:
                raise CalibrationError(f"parent and child are the same frame {frames['child']!r}")
        except CalibrationError as exc:
            raise CalibrationError(f"{path}: entry {name!r}: {exc}") from None
        entries.append(ExtrinsicsEntry(str(name), transform, frames["parent"], frames["child"]))
    return entries


def load_extrinsics_yaml(path: str | Path) -> dict[str, Transform]:
    """``{entry name: T_parent_from_child}`` of an extrinsics YAML file."""
    return {e.name: e.transform for e in load_extrinsics_entries(path)}


# --------------------------------------------------------------------------- KITTI

_KITTI_NAMES = {
    "P2": ("P2", "P_rect_02"),
    "R0_rect": ("R0_rect", "R_rect_00"),
    "Tr_velo_to_cam": ("Tr_velo_to_cam",),
}


def _rigid_from_file(m: np.ndarray, name: str) -> Transform:
    """A transform from file values, re-orthonormalising a rotation rounded in the file."""
    m = np.array(m, dtype=np.float64)
    err = _orthonormal_error(m[:3, :3])
    if ORTHONORMAL_TOL < err <= _FILE_ROUNDING_TOL:
        m[:3, :3] = nearest_rotation(m[:3, :3])
    try:
        return Transform.from_matrix(m)
    except CalibrationError as exc:
        raise CalibrationError(f"{name}: {exc}") from None


@dataclass
class KittiCalib:
    """A KITTI camera-LiDAR calibration (colour camera 2)."""

    P2: np.ndarray  # (3,4) rectified projection of camera 2
    R0_rect: np.ndarray  # (3,3) rectifying rotation of the reference camera
    Tr_velo_to_cam: Transform  # velodyne -> (unrectified) reference camera
    camera: CameraModel  # K = P2[:, :3], no distortion, P = P2
    T_cam_from_lidar: Transform  # velodyne -> camera 2's rectified optical frame

    @classmethod
    def from_matrices(
        cls,
        P2: Any,
        R0_rect: Any,
        Tr_velo_to_cam: Any,
        width: int = 1242,
        height: int = 375,
        frame_id: str = "",
    ) -> KittiCalib:
        """Build from the three matrices (``Tr_velo_to_cam`` as 3x4/4x4 or a Transform)."""
        P2 = np.asarray(P2, dtype=np.float64).reshape(3, 4)
        R0 = np.asarray(R0_rect, dtype=np.float64).reshape(3, 3)
        Tr = Tr_velo_to_cam
        if not isinstance(Tr, Transform):
            Tr = _rigid_from_file(np.asarray(Tr, np.float64).reshape(-1, 4), "Tr_velo_to_cam")
        rect = _rigid_from_file(
            np.vstack([np.hstack([R0, np.zeros((3, 1))]), [0, 0, 0, 1]]), "R0_rect"
        )
        K = P2[:, :3]
        try:
            camera = CameraModel(width, height, K, np.zeros(0), "none", P=P2, frame_id=frame_id)
        except CalibrationError as exc:
            raise CalibrationError(f"P2: {exc}") from None
        # P2 = K [I | b]: camera 2 sits at -b in the rectified reference frame.
        baseline = np.eye(4)
        baseline[:3, 3] = np.linalg.solve(K, P2[:, 3])
        return cls(P2, R0, Tr, camera, Transform(baseline) @ rect @ Tr)


def _read_kitti_lines(path: Path) -> dict[str, np.ndarray]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CalibrationError(f"cannot read KITTI calibration {path}: {exc}") from None
    values: dict[str, np.ndarray] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(x) for x in rest.split()], dtype=np.float64)
        except ValueError:
            continue  # e.g. "calib_time: 09-Jan-2012 13:57:47"
    return values


def load_kitti_calib(path: str | Path, width: int = 1242, height: int = 375) -> KittiCalib:
    """Read a KITTI ``calib.txt`` (object or odometry format) for camera 2."""
    path = Path(path)
    values = _read_kitti_lines(path)

    def get(name: str, size: int, aliases: tuple[str, ...]) -> np.ndarray:
        for alias in aliases:
            if alias in values:
                v = values[alias]
                if v.size != size:
                    raise CalibrationError(
                        f"{path}: {alias} must have {size} numbers, found {v.size}"
                    )
                if not np.all(np.isfinite(v)):
                    raise CalibrationError(f"{path}: {alias} has non-finite values")
                return v
        raise CalibrationError(
            f"{path}: missing {name} (looked for {list(aliases)}; found {sorted(values)})"
        )

    P2 = get("P2", 12, _KITTI_NAMES["P2"]).reshape(3, 4)
    if "Tr_velo_to_cam" not in values and "Tr" in values:
        # Odometry format: Tr maps straight into the rectified reference camera.
        Tr = get("Tr", 12, ("Tr",))
        R0 = np.eye(3)
    else:
        Tr = get("Tr_velo_to_cam", 12, _KITTI_NAMES["Tr_velo_to_cam"])
        R0 = get("R0_rect", 9, _KITTI_NAMES["R0_rect"]).reshape(3, 3)
    try:
        return KittiCalib.from_matrices(P2, R0, Tr.reshape(3, 4), width, height)
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: {exc}") from None


def write_kitti_calib(path: str | Path, P2: Any, R0_rect: Any, Tr_velo_to_cam: Any) -> None:
    """Write a KITTI ``calib.txt`` readable by object- and odometry-format readers.

    ``P0``/``P1`` are ``[K | 0]`` (the rectified reference camera) and ``P3`` repeats
    ``P2``, so readers that expect four projection lines parse the file; ``Tr`` (odometry
    format) is ``R0_rect @ Tr_velo_to_cam``.
    """
    P2 = np.asarray(P2, dtype=np.float64).reshape(3, 4)
    R0 = np.asarray(R0_rect, dtype=np.float64).reshape(3, 3)
    if isinstance(Tr_velo_to_cam, Transform):
        Tr = Tr_velo_to_cam.matrix[:3]
    else:
        Tr = np.asarray(Tr_velo_to_cam, dtype=np.float64).reshape(-1, 4)[:3]
    for name, m in (("P2", P2), ("R0_rect", R0), ("Tr_velo_to_cam", Tr)):
        if not np.all(np.isfinite(m)):
            raise CalibrationError(f"{name} has non-finite values")
    P0 = np.hstack([P2[:, :3], np.zeros((3, 1))])
    Tr_odometry = R0 @ Tr

    def fmt(m: np.ndarray) -> str:
        return " ".join(f"{x:.12e}" for x in m.reshape(-1))

    lines = [
        f"P0: {fmt(P0)}",
        f"P1: {fmt(P0)}",
        f"P2: {fmt(P2)}",
        f"P3: {fmt(P2)}",
        f"R0_rect: {fmt(R0)}",
        f"Tr_velo_to_cam: {fmt(Tr)}",
        f"Tr: {fmt(Tr_odometry)}",
    ]
    Path(path).write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- nuScenes


def from_nuscenes_sensor(record: Mapping[str, Any]) -> Transform:
    """``T_ego_from_sensor`` of a nuScenes ``calibrated_sensor`` record (rotation w, x, y, z)."""
    try:
        t, q = record["translation"], record["rotation"]
    except (KeyError, TypeError) as exc:
        raise CalibrationError(
            f"nuScenes sensor record needs 'translation' and 'rotation': missing {exc}"
        ) from None
    w, x, y, z = _vector(q, 4, "rotation (w, x, y, z)")
    return Transform.from_xyz_quat(_vector(t, 3, "translation"), (x, y, z, w))
