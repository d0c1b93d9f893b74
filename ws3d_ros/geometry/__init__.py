"""Layer 1 geometry: camera models, extrinsics, projection, voxelisation (no rclpy, no torch).

- :mod:`ws3d_ros.geometry.camera`: :class:`CameraModel` (CameraInfo intrinsics and
  distortion; project, unproject, pixel rays).
- :mod:`ws3d_ros.geometry.extrinsics`: :class:`Transform` (``T_a_from_b``) and calibration
  files (extrinsics YAML, KITTI ``calib.txt``, nuScenes sensor records).
- :mod:`ws3d_ros.geometry.projection`: :func:`project_points`, the one LiDAR -> pixel
  projection (wrap-around guard, optional z-buffer).
- :mod:`ws3d_ros.geometry.voxel`: :func:`voxelize` and :func:`voxel_reduce`.
- :mod:`ws3d_ros.geometry.tf_tree`: a static transform tree.
- :mod:`ws3d_ros.geometry.ground`: :func:`height_above_ground` (lowest-point ground
  estimate).
"""

from __future__ import annotations

from ws3d_ros.geometry.camera import DISTORTION_MODELS, CameraModel
from ws3d_ros.geometry.extrinsics import (
    ExtrinsicsEntry,
    KittiCalib,
    Transform,
    from_nuscenes_sensor,
    load_extrinsics_entries,
    load_extrinsics_yaml,
    load_kitti_calib,
    transform_from_spec,
    write_kitti_calib,
)
from ws3d_ros.geometry.projection import (
    Projection,
    pixel_indices,
    project_points,
    project_to_cameras,
    zbuffer_visibility,
)
from ws3d_ros.geometry.tf_tree import TransformTree
from ws3d_ros.geometry.voxel import Voxelization, voxel_reduce, voxelize

__all__ = [
    "DISTORTION_MODELS",
    "CameraModel",
    "ExtrinsicsEntry",
    "KittiCalib",
    "Projection",
    "Transform",
    "TransformTree",
    "Voxelization",
    "from_nuscenes_sensor",
    "load_extrinsics_entries",
    "load_extrinsics_yaml",
    "load_kitti_calib",
    "pixel_indices",
    "project_points",
    "project_to_cameras",
    "transform_from_spec",
    "voxel_reduce",
    "voxelize",
    "write_kitti_calib",
    "zbuffer_visibility",
]
