"""``ws3d`` entry point: builds the argparse tree from the subcommand modules.

Exit codes: 0 success, 1 a handled error (bad input, missing file: one line on
stderr, no traceback), 2 usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ws3d_ros import __version__
from ws3d_ros.errors import Ws3dError

# Order is the order shown in --help. A module that is missing (a later
# feature not installed) is simply not listed.
SUBCOMMANDS = (
    "sim",
    "info",
    "play",
    "node",
    "infer",
    "train",
    "eval",
    "export",
    "clicks",
    "parts",
    "bench",
    "demo",
)

EPILOG = """\
examples:
  ws3d sim --out /tmp/street --frames 20          simulate a LiDAR + camera rig into a bag
  ws3d info /tmp/street                           topics, rates, calibration, synchronised frames
  ws3d info cloud.bin                             a KITTI .bin sweep or a SemanticKITTI .label file
  ws3d train --config training/configs/demo_quick.yaml --bags /tmp/street --out runs/demo
  ws3d export --checkpoint runs/demo/model.pt --out runs/demo/model
  ws3d infer --bag /tmp/street --model runs/demo/model --out /tmp/labelled
  ws3d node --model runs/demo/model               the ROS 2 node without `ros2 run`
  ws3d demo                                       the whole loop (what `make demo` runs)

Run `ws3d <command> --help` for each command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ws3d",
        description="Open-vocabulary LiDAR-camera panoptic perception: "
        "simulate, inspect, infer, train, evaluate and export without a ROS install.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ws3d {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"ws3d_ros.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ws3d_ros.cli.{name}":
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our own loggers speak at INFO; third-party libraries (open_clip, onnx) only warn.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("ws3d_ros").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    logging.getLogger("training").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Ws3dError as exc:
        print(f"ws3d {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
