"""Node ``click_labeler``: one-click annotation from rviz / Foxglove into a clicks sidecar.

One Thing One Click (Liu et al., CVPR 2021) needs one labelled point per object. While a
bag plays (``ws3d play`` or ``ros2 bag play``), a person picks a class and clicks one
point on each object with rviz's "Publish Point" tool (geometry_msgs/PointStamped on
``/clicked_point``; Foxglove's publish panel sends the same type).

Contract:
- Subscribes ``points`` (sensor_msgs/PointCloud2, remappable, sensor-data or reliable
  QoS by ``points_qos``) and ``clicked_point`` (default ``/clicked_point``). The last
  ``history`` sweeps are kept (xyz only).
- A click goes to the sweep whose header stamp equals the click's stamp when one is
  buffered, else to the latest sweep. It is snapped to that sweep's nearest finite
  point (Euclidean, in the LiDAR frame); a click farther than ``max_snap_distance``
  from every point is rejected.
- Frames: a click whose ``frame_id`` is empty or the sweep's frame is used as is. A click
  in the frame ``static_transform_frame`` is mapped by ``static_transform``
  (``T_lidar_from_click``: 16 numbers, a row-major 4x4, or 6 numbers
  ``x y z roll pitch yaw``). Any other frame is rejected with a logged reason (no TF
  lookups: clicks must not silently land on the wrong points).
- The accepted click is tagged with the ``current_class`` parameter (changeable while the
  node runs; must be one of ``classes`` when that list is not empty) and appended to the
  ``output`` file with :func:`ws3d_ros.data.clicks.append_clicks` (atomic), keyed by
  ``bag`` (a name) + sweep stamp + point index.
- Every click, accepted or not, is reported on ``clicks/feedback`` (std_msgs/String,
  JSON: ``accepted``, ``reason``, and the stored click) and logged.
- Bad parameter values are rejected with a reason; the old value stays.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import String

from ws3d_ros.data.clicks import Click, append_clicks
from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.msg.kit import stamp_to_ns
from ws3d_ros.msg.pointcloud2 import cloud_to_array, cloud_xyz
from ws3d_ros.ros.executable import parse_args, spin_node

NODE_NAME = "click_labeler"

PARAMS: dict[str, tuple[Any, str]] = {
    "output": ("clicks.jsonl", "path of the clicks sidecar file (JSON lines)"),
    "bag": ("live", "bag name written into each click's key (the played bag's name)"),
    "current_class": ("", "class given to the next clicks (change it while clicking)"),
    "classes": ([""], "allowed class names (empty: any)"),
    "max_snap_distance": (0.5, "m; clicks farther than this from every point are rejected"),
    "static_transform_frame": ("", "frame_id of clicks that static_transform maps"),
    "static_transform": ([0.0], "T_lidar_from_click: 16 (4x4 row-major) or 6 (xyz rpy)"),
    "history": (10, "sweeps kept for matching a click's stamp"),
    "points_qos": ("sensor_data", "QoS of the points subscription: sensor_data | reliable"),
    "clicked_point_topic": ("/clicked_point", "topic of rviz's Publish Point tool"),
}


def parse_transform(values: Sequence[float]) -> Transform | None:
    """``[]``/``[0]`` -> None; 16 -> 4x4 row-major; 6 -> xyz + rpy. Raises Ws3dError."""
    vals = [float(v) for v in values]
    if len(vals) <= 1:
        return None
    if len(vals) == 16:
        m = np.asarray(vals).reshape(4, 4)
        if not np.allclose(m[3], [0, 0, 0, 1]):
            raise Ws3dError(f"static_transform's last row must be 0 0 0 1, found {m[3].tolist()}")
        return Transform.from_matrix(m)
    if len(vals) == 6:
        return Transform.from_xyz_rpy(vals[:3], vals[3:])
    raise Ws3dError(f"static_transform needs 16 or 6 numbers, found {len(vals)}")


class ClickLabeler(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, text) in PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        self._lock = threading.Lock()
        self._sweeps: OrderedDict[int, tuple[str, np.ndarray]] = OrderedDict()
        self.sweeps_received = 0
        self.accepted: list[Click] = []
        self.rejected: list[str] = []
        self._check_all(dict(self._values()))
        self.add_on_set_parameters_callback(self._on_set)
        qos_name = self.get_parameter("points_qos").value
        qos = (
            qos_profile_sensor_data
            if qos_name == "sensor_data"
            else QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
            )
        )
        self.create_subscription(PointCloud2, "points", self._on_points, qos)
        self.create_subscription(
            PointStamped,
            self.get_parameter("clicked_point_topic").value,
            self._on_click,
            QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
            ),
        )
        self.feedback = self.create_publisher(String, "clicks/feedback", 10)
        self.get_logger().info(
            f"clicks -> {self.get_parameter('output').value} (bag "
            f"{self.get_parameter('bag').value!r}); class "
            f"{self.get_parameter('current_class').value!r}"
        )

    # ------------------------------------------------------------------ parameters
    def _values(self) -> dict[str, Any]:
        return {name: self.get_parameter(name).value for name in PARAMS}

    @staticmethod
    def _classes(values: dict[str, Any]) -> list[str]:
        return [c for c in (values.get("classes") or []) if c]

    def _check_all(self, values: dict[str, Any]) -> None:
        classes = self._classes(values)
        cur = values["current_class"]
        if cur and classes and cur not in classes:
            raise Ws3dError(f"current_class {cur!r} is not one of classes {classes}")
        if not float(values["max_snap_distance"]) > 0:
            raise Ws3dError("max_snap_distance must be > 0")
        if int(values["history"]) < 1:
            raise Ws3dError("history must be >= 1")
        if values["points_qos"] not in ("sensor_data", "reliable"):
            raise Ws3dError("points_qos must be sensor_data or reliable")
        if not str(values["output"]):
            raise Ws3dError("output must be a file path")
        parse_transform(values["static_transform"])

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        values = self._values()
        for p in params:
            if p.name not in values:
                continue  # rclpy's own (use_sim_time, ...): rclpy checks and applies it
            if p.name in ("points_qos", "clicked_point_topic"):
                return SetParametersResult(successful=False, reason=f"{p.name} is read-only")
            values[p.name] = p.value
        try:
            self._check_all(values)
        except (Ws3dError, ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ callbacks
    def _on_points(self, msg: PointCloud2) -> None:
        try:
            xyz = cloud_xyz(cloud_to_array(msg)).astype(np.float64)
        except Ws3dError as exc:
            self.get_logger().warning(f"points message skipped: {exc}")
            return
        stamp = stamp_to_ns(msg.header.stamp)
        keep = int(self.get_parameter("history").value)
        with self._lock:
            self._sweeps[stamp] = (msg.header.frame_id, xyz)
            self._sweeps.move_to_end(stamp)
            while len(self._sweeps) > keep:
                self._sweeps.popitem(last=False)
            self.sweeps_received += 1

    def _report(self, accepted: bool, reason: str, click: Click | None = None) -> None:
        body: dict[str, Any] = {"accepted": accepted, "reason": reason}
        if click is not None:
            body["click"] = click.to_json()
        if accepted:
            self.get_logger().info(reason)
        else:
            self.rejected.append(reason)
            self.get_logger().warning(f"click rejected: {reason}")
        self.feedback.publish(String(data=json.dumps(body)))

    def _on_click(self, msg: PointStamped) -> None:
        try:
            click, reason = self.snap(
                msg.header.frame_id,
                stamp_to_ns(msg.header.stamp),
                np.array([msg.point.x, msg.point.y, msg.point.z], np.float64),
            )
        except Ws3dError as exc:
            self._report(False, str(exc))
            return
        if click is None:
            self._report(False, reason)
            return
        try:
            total = append_clicks(self.get_parameter("output").value, [click])
        except (OSError, Ws3dError) as exc:
            self._report(False, f"cannot write {self.get_parameter('output').value}: {exc}")
            return
        self.accepted.append(click)
        self._report(True, f"{reason} ({total} clicks in the file)", click)

    def snap(self, frame_id: str, stamp_ns: int, point: np.ndarray) -> tuple[Click | None, str]:
        """The click for a point (or None and why not); see the module docstring."""
        values = self._values()
        cls = str(values["current_class"])
        if not cls:
            return None, "current_class is empty: set it (ros2 param set ... current_class car)"
        with self._lock:
            if not self._sweeps:
                return None, "no LiDAR sweep received yet"
            if stamp_ns in self._sweeps:
                sweep_stamp = stamp_ns
            else:
                sweep_stamp = next(reversed(self._sweeps))
            lidar_frame, xyz = self._sweeps[sweep_stamp]
        if frame_id and frame_id != lidar_frame:
            tf_frame = str(values["static_transform_frame"])
            transform = parse_transform(values["static_transform"])
            if frame_id != tf_frame or transform is None:
                return None, (
                    f"click in frame {frame_id!r} but the sweep is in {lidar_frame!r}; set "
                    f"static_transform_frame:={frame_id} and static_transform "
                    f"(T_{lidar_frame}_from_{frame_id})"
                )
            point = transform.apply(point[None, :].astype(np.float64))[0]
        finite = np.all(np.isfinite(xyz), axis=1)
        if not finite.any():
            return None, f"sweep {sweep_stamp} has no finite point"
        d2 = np.where(finite, np.sum((xyz - point) ** 2, axis=1), np.inf)
        index = int(np.argmin(d2))
        dist = float(np.sqrt(d2[index]))
        limit = float(values["max_snap_distance"])
        if dist > limit:
            return None, (
                f"nearest point of sweep {sweep_stamp} is {dist:.2f} m from the click "
                f"(max_snap_distance {limit} m)"
            )
        click = Click(
            bag=str(values["bag"]),
            stamp_ns=sweep_stamp,
            index=index,
            cls=cls,
            xyz=(float(xyz[index, 0]), float(xyz[index, 1]), float(xyz[index, 2])),
            source="rviz",
        )
        return click, f"{cls!r} -> point {index} of sweep {sweep_stamp} ({dist:.3f} m away)"


def build_parser() -> argparse.ArgumentParser:
    """Options of the ``click_labeler`` executable (parameters go after --ros-args)."""
    return argparse.ArgumentParser(
        prog="click_labeler",
        description="One-click annotation from rviz / Foxglove (/clicked_point) into a "
        "clicks sidecar file for One Thing One Click training.",
        epilog="""\
examples:
  ros2 run ws3d_ros click_labeler --ros-args -p output:=clicks.jsonl -p bag:=street_01 \\
      -p current_class:=car -r points:=/lidar/points
  ros2 param set /click_labeler current_class pedestrian   (while it runs)

parameters: """
        + ", ".join(PARAMS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of ``click_labeler`` (``ros2 run ws3d_ros click_labeler``)."""
    _, full = parse_args(build_parser(), args)

    def make() -> ClickLabeler:
        node = ClickLabeler()
        out = Path(node.get_parameter("output").value)
        node.get_logger().info(f"writing clicks to {out.resolve()}")
        return node

    return spin_node("click_labeler", make, full, threads=1)


if __name__ == "__main__":
    sys.exit(main())
