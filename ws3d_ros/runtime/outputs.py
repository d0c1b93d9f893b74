"""PanopticResult -> the ROS messages of the output contract (node and ``ws3d infer`` alike).

Contract (docs/DESIGN.md, "ROS interface contract"):
- :func:`panoptic_cloud`: PointCloud2 in the input's frame and stamp, same point count
  and order as the input (organised clouds keep height/width), fields ``x, y, z``
  float32, ``label`` uint16 (65535 = unknown), ``instance`` uint32 (0 = none/stuff),
  ``score`` float32. Non-finite input coordinates are passed through unchanged.
- :func:`label_map_message`: std_msgs/String holding the vocabulary's label map JSON.
- :func:`overlay_image`: the camera image with the points it sees drawn in class colours.
- :func:`camera_overlays`: one such picture per camera of a frame that has an image (the
  one drawing of ``ws3d infer --overlay`` and the node's ``panoptic/overlay``);
  :func:`tile_images` puts several side by side in rows (the node's every-camera overlay).
Messages are built with a :class:`~ws3d_ros.msg.kit.MessageKit`, so the same code makes
rclpy messages (node) and rosbags messages (bags).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ws3d_ros.msg.kit import MessageKit, rosbags_kit
from ws3d_ros.msg.pointcloud2 import array_to_cloud
from ws3d_ros.runtime.result import PanopticResult

PANOPTIC_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u2"), ("instance", "<u4"),
     ("score", "<f4")]
)  # fmt: skip


def panoptic_array(points: np.ndarray, result: PanopticResult) -> np.ndarray:
    """Structured ``(N,)`` (or the input's 2-D shape) array of the output fields."""
    shape = points.shape
    flat = points.reshape(-1)
    if len(flat) != len(result):
        raise ValueError(f"result has {len(result)} points, the cloud {len(flat)}")
    out = np.empty(len(flat), dtype=PANOPTIC_DTYPE)
    for name in ("x", "y", "z"):
        out[name] = flat[name]
    out["label"] = result.label
    out["instance"] = result.instance
    out["score"] = result.score
    return out.reshape(shape)


def panoptic_cloud(
    points: np.ndarray,
    result: PanopticResult,
    *,
    frame_id: str,
    stamp_ns: int,
    kit: MessageKit | None = None,
) -> Any:
    return array_to_cloud(
        panoptic_array(points, result), frame_id=frame_id, stamp_ns=stamp_ns, kit=kit
    )


def label_map_message(label_map_json: str, kit: MessageKit | None = None) -> Any:
    kit = kit or rosbags_kit()
    return kit.make("std_msgs/msg/String", data=label_map_json)


def overlay_image(
    image: np.ndarray,
    uv: np.ndarray,
    labels: np.ndarray,
    color_table: np.ndarray,
    *,
    radius: int = 2,
) -> np.ndarray:
    """RGB image with points at ``uv`` drawn as squares in their class colour."""
    out = image.copy()
    h, w = out.shape[:2]
    if len(uv) == 0:
        return out
    colors = color_table[np.minimum(labels, len(color_table) - 1)]
    u = np.floor(uv[:, 0]).astype(np.int64)
    v = np.floor(uv[:, 1]).astype(np.int64)
    order = np.argsort(-np.arange(len(u)))  # deterministic draw order
    for du in range(-radius + 1, radius):
        for dv in range(-radius + 1, radius):
            uu, vv = u[order] + du, v[order] + dv
            ok = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
            out[vv[ok], uu[ok]] = colors[order][ok]
    return out


def camera_overlays(
    frame: Any, result: PanopticResult, color_table: np.ndarray
) -> dict[str, np.ndarray]:
    """``{camera name: RGB overlay}`` for every view of ``frame`` with an image, in view
    order (projection by :func:`~ws3d_ros.geometry.projection.project_points`)."""
    from ws3d_ros.geometry.projection import project_points

    out: dict[str, np.ndarray] = {}
    xyz = frame.xyz
    for view in frame.views:
        if view.image is None or not view.image.size:
            continue
        proj = project_points(xyz, view.camera, view.T_cam_from_lidar)
        out[view.name] = overlay_image(
            view.image, proj.uv[proj.mask], result.label[proj.mask], color_table
        )
    return out


def tile_images(images: list[np.ndarray], columns: int = 3) -> np.ndarray:
    """RGB images in rows of ``columns`` (each cell the largest image's size, black
    padding), one image -> itself."""
    if not images:
        raise ValueError("tile_images needs at least one image")
    if len(images) == 1:
        return images[0]
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    cols = min(columns, len(images))
    rows = -(-len(images) // cols)
    out = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        out[r * h : r * h + image.shape[0], c * w : c * w + image.shape[1]] = image
    return out
