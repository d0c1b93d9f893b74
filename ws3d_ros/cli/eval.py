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

import numpy as np

from ws3d_ros.data.sensors import add_sensor_arguments
from ws3d_ros.errors import Ws3dError

EPILOG = """\
examples:
  ws3d eval --bag /tmp/heldout --model runs/demo/model.pt --out runs/demo/eval
  ws3d eval --bag /tmp/heldout --model runs/demo/model --backend onnxruntime --out eval/
  ws3d eval --bag /tmp/heldout --pred /tmp/heldout_labelled --out eval/
  ws3d eval --bag kitti/ --model model.pt --out eval/ --points /kitti/velo/pointcloud \\
      --label-sidecars sequences/00/labels --label-map config/label_maps/semantic_kitti.yaml
  ws3d eval --bag drive/ --model new.pt --labels /panoptic/points --out eval/
"""

UNKNOWN = 65535
POINTS_TOPIC = "/panoptic/points"
LABEL_MAP_TOPIC = "/panoptic/label_map"


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


def _classes(args: argparse.Namespace, frames: Any) -> tuple[list[str], list[bool], np.ndarray]:
    from ws3d_ros.data.labels import bag_label_classes

    if args.classes_file is not None and not args.classes_file.is_file():
        raise Ws3dError(f"no classes file {args.classes_file}")
    found, origin = bag_label_classes(args.bag, frames.label_classes, args.classes_file)
    if found is None:
        raise Ws3dError(f"no class list ({origin}); pass --classes-file or --label-map")
    return (
        list(found.names),
        [n in found.things for n in found.names],
        np.array(found.colors, np.uint8).reshape(-1, 3),
    )


def _lut(id_to_name: dict[int, str], names: list[str]) -> np.ndarray:
    """Predicted class id -> ground-truth class id (UNKNOWN for names not in the GT list)."""
    lut = np.full(65536, UNKNOWN, np.int64)
    index = {n: k for k, n in enumerate(names)}
    for pid, name in id_to_name.items():
        lut[pid] = index.get(name, UNKNOWN)
    return lut


def in_fov_mask(frame: Any) -> np.ndarray:
    """Points of a frame that a camera with an image sees (the runtime's projection with
    z-buffer visibility, over every finite point of the sweep)."""
    from ws3d_ros.models.lifting import camera_hits

    xyz = frame.xyz.astype(np.float32)
    mask = np.zeros(len(xyz), bool)
    ok = np.all(np.isfinite(xyz), axis=1)
    idx = np.flatnonzero(ok)
    for v in frame.views:
        if v.image is None:
            continue
        hits = camera_hits(xyz[idx], v.camera, v.T_cam_from_lidar)
        mask[idx[hits.index]] = True
    return mask


def _pred_stream(pred_bag: Path) -> tuple[dict[int, Any], dict[int, str]]:
    from ws3d_ros.data.bag import BagReader
    from ws3d_ros.msg.kit import stamp_to_ns
    from ws3d_ros.msg.pointcloud2 import cloud_to_array

    clouds: dict[int, Any] = {}
    id_to_name: dict[int, str] = {}
    with BagReader(pred_bag) as reader:
        if POINTS_TOPIC not in reader.topics:
            raise Ws3dError(f"{pred_bag} has no {POINTS_TOPIC} (write it with `ws3d infer`)")
        wanted = [POINTS_TOPIC] + ([LABEL_MAP_TOPIC] if LABEL_MAP_TOPIC in reader.topics else [])
        for topic, _, msg in reader.messages(wanted):
            if topic == LABEL_MAP_TOPIC:
                doc = json.loads(msg.data)
                for entry in doc.get("classes", []):
                    id_to_name[int(entry["id"])] = str(entry["name"])
                continue
            arr = cloud_to_array(msg).reshape(-1)
            clouds[stamp_to_ns(msg.header.stamp)] = (
                arr["label"].astype(np.int64),
                arr["instance"].astype(np.int64),
            )
    return clouds, id_to_name


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], list[str], Any]:
    from ws3d_ros.data.frames import BagFrames
    from ws3d_ros.data.sensors import SensorSet

    frames = BagFrames(args.bag, sensors=SensorSet.from_args(args))
    try:
        return _evaluate(args, frames)
    finally:
        frames.close()


