"""The click_labeler node over real DDS: clicks published as geometry_msgs/PointStamped
while simulated sweeps are published land in the sidecar with the right point index,
sweep stamp and class; bad frames and far clicks are rejected with a reason."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import PointStamped  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_harness import PERIOD_NS, SimMessages, wait_for  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from ws3d_ros.data.clicks import read_clicks  # noqa: E402
from ws3d_ros.msg.pointcloud2 import cloud_xyz  # noqa: E402
from ws3d_ros.ros.click_labeler import ClickLabeler, parse_transform  # noqa: E402

pytestmark = pytest.mark.ros


def isolated_points(xyz: np.ndarray, k: int, gap: float = 0.2) -> list[int]:
    """``k`` point indices whose nearest other point is farther than ``gap``."""
    out = []
    for i in np.random.default_rng(0).permutation(len(xyz)):
        d = np.linalg.norm(xyz - xyz[i], axis=1)
        d[i] = np.inf
        if np.all(np.isfinite(xyz[i])) and d.min() > gap:
            out.append(int(i))
        if len(out) == k:
            return out
    raise AssertionError("not enough isolated points")


def click_msg(frame: str, stamp_ns: int, p: np.ndarray) -> PointStamped:
    msg = PointStamped()
    msg.header.frame_id = frame
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.point.x, msg.point.y, msg.point.z = (float(v) for v in p)
    return msg


def test_parse_transform() -> None:
    assert parse_transform([0.0]) is None
    t = parse_transform([1, 2, 3, 0, 0, 0])
    assert t is not None and np.allclose(t.apply(np.zeros((1, 3)))[0], [1, 2, 3])
    with pytest.raises(Exception, match="16 or 6"):
        parse_transform([1, 2, 3])


def test_clicks_over_dds_land_in_the_sidecar(tmp_path: Path, sim: SimMessages) -> None:
    out = tmp_path / "clicks.jsonl"
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = ClickLabeler(
            context=context,
            parameter_overrides=[
                Parameter("output", value=str(out)),
                Parameter("bag", value="simbag"),
                Parameter("current_class", value="car"),
                Parameter("classes", value=["road", "car", "pedestrian"]),
                Parameter("points_qos", value="reliable"),
                Parameter("static_transform_frame", value="map"),
                Parameter("static_transform", value=[10.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            ],
        )
        rig = Node("ws3d_click_rig", context=context)
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE
        )
        pub_points = rig.create_publisher(PointCloud2, "points", reliable)
        pub_click = rig.create_publisher(PointStamped, "/clicked_point", reliable)
        feedback: list[dict] = []
        rig.create_subscription(
            String, "clicks/feedback", lambda m: feedback.append(json.loads(m.data)), 10
        )
        executor = MultiThreadedExecutor(num_threads=2, context=context)
        executor.add_node(node)
        executor.add_node(rig)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        try:
            wait_for(
                lambda: (
                    pub_points.get_subscription_count() > 0
                    and pub_click.get_subscription_count() > 0
                ),
                10.0,
                "the labeler's subscriptions",
            )
            rng = np.random.default_rng(1)
            expected: list[tuple[int, int, str]] = []
            stamps = [1_000_000_000 + k * PERIOD_NS for k in range(3)]
            for k, stamp in enumerate(stamps):
                # Sweeps keep coming while the person clicks (the bag plays).
                before = node.sweeps_received
                pub_points.publish(sim.cloud(k, stamp))
                wait_for(lambda b=before: node.sweeps_received > b, 10.0, "a sweep")
                xyz = cloud_xyz(sim.points[k % len(sim.points)]).astype(np.float64)
                picks = isolated_points(xyz, 2)
                if k == 1:
                    res = _set(rig, node, [Parameter("current_class", value="pedestrian")])
                    assert res[0].successful
                cls = node.get_parameter("current_class").value
                # Click 1: in the LiDAR frame, a few cm off the point, sweep's own stamp.
                p0 = xyz[picks[0]] + rng.normal(0, 0.01, 3)
                pub_click.publish(click_msg(sim.lidar_frame, stamp, p0))
                expected.append((stamp, picks[0], cls))
                # Click 2: in "map" (map = lidar + 10 m in x), stamp 0 -> latest sweep.
                p1 = xyz[picks[1]] - np.array([10.0, 0.0, 0.0])
                pub_click.publish(click_msg("map", 0, p1))
                expected.append((stamp, picks[1], cls))
                wait_for(_at_least(node.accepted, len(expected)), 10.0, "clicks stored")
            # Rejected: an unknown frame, and a click far from every point.
            pub_click.publish(click_msg("odom", 0, np.zeros(3)))
            pub_click.publish(click_msg(sim.lidar_frame, 0, np.array([500.0, 0.0, 0.0])))
            wait_for(lambda: len(node.rejected) >= 2, 10.0, "two rejections")
            assert "odom" in node.rejected[0] and "static_transform" in node.rejected[0]
            assert "max_snap_distance" in node.rejected[1]
            # A class outside `classes` is refused and the old value stays.
            res = _set(rig, node, [Parameter("current_class", value="dragon")])
            assert not res[0].successful and "not one of" in res[0].reason
            assert node.get_parameter("current_class").value == "pedestrian"
            wait_for(lambda: len(feedback) >= len(expected) + 2, 10.0, "feedback messages")
        finally:
            executor.shutdown(timeout_sec=5.0)
            thread.join(5.0)
            node.destroy_node()
            rig.destroy_node()
    finally:
        rclpy.shutdown(context=context)

    stored = read_clicks(out)
    assert [(c.stamp_ns, c.index, c.cls) for c in stored] == expected
    assert all(c.bag == "simbag" and c.source == "rviz" for c in stored)
    for c in stored:
        k = stamps.index(c.stamp_ns)
        pt = cloud_xyz(sim.points[k % len(sim.points)])[c.index]
        assert np.allclose(c.xyz, pt, atol=1e-5)
    assert sum(f["accepted"] for f in feedback) == len(expected)


def _at_least(items: list, n: int):
    return lambda: len(items) >= n


def _set(rig: Node, node: Node, params: list[Parameter]) -> list:
    from rclpy.parameter_client import AsyncParameterClient

    client = AsyncParameterClient(rig, node.get_fully_qualified_name())
    assert client.wait_for_services(timeout_sec=10.0)
    future = client.set_parameters(params)
    deadline = time.monotonic() + 10.0
    while not future.done():
        assert time.monotonic() < deadline, "parameter service did not answer"
        time.sleep(0.02)
    return list(future.result().results)
