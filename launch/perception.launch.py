"""Start the ws3d_perception node (open-vocabulary LiDAR-camera panoptic segmentation).

    ros2 launch ws3d_ros perception.launch.py
    ros2 launch ws3d_ros perception.launch.py params_file:=/path/perception.yaml \
        vocabulary:=/path/indoor.yaml points:=/lidar/points image:=/camera/image_raw \
        camera_info:=/camera/camera_info backend:=tensorrt use_sim_time:=true

Arguments: ``params_file`` (default: the package's config/perception.yaml),
``vocabulary`` (a parameter file with classes, layered over params_file; default
config/vocabularies/driving.yaml), ``namespace``, ``use_sim_time``, ``backend``
(overrides the parameter file), and the input topic remaps ``points``, ``image``,
``camera_info`` (the single-camera topics; with several ``cameras``, remap
``<camera>/image`` and ``<camera>/camera_info`` in your own launch file).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "ws3d_ros"
NODE_NAME = "ws3d_perception"


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([share, "config", "perception.yaml"]),
                description="node parameter file (every parameter documented inside)",
            ),
            DeclareLaunchArgument(
                "vocabulary",
                default_value=PathJoinSubstitution(
                    [share, "config", "vocabularies", "driving.yaml"]
                ),
                description="parameter file with classes / thing_classes / prompt_templates",
            ),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument(
                "use_sim_time", default_value="false", description="use /clock (bag playback)"
            ),
            DeclareLaunchArgument(
                "backend",
                default_value="onnxruntime",
                description="onnxruntime | tensorrt | torch",
            ),
            DeclareLaunchArgument(
                "model_path",
                default_value="",
                description="ws3d export directory (or checkpoint for backend torch); "
                "empty: zero-shot with CLIP only",
            ),
            DeclareLaunchArgument("points", default_value="points", description="LiDAR topic"),
            DeclareLaunchArgument("image", default_value="image", description="camera image"),
            DeclareLaunchArgument(
                "camera_info", default_value="camera_info", description="camera calibration"
            ),
            Node(
                package=PACKAGE,
                executable="perception_node",
                name=NODE_NAME,
                namespace=LaunchConfiguration("namespace"),
                parameters=[
                    LaunchConfiguration("params_file"),
                    LaunchConfiguration("vocabulary"),
                    {
                        "use_sim_time": ParameterValue(
                            LaunchConfiguration("use_sim_time"), value_type=bool
                        ),
                        "backend": LaunchConfiguration("backend"),
                        "model_path": LaunchConfiguration("model_path"),
                    },
                ],
                remappings=[
                    ("points", LaunchConfiguration("points")),
                    ("image", LaunchConfiguration("image")),
                    ("camera_info", LaunchConfiguration("camera_info")),
                ],
                output="screen",
                emulate_tty=True,
            ),
        ]
    )
