"""Play a rosbag2 with ws3d_ros's bag player (for machines without ``ros2 bag``).

    ros2 launch ws3d_ros play_bag.launch.py bag:=/tmp/street rate:=0.5 loop:=true

Arguments: ``bag`` (required), ``rate`` (default 1.0), ``loop`` and ``clock``
(true/false), ``namespace``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    bag = LaunchConfiguration("bag")
    rate = LaunchConfiguration("rate")
    loop = LaunchConfiguration("loop")
    clock = LaunchConfiguration("clock")
    return LaunchDescription(
        [
            DeclareLaunchArgument("bag", description="rosbag2 directory to play"),
            DeclareLaunchArgument("rate", default_value="1.0", description="speed factor"),
            DeclareLaunchArgument("loop", default_value="false", description="replay forever"),
            DeclareLaunchArgument("clock", default_value="false", description="publish /clock"),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            Node(
                package="ws3d_ros",
                executable="bag_player",
                namespace=LaunchConfiguration("namespace"),
                arguments=[bag, "--rate", rate, "--loop", loop, "--clock", clock],
                output="screen",
            ),
        ]
    )
