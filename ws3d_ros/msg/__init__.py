"""Layer 1 message codecs: ROS messages (rclpy or rosbags flavour) <-> numpy.

- :mod:`ws3d_ros.msg.kit`: message flavours, the project typestore, stamps.
- :mod:`ws3d_ros.msg.pointcloud2`: PointCloud2 <-> structured arrays (zero-copy decode).
- :mod:`ws3d_ros.msg.image`: Image / CompressedImage <-> numpy (imported on
  first use of one of its names here, so ``import ws3d_ros.msg`` stays free of OpenCV).

Nothing here imports rclpy or torch at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

from ws3d_ros.msg.kit import (
    MessageKit,
    byte_view,
    flavour_of,
    kit_for,
    msg_type_name,
    ns_to_sec_nsec,
    rclpy_kit,
    rosbags_kit,
    stamp_to_ns,
    typestore,
)
from ws3d_ros.msg.pointcloud2 import (
    POINTFIELD_DTYPES,
    array_to_cloud,
    cloud_dtype,
    cloud_to_array,
    cloud_xyz,
    structured,
    xyz_to_cloud,
)

_IMAGE_NAMES = (
    "ENCODINGS",
    "array_to_compressed",
    "array_to_image",
    "compressed_to_array",
    "image_to_array",
    "image_to_rgb8",
    "to_rgb8",
)

__all__ = [
    "ENCODINGS",
    "POINTFIELD_DTYPES",
    "MessageKit",
    "array_to_cloud",
    "array_to_compressed",
    "array_to_image",
    "byte_view",
    "cloud_dtype",
    "cloud_to_array",
    "cloud_xyz",
    "compressed_to_array",
    "flavour_of",
    "image_to_array",
    "image_to_rgb8",
    "kit_for",
    "msg_type_name",
    "ns_to_sec_nsec",
    "rclpy_kit",
    "rosbags_kit",
    "stamp_to_ns",
    "structured",
    "to_rgb8",
    "typestore",
    "xyz_to_cloud",
]


def __getattr__(name: str) -> Any:
    if name in _IMAGE_NAMES:
        return getattr(importlib.import_module("ws3d_ros.msg.image"), name)
    raise AttributeError(f"module 'ws3d_ros.msg' has no attribute {name!r}")
