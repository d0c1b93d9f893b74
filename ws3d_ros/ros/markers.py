"""Instance boxes and camera overlays of a :class:`PanopticResult` (the node's optional
outputs), built through a :class:`~ws3d_ros.msg.kit.MessageKit` (no rclpy import here).

Contract:
- :func:`instance_boxes`: one axis-aligned box (in the cloud's frame) per instance id > 0
  over its finite points: centre, size (at least ``min_size`` per axis), class id, point
  count; sorted by instance id.
- :func:`instance_markers`: ``visualization_msgs/MarkerArray`` with a DELETEALL first
  (so boxes of the previous sweep vanish), then per instance a CUBE (namespace
  ``boxes``, translucent class colour) and a TEXT_VIEW_FACING label ``"<class> #<id>"``
  above it (namespace ``labels``), marker id = instance id, the input's frame and stamp.
- :func:`overlay_for`: every camera view with an image, its points drawn in class colours
  (:func:`ws3d_ros.runtime.outputs.camera_overlays`, the drawing ``ws3d infer --overlay``
  uses), tiled, as one rgb8 Image in the first camera's frame and stamp; ``None``
  without an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ws3d_ros.data.frame import Frame
from ws3d_ros.msg.kit import MessageKit
from ws3d_ros.runtime.outputs import camera_overlays
from ws3d_ros.runtime.result import PanopticResult

__all__ = ["InstanceBox", "instance_boxes", "instance_markers", "overlay_for"]

# visualization_msgs/Marker constants (identical in every ROS 2 distribution)
CUBE, TEXT_VIEW_FACING = 1, 9
ADD, DELETEALL = 0, 3


@dataclass(frozen=True)
class InstanceBox:
    instance: int
    label: int
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    points: int


def instance_boxes(
    xyz: np.ndarray, result: PanopticResult, *, min_size: float = 0.05
) -> list[InstanceBox]:
    """Axis-aligned boxes of the instances in ``result`` (see the module docstring)."""
    finite = np.isfinite(xyz).all(axis=1)
    inst = np.where(finite, result.instance, 0)
    ids = np.unique(inst[inst > 0])
    boxes = []
    for i in ids:
        sel = inst == i
        pts = xyz[sel]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        labels, counts = np.unique(result.label[sel], return_counts=True)
        boxes.append(
            InstanceBox(
                instance=int(i),
                label=int(labels[np.argmax(counts)]),
                center=tuple(float(v) for v in (lo + hi) / 2),
                size=tuple(float(max(v, min_size)) for v in hi - lo),
                points=int(sel.sum()),
            )
        )
    return boxes


def instance_markers(
    boxes: list[InstanceBox],
    names: dict[int, str],
    colors: np.ndarray,
    *,
    frame_id: str,
    stamp_ns: int,
    kit: MessageKit,
) -> Any:
    """MarkerArray for ``boxes`` (see the module docstring)."""
    header = kit.header(frame_id, stamp_ns)
    markers = [kit.make("visualization_msgs/msg/Marker", header=header, action=DELETEALL)]
    for box in boxes:
        r, g, b = (colors[min(box.label, len(colors) - 1)] / 255.0).tolist()
        name = names.get(box.label, "unknown")
        pose = kit.make(
            "geometry_msgs/msg/Pose",
            position=kit.make(
                "geometry_msgs/msg/Point", x=box.center[0], y=box.center[1], z=box.center[2]
            ),
            orientation=kit.make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0),
        )
        markers.append(
            kit.make(
                "visualization_msgs/msg/Marker",
                header=header,
                ns="boxes",
                id=box.instance,
                type=CUBE,
                action=ADD,
                pose=pose,
                scale=kit.make(
                    "geometry_msgs/msg/Vector3", x=box.size[0], y=box.size[1], z=box.size[2]
                ),
                color=kit.make("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=0.4),
            )
        )
        text_pose = kit.make(
            "geometry_msgs/msg/Pose",
            position=kit.make(
                "geometry_msgs/msg/Point",
                x=box.center[0],
                y=box.center[1],
                z=box.center[2] + box.size[2] / 2 + 0.3,
            ),
            orientation=kit.make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0),
        )
        markers.append(
            kit.make(
                "visualization_msgs/msg/Marker",
                header=header,
                ns="labels",
                id=box.instance,
                type=TEXT_VIEW_FACING,
                action=ADD,
                pose=text_pose,
                scale=kit.make("geometry_msgs/msg/Vector3", x=0.0, y=0.0, z=0.5),
                color=kit.make("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=1.0),
                text=f"{name} #{box.instance}",
            )
        )
    return kit.make("visualization_msgs/msg/MarkerArray", markers=markers)


def overlay_for(
    frame: Frame, result: PanopticResult, colors: np.ndarray, *, kit: MessageKit
) -> Any | None:
    """rgb8 Image of every camera view with an image (tiled, rows of three, in view order),
    points in class colours, or None when no camera has an image. Stamped with the
    first such camera's stamp, in its frame (a single camera: exactly its image)."""
    from ws3d_ros.msg.image import array_to_image
    from ws3d_ros.runtime.outputs import tile_images

    views = [v for v in frame.views if v.image is not None and v.image.size]
    if not views:
        return None
    shown = Frame(frame.stamp_ns, frame.frame_id, frame.points, views)
    image = tile_images(list(camera_overlays(shown, result, colors).values()))
    first = views[0]
    stamp = first.stamp_ns if first.stamp_ns is not None else frame.stamp_ns
    return array_to_image(
        image, "rgb8", frame_id=first.camera.frame_id or first.name, stamp_ns=stamp, kit=kit
    )
