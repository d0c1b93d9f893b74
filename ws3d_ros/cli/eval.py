"""``ws3d eval``: mIoU / PQ of a model or of a labelled output bag against ground truth.

Scores a model (--model: exported directory or `ws3d train` checkpoint, run through the
Pipeline over the labelled bag) or the panoptic/points of a bag written by `ws3d infer`
(--pred), against the bag's ground truth (a labels PointCloud2 topic: discovered, or
--labels TOPIC, which may be another run's /panoptic/points; or SemanticKITTI sidecars:
--label-sidecars DIR with --label-map FILE), split in and out of the camera field of
view. Classes: --classes-file, else the --label-map file or the labels' label_map, else
the bag's classes.yaml. Writes metrics.json, metrics.md, confusion.png and baseline.json into
--out and prints the summary with the majority-class baseline for reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ws3d_ros.data.sensors import add_sensor_arguments

EPILOG = """\
examples:
  ws3d eval --bag /tmp/heldout --model runs/demo/model.pt --out runs/demo/eval
  ws3d eval --bag /tmp/heldout --model runs/demo/model --backend onnxruntime --out eval/
  ws3d eval --bag /tmp/heldout --pred /tmp/heldout_labelled --out eval/
  ws3d eval --bag kitti/ --model model.pt --out eval/ --points /kitti/velo/pointcloud \\
      --label-sidecars sequences/00/labels --label-map config/label_maps/semantic_kitti.yaml
  ws3d eval --bag drive/ --model new.pt --labels /panoptic/points --out eval/
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="mIoU / PQ in and out of the camera FOV (model or labelled bag vs ground truth)",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bag", type=Path, required=True, help="bag with ground-truth labels")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--pred", type=Path, help="bag written by `ws3d infer` (panoptic/points)")
    src.add_argument("--model", type=Path, help="exported model dir or checkpoint file")
    parser.add_argument("--out", type=Path, required=True, help="report directory")
    parser.add_argument(
        "--backend", help="torch | onnxruntime | tensorrt (default: torch for a checkpoint "
        "file, onnxruntime for a model directory)"
    )  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mode", default="fusion", help="fusion | lidar_only | zero_shot")
    parser.add_argument("--classes-file", type=Path, help="classes.yaml (default: the bag's)")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N sweeps (0: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_sensor_arguments(parser, sidecars=True)
    parser.set_defaults(func=run)


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], list[str], Any]:
    """:func:`ws3d_ros.eval.bag.evaluate_bag` with this command's arguments."""
    from ws3d_ros.data.sensors import SensorSet
    from ws3d_ros.eval.bag import evaluate_bag

    return evaluate_bag(
        args.bag,
        model=args.model,
        pred=args.pred,
        backend=args.backend,
        device=args.device,
        mode=args.mode,
        classes_file=args.classes_file,
        max_frames=args.max_frames,
        quiet=args.quiet,
        sensors=SensorSet.from_args(args),
    )


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.eval.report import fmt_score, write_report
    from ws3d_ros.output_dirs import check_not_input

    check_not_input(args.out, [args.bag, args.pred, args.model])  # the report goes elsewhere
    result, extra, names, colors = evaluate(args)
    paths = write_report(result, args.out, names, colors)
    (args.out / "baseline.json").write_text(json.dumps(extra, indent=2))
    b = extra["baseline"]
    with open(paths["markdown"], "a") as f:
        f.write(
            f"\nMajority-class baseline ({b['majority_class']} everywhere): "
            f"mIoU {fmt_score(b['miou'])}, accuracy {fmt_score(b['acc'])}.\n"
        )

    def split(key: str) -> dict[str, Any]:
        r = result.get(key) or {}
        return {k: r.get(k) for k in ("miou", "acc", "pq", "pq_things", "pq_stuff")}

    summary = {
        "out": str(args.out),
        "frames": extra["frames"],
        "all": split("all"),
        "in_fov": split("in_fov"),
        "out_fov": split("out_fov"),
        "baseline": b,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0
