"""Where the perception node gets each camera's ``T_cam_from_lidar`` (no rclpy here).

Contract: :meth:`CameraExtrinsics.lookup` answers, in this order,
1. the ``extrinsics.<camera>.*`` parameters (:func:`~ws3d_ros.ros.params.extrinsics_spec`),
2. the calibration file, read as the ``ws3d`` commands read it: an extrinsics YAML
   (entries named by camera, each ``T_camera_from_lidar``), a KITTI ``calib.txt`` of any
   name (its camera-2 transform, for the first camera) or nuScenes calibrated_sensor
   JSON,
3. ``/tf_static`` transforms fed to :meth:`add_tf_message` (camera optical frame <- LiDAR
   frame, chained through the tree),
and raises :class:`~ws3d_ros.errors.CalibrationError` naming all three otherwise. It is
thread-safe: parameters and tf messages arrive on the executor, lookups on the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ws3d_ros.errors import CalibrationError
from ws3d_ros.geometry.extrinsics import Transform, transform_from_spec
from ws3d_ros.geometry.tf_tree import TransformTree
from ws3d_ros.ros.params import extrinsics_spec

__all__ = ["CameraExtrinsics", "load_calibration_file"]


def load_calibration_file(path: str | Path, cameras: Sequence[str]) -> dict[str, Transform]:
    """``{camera: T_cam_from_lidar}`` from a calibration file, read by the one loader the
    ``ws3d`` commands use (:func:`ws3d_ros.data.sensors.load_calibration`: extrinsics YAML,
    KITTI calib.txt of any name, nuScenes calibrated_sensor JSON)."""
    from ws3d_ros.data.sensors import load_calibration

    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration_file {path} does not exist")
    return dict(load_calibration(path, list(cameras)).extrinsics)


class CameraExtrinsics:
    """Parameters, then calibration file, then /tf_static (module docstring)."""

    def __init__(self, cameras: Sequence[str], calibration_file: str = "") -> None:
        self.cameras = tuple(cameras)
        self._lock = threading.Lock()
        self._params: dict[str, Transform] = {}
        self._file = load_calibration_file(calibration_file, cameras) if calibration_file else {}
        self._file_name = calibration_file
        self._tree = TransformTree()

    def set_parameters(self, values: Mapping[str, Any]) -> None:
        """Take the ``extrinsics.<camera>.*`` values (already validated)."""
        found = {}
        for cam in self.cameras:
            spec = extrinsics_spec(values, cam)
            if spec is not None:
                found[cam] = transform_from_spec(spec)
        with self._lock:
            self._params = found

    def add_tf_message(self, msg: Any) -> int:
        """Add a tf2_msgs/TFMessage's transforms; returns how many."""
        with self._lock:
            return self._tree.add_message(msg)

    def lookup(self, camera: str, camera_frame: str, lidar_frame: str) -> Transform:
        with self._lock:
            if camera in self._params:
                return self._params[camera]
            if camera in self._file:
                return self._file[camera]
            try:
                return self._tree.lookup(camera_frame, lidar_frame)
            except CalibrationError as exc:
                where = f", no entry in {self._file_name}" if self._file_name else ""
                raise CalibrationError(
                    f"no extrinsics for camera {camera!r}: no extrinsics.{camera}.* "
                    f"parameters{where}, and /tf_static has no {camera_frame} <- "
                    f"{lidar_frame} ({exc})"
                ) from None
