"""``ws3d export``: checkpoint -> ONNX graphs (+ TensorRT engines) with a parity report.

Writes net.onnx (LiDAR encoder + fusion + head), clip_image.onnx (dense CLIP image
tower), checkpoint.pt, model.json and parity.json (torch vs ONNX Runtime on a simulated
sweep: max |diff| of embeddings, label agreement) into --out. The node and `ws3d infer`
load that directory.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

EPILOG = """\
examples:
  ws3d export --checkpoint runs/demo/checkpoint.pt --out runs/demo/model
  ws3d export --checkpoint ckpt.pt --out model/ --tensorrt --fp16     # on a GPU machine
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="checkpoint -> ONNX (+ TensorRT engine), with a torch vs ONNX Runtime parity report",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="ws3d train checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines")
    parser.add_argument("--fp16", action="store_true", help="TensorRT engines in FP16")
    parser.add_argument(
        "--classes", help="comma-separated classes for the parity check (default: the model's)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.runtime.export import export_model
    from ws3d_ros.sim.rig import sample_frame

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    report = export_model(
        args.checkpoint,
        args.out,
        frame=sample_frame(),
        classes=classes,
        tensorrt=args.tensorrt,
        fp16=args.fp16,
    )
    print(json.dumps({"out": str(args.out), "parity": asdict(report)}, indent=2))
    return 0
