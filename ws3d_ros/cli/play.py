"""``ws3d play BAG``: publish a bag over rclpy with its original timing."""

from __future__ import annotations

import argparse

from ws3d_ros.errors import Ws3dError

ROS_MISSING = (
    "rclpy is not importable: source your ROS 2 install (source /opt/ros/<distro>/setup.bash) "
    "or install the PyPI wheels with `pip install -r requirements/ros.txt`"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play",
        help="publish a bag over ROS 2 with original timing (no `ros2 bag` needed)",
        description="Publish a rosbag2's messages over rclpy with their original timing.",
        epilog="examples:\n  ws3d play /tmp/street --rate 0.5 --loop\n"
        "  ws3d play /tmp/street --clock --remap /lidar/points:=/points",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The argument list lives beside the player so `ros2 run ... bag_player` takes the same.
    try:
        from ws3d_ros.ros.bag_player import add_arguments
    except ImportError:
        parser.add_argument("bag")
        parser.set_defaults(func=_no_ros)
        return
    add_arguments(parser)
    parser.set_defaults(func=run)


def _no_ros(args: argparse.Namespace) -> int:
    raise Ws3dError(ROS_MISSING)


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.ros.bag_player import run_player

    return run_player(args)
