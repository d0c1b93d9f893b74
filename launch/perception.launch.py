"""Start the ws3d_perception node (open-vocabulary LiDAR-camera panoptic segmentation).

    ros2 launch ws3d_ros perception.launch.py model_path:=/path/model
    ros2 launch ws3d_ros perception.launch.py namespace:=robot1 params_file:=my.yaml \
        vocabulary:=indoor points:=/lidar/points image:=/camera/image_raw \
        camera_info:=/camera/camera_info backend:=tensorrt use_sim_time:=true
    ros2 launch ws3d_ros perception.launch.py model_path:=/path/model managed:=true

Parameter precedence, lowest first: the node's defaults (config/perception.yaml) <
``params_file`` < ``vocabulary`` (a shipped name such as ``driving`` / ``indoor``, or a
file) < ``model_path``, ``backend``, ``mode``, ``device``, ``image_transport``,
``use_sim_time``. Each of these arguments applies only when given, so a value in your
file is never replaced by a launch default. ``managed:=true`` starts the lifecycle node
(``autostart:=true`` configures and activates it). With several ``cameras``, remap
``<camera>/image`` and ``<camera>/camera_info`` in your own launch file. The meaning of
each argument lives in ``ws3d_ros.ros.launch_args`` (tested without ``launch``).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from ws3d_ros.ros.launch_args import ARGUMENTS, node_setup

PACKAGE = "ws3d_ros"
NODE_NAME = "ws3d_perception"


def _node(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    setup = node_setup(values, Path(get_package_share_directory(PACKAGE)))
    parameters = [
        {
            k: ParameterValue(v, value_type=type(v)) if isinstance(v, str) else v
            for k, v in p.items()
        }
        if isinstance(p, dict)
        else p
        for p in setup.parameters
    ]
    return [
        Node(
            package=PACKAGE,
            executable="perception_node",
            name=NODE_NAME,
            namespace=setup.namespace,
            parameters=parameters,
            arguments=setup.arguments,
            remappings=setup.remappings,
            output="screen",
            emulate_tty=True,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()
            ),
            OpaqueFunction(function=_node),
        ]
    )
