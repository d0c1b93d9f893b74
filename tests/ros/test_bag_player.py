"""Tests of ws3d_ros.ros.bag_player (``ws3d play``): messages arrive over DDS, in order.

Runs on loopback only (the Makefile and CI set ROS_LOCALHOST_ONLY /
ROS_AUTOMATIC_DISCOVERY_RANGE); skipped where rclpy is not importable.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from ws3d_ros.data.bag import BagWriter  # noqa: E402
from ws3d_ros.errors import Ws3dError  # noqa: E402
from ws3d_ros.msg.kit import rosbags_kit  # noqa: E402
from ws3d_ros.msg.pointcloud2 import cloud_to_array, xyz_to_cloud  # noqa: E402
from ws3d_ros.ros.bag_player import BagPlayer, parse_bool, parse_remaps, wall_delay  # noqa: E402

pytestmark = pytest.mark.ros


def write_bag(path: Path) -> Path:
    kit = rosbags_kit()
    with BagWriter(path) as bag:
        # A type the PyPI ROS wheels lack: the player must skip it, not fail.
        bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        bag.write("/tf_static", 0, kit.make("tf2_msgs/msg/TFMessage", transforms=[]))
        for k in range(5):
            stamp = k * 20_000_000
            xyz = np.full((10 + k, 3), k, np.float32)
            bag.write("/lidar/points", stamp, xyz_to_cloud(xyz, frame_id="lidar", stamp_ns=stamp))
    return path


def test_helpers() -> None:
    assert wall_delay(3_000_000_000, 1_000_000_000, 2.0) == 1.0
    assert wall_delay(0, 1, 1.0) == 0.0
    assert parse_bool("True") and not parse_bool("off")
    assert parse_remaps(["/a:=/b"]) == {"/a": "/b"}
    with pytest.raises(Ws3dError, match="FROM:=TO"):
        parse_remaps(["/a"])


def test_plays_clouds_over_dds_and_skips_unknown_types(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag")
    from sensor_msgs.msg import PointCloud2

    rclpy.init()
    try:
        player = BagPlayer(bag, rate=5.0, remap={"/lidar/points": "/points"})
        assert player.topics == ["/lidar/points"] and "/tf_static" in player.skipped
        with pytest.raises(Ws3dError, match="tf2_msgs"):
            BagPlayer(bag, topics=["/tf_static"])
        with pytest.raises(Ws3dError, match="not in"):
            BagPlayer(bag, topics=["/nope"])
        received: list[int] = []
        listener = rclpy.create_node("ws3d_test_listener")
        listener.create_subscription(
            PointCloud2, "/points", lambda m: received.append(len(cloud_to_array(m))), 10
        )
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(listener)
        deadline = time.monotonic() + 10.0
        while player._topic_pubs["/lidar/points"].get_subscription_count() == 0:
            assert time.monotonic() < deadline, "listener never discovered"
            executor.spin_once(timeout_sec=0.05)
        assert player.play() == 5
        while len(received) < 5 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert received == [10, 11, 12, 13, 14]
        executor.shutdown()
        listener.destroy_node()
        player.destroy_node()
    finally:
        rclpy.shutdown()
