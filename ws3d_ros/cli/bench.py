"""``ws3d bench``: per-stage latency tables of the runtime (backends and modes side by side).

Runs sweeps of a bag (or simulated sweeps) through a model for every backend and mode
asked for, and prints the median milliseconds of each stage (decode, voxelise, rulebook,
projection, CLIP tower, lifting, 3D network, grouping, encode) and end-to-end Hz.
Without --model it exports a model with random weights from config/model.yaml first
(latency does not depend on the weight values).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

EPILOG = """\
examples:
  ws3d bench                                          # random-weight default model, sim sweeps
  ws3d bench --model runs/demo/model --bag /tmp/street --frames 10
  ws3d bench --model model/ --backends tensorrt,onnxruntime --modes fusion   # on a GPU
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="per-stage latency / Hz tables for backends and modes",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, help="exported model directory (ws3d export)")
    parser.add_argument("--clip", default="ViT-B-16", help="CLIP tower of the random model")
    parser.add_argument("--bag", type=Path, help="take sweeps from this bag (default: simulate)")
    parser.add_argument("--beams", type=int, choices=(32, 64, 128), default=64)
    parser.add_argument("--cameras", type=int, choices=(1, 6), default=1)
    parser.add_argument("--frames", type=int, default=4, help="sweeps (the first is warm-up)")
    parser.add_argument("--backends", default="onnxruntime,torch", help="comma-separated")
    parser.add_argument("--modes", default="fusion,lidar_only", help="comma-separated")
    parser.add_argument(
        "--frame-paths",
        default="device",
        help="comma-separated: device (the runtime's), numpy (the earlier host path)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON rows instead")
    parser.set_defaults(func=run)


def _frames(args: argparse.Namespace) -> list:
    if args.bag:
        from itertools import islice

        from ws3d_ros.data.frames import BagFrames

        with BagFrames(args.bag) as bag:
            return list(islice(iter(bag), args.frames))
    from ws3d_ros.sim.rig import SimConfig, Simulator

    sim = Simulator(SimConfig(frames=args.frames, lidar_beams=args.beams, cameras=args.cameras))
    return [sim.frame(i).to_frame() for i in range(args.frames)]


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.errors import Ws3dError
    from ws3d_ros.runtime.benchmark import bench_pipeline, markdown, random_model_dir

    frames = _frames(args)
    if not frames:
        raise Ws3dError(f"no synchronised sweeps in {args.bag}")
    with tempfile.TemporaryDirectory(prefix="ws3d_bench_") as tmp:
        model = args.model or random_model_dir(Path(tmp), args.clip, frames[0])
        rows = bench_pipeline(
            model,
            frames,
            backends=[b for b in args.backends.split(",") if b],
            modes=[m for m in args.modes.split(",") if m],
            frame_paths=[p for p in args.frame_paths.split(",") if p],
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{rows[0]['points']:,} points, {len(frames[0].views)} camera(s)\n")
        print(markdown(rows))
    return 0