def _evaluate(
    args: argparse.Namespace, frames: Any
) -> tuple[dict[str, Any], dict[str, Any], list[str], Any]:
    from tqdm import tqdm

    from ws3d_ros.data.labels import no_labels_message
    from ws3d_ros.eval.metrics import PanopticEvaluator, majority_class_baseline

    names, thing, colors = _classes(args, frames)
    ev = PanopticEvaluator(names, thing)
    gts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    pipeline = None
    clouds: dict[int, Any] = {}
    if args.model is not None:
        from ws3d_ros.runtime.pipeline import Pipeline

        backend = args.backend or ("onnxruntime" if args.model.is_dir() else "torch")
        pipeline = Pipeline.load(args.model, backend=backend, device=args.device, mode=args.mode)
        pipeline.set_vocabulary(names, [n for n, t in zip(names, thing, strict=True) if t])
        vocab = pipeline.vocabulary
        lut = _lut({vocab.id_of(n): n for n in vocab.names}, names)
    else:
        clouds, id_to_name = _pred_stream(args.pred)
        lut = _lut(id_to_name or dict(enumerate(names)), names)
    frames_done = 0
    missing = 0
    unlabelled = 0
    bar = tqdm(desc="eval", unit="sweep", disable=args.quiet)
    for frame in frames:
        if frame.labels is None:
            unlabelled += 1
            continue
        if pipeline is not None:
            res = pipeline(frame)
            pl, pi = res.label.astype(np.int64), res.instance.astype(np.int64)
        else:
            if frame.stamp_ns not in clouds:
                missing += 1
                continue
            pl, pi = clouds[frame.stamp_ns]
            if len(pl) != len(frame.labels):
                raise Ws3dError(
                    f"prediction at {frame.stamp_ns} has {len(pl)} points, sweep has "
                    f"{len(frame.labels)}"
                )
        # The FOV split is a property of the data (every finite point a camera with
        # an image sees), the same for --model and --pred, whatever the model's range.
        fov = in_fov_mask(frame)
        pred = np.where(pl == UNKNOWN, UNKNOWN, lut[np.clip(pl, 0, 65535)])
        gi = frame.instances if frame.instances is not None else np.zeros(len(pl), np.uint32)
        ev.add(frame.labels, gi, pred, np.where(pred == UNKNOWN, 0, pi), in_fov=fov)
        gts.append((frame.labels, gi, fov))
        frames_done += 1
        bar.update(1)
        if args.max_frames and frames_done >= args.max_frames:
            break
    bar.close()
    if frames_done == 0:
        if unlabelled or not frames.stats.frames:
            looked = []
            if frames.topics.labels is not None:
                looked.append(f"labels topic {frames.topics.labels} ({unlabelled} sweeps without)")
            else:
                looked.append("a PointCloud2 with a 'label' field (none in the bag)")
            if frames.sidecars is not None:
                looked.append(f"sidecars {frames.sidecars.directory}/NNNNNN.label")
            raise Ws3dError(no_labels_message(args.bag, looked))
        raise Ws3dError(
            f"no labelled sweep of {args.bag} could be evaluated "
            f"({missing} labelled sweeps had no prediction in --pred)"
        )
    result = ev.result()
    major = majority_class_baseline([g[0] for g in gts])
    base = PanopticEvaluator(names, thing)
    for gl, gi, fov in gts:
        base.add(gl, gi, np.full(len(gl), major), np.zeros(len(gl), np.int64), in_fov=fov)
    bres = base.result()
    baseline = {
        "majority_class": names[major],
        "miou": bres["all"]["miou"],
        "acc": bres["all"]["acc"],
        "miou_in_fov": (bres.get("in_fov") or {}).get("miou"),
        "miou_out_fov": (bres.get("out_fov") or {}).get("miou"),
    }
    info = {"frames": frames_done, "frames_without_prediction": missing}
    return result, {"baseline": baseline, **info}, names, colors


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
