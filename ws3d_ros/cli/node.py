"""``ws3d node``: start the ``ws3d_perception`` node where ``ros2 run`` is not available.

The same node as ``ros2 run ws3d_ros perception_node``: the options below become ROS
arguments (``--ros-args --params-file F -p name:=value``), applied in order, so a
command-line option overrides the parameter files. Anything after ``--ros-args`` is
passed through unchanged (remaps: ``-r points:=/lidar/points``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ws3d_ros.errors import Ws3dError

EPILOG = """\
examples:
  ws3d node --params-file config/perception.yaml --model runs/export --backend onnxruntime
  ws3d node --params-file config/perception.yaml --params-file config/vocabularies/indoor.yaml
  ws3d node --model model.pt --backend torch --classes car pedestrian road \\
      --ros-args -r points:=/lidar/points -r image:=/camera/image_raw \\
      -r camera_info:=/camera/camera_info

then, while it runs:  ros2 param set /ws3d_perception classes "['car', 'stroller']"
"""

ROS_MISSING = (
    "rclpy is not importable: source your ROS 2 install (source /opt/ros/<distro>/setup.bash) "
    "or install the PyPI wheels with `pip install -r requirements/ros.txt`"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "node",
        help="start the perception node (ws3d_perception) without `ros2 run`",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--params-file",
        type=Path,
        action="append",
        default=[],
        help="ROS 2 parameter YAML (repeatable; later files win)",
    )
    parser.add_argument("--model", help="model directory (ws3d export) or checkpoint file")
    parser.add_argument("--backend", choices=("onnxruntime", "tensorrt", "torch"))
    parser.add_argument("--device", help="cpu, cuda or cuda:N")
    parser.add_argument("--mode", choices=("fusion", "lidar_only", "zero_shot"))
    parser.add_argument("--classes", nargs="+", help="class names (the vocabulary)")
    parser.add_argument("--thing-classes", nargs="+", help="classes that have instances")
    parser.add_argument("--namespace", help="node namespace")
    parser.add_argument(
        "--managed",
        action="store_true",
        help="run as a lifecycle node (configure loads the model, activate starts)",
    )
    parser.add_argument(
        "--autostart", action="store_true", help="with --managed: configure and activate at start"
    )
    parser.add_argument(
        "--ros-args",
        dest="ros_args",
        nargs=argparse.REMAINDER,
        default=[],
        help="everything after this goes to ROS unchanged (remaps, log level)",
    )
    parser.set_defaults(func=run)


def ros_arguments(args: argparse.Namespace) -> list[str]:
    """The ``--ros-args`` list the options stand for (see the module docstring)."""
    out = ["--ros-args"]
    for path in args.params_file:
        if not path.is_file():
            raise Ws3dError(f"parameter file {path} does not exist")
        out += ["--params-file", str(path)]
    values: list[tuple[str, object]] = []
    if args.model:
        values.append(("model_path", str(Path(args.model).resolve())))
    for name in ("backend", "device", "mode"):
        if getattr(args, name):
            values.append((name, getattr(args, name)))
    if args.classes:
        values.append(("classes", list(args.classes)))
    if args.thing_classes:
        values.append(("thing_classes", list(args.thing_classes)))
    for name, value in values:
        out += ["-p", f"{name}:={json.dumps(value)}"]
    if args.namespace:
        out += ["-r", f"__ns:={args.namespace}"]
    return out + list(args.ros_args)


def run(args: argparse.Namespace) -> int:
    ros_args = ros_arguments(args)
    try:
        from ws3d_ros.ros.perception_node import main
    except ImportError as exc:
        raise Ws3dError(f"{ROS_MISSING} ({exc})") from None
    flags = ["--managed"] * bool(args.managed) + ["--autostart"] * bool(args.autostart)
    if args.autostart and not args.managed:
        raise Ws3dError("--autostart needs --managed")
    return main(["ws3d node", *flags, *ros_args])
