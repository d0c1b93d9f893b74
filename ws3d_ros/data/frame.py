"""The unit of work of the whole project: one LiDAR sweep with its camera views.

Contract: a :class:`Frame` holds the sweep as a structured array in input
point order (organised clouds flattened row-major), every configured camera
as a :class:`CameraView` (calibration always present; ``image`` is ``None``
when that camera's image did not arrive for this sweep), and optional
ground-truth ``labels`` (uint16 class ids, 65535 = unknown) and ``instances``
(uint32, 0 = none). The node, the bag reader, the simulator, training and
evaluation all produce or consume this one type; it holds no ROS messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.labels import UNKNOWN_LABEL as UNKNOWN_LABEL  # re-exported: Frame labels


@dataclass
class CameraView:
    """One camera's calibration and (maybe) its image for one sweep."""

    name: str
    camera: CameraModel
    T_cam_from_lidar: Transform
    image: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    stamp_ns: int | None = None

    @property
    def has_image(self) -> bool:
        return self.image is not None


@dataclass
class Frame:
    """A LiDAR sweep, its camera views and optional ground truth."""

    stamp_ns: int
    frame_id: str
    points: np.ndarray  # structured array (N,), fields at least x, y, z
    views: list[CameraView] = field(default_factory=list)
    labels: np.ndarray | None = None  # (N,) uint16
    instances: np.ndarray | None = None  # (N,) uint32
    index: int = 0
    source: str = ""
    #: the sweep's intensity scale (declared or detected; ``None``: let the consumer
    #: detect it) and where it came from; see :mod:`ws3d_ros.data.intensity`
    intensity_range: tuple[float, float] | None = None
    intensity_origin: str = ""

    def __post_init__(self) -> None:
        if self.points.ndim != 1:
            self.points = self.points.reshape(-1)
        n = len(self.points)
        for name in ("labels", "instances"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} entries for {n} points")

    def __len__(self) -> int:
        return len(self.points)

    @property
    def xyz(self) -> np.ndarray:
        """(N, 3) float32 coordinates in the LiDAR frame."""
        from ws3d_ros.msg.pointcloud2 import cloud_xyz

        return cloud_xyz(self.points)

    @property
    def missing_cameras(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.views if v.image is None)

    def view(self, name: str) -> CameraView:
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(f"no camera {name!r}; cameras: {[v.name for v in self.views]}")
