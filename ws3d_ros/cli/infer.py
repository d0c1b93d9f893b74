"""``ws3d infer``: offline panoptic inference over a bag -> a labelled bag (auto-labelling).

The output bag holds every input message unchanged plus ``panoptic/points`` (PointCloud2:
x, y, z, label, instance, score; same point count and order as each sweep) and
``panoptic/label_map`` (std_msgs/String JSON, latched), exactly as the node publishes.
The sensors are discovered unless given (--points, --images raw or compressed,
--camera-info, --calibration); intensity is rescaled to the model's trained range
(--intensity-range, else detected). --overlay DIR writes one PNG per camera per sweep
(DIR/<camera>/<sweep>_<stamp>.png, points in class colours).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from ws3d_ros.data.sensors import SensorSet, add_sensor_arguments
from ws3d_ros.errors import Ws3dError

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  ws3d infer --bag /tmp/street --model runs/demo/model --out /tmp/street_labelled
  ws3d infer --bag drive/ --model model/ --classes car,person,road,building --things car,person
  ws3d infer --bag drive/ --model model/ --mode lidar_only --backend torch --out out/
  ws3d infer --bag kitti/ --model model/ --out out/ --points /kitti/velo/pointcloud \\
      --images /kitti/camera_color_left/image_raw --calibration calib_cam_to_cam.txt
  ws3d infer --bag nusc/ --model model/ --out out/ --intensity-range 0,255 --overlay pngs/
"""

POINTS_TOPIC = "/panoptic/points"
LABEL_MAP_TOPIC = "/panoptic/label_map"


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else []


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="offline inference over a bag -> labelled bag (panoptic/points + label_map)",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bag", type=Path, required=True, help="input rosbag2 directory")
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="exported model directory (ws3d export) or a checkpoint (ws3d train; torch)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output bag directory (new)")
    parser.add_argument(
        "--classes", help="comma-separated class names (default: the model's training classes)"
    )
    parser.add_argument("--things", help="comma-separated thing classes (default: the model's)")
    parser.add_argument("--backend", default="onnxruntime", help="onnxruntime | torch | tensorrt")
    parser.add_argument("--device", default="cpu", help="cpu | cuda[:N]")
    parser.add_argument("--mode", default="fusion", help="fusion | lidar_only | zero_shot")
    parser.add_argument("--score-threshold", type=float, default=0.0)
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N sweeps (0: all)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--overlay",
        type=Path,
        metavar="DIR",
        help="write DIR/<camera>/<sweep>_<stamp>.png per camera per sweep (a new directory)",
    )
    add_sensor_arguments(parser, labels=False)
    parser.set_defaults(func=run)


def _write_overlays(overlay_dir: Path, frame: Any, result: Any, colors: Any, index: int) -> int:
    """One PNG per camera with an image; returns how many were written."""
    import cv2

    from ws3d_ros.runtime.outputs import camera_overlays

    written = 0
    for name, image in camera_overlays(frame, result, colors).items():
        folder = overlay_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{index:06d}_{frame.stamp_ns}.png"
        if not cv2.imwrite(str(path), image[:, :, ::-1]):
            raise Ws3dError(f"cannot write overlay {path}")
        written += 1
    return written


def _infer(
    args: argparse.Namespace, tmp: Path
) -> tuple[int, dict[str, float], dict[str, Any], list[str], float]:
    """Label every sweep of ``args.bag`` into a new bag at ``tmp``."""
    from tqdm import tqdm

    from ws3d_ros.data.bag import BagReader, BagWriter
    from ws3d_ros.data.frames import BagFrames
    from ws3d_ros.msg.kit import rosbags_kit
    from ws3d_ros.runtime.outputs import label_map_message, panoptic_cloud
    from ws3d_ros.runtime.pipeline import Pipeline

    pipeline = Pipeline.load(
        args.model,
        backend=args.backend,
        device=args.device,
        mode=args.mode,
        score_threshold=args.score_threshold,
    )
    meta = pipeline.backend.loaded.meta
    classes = _names(args.classes) or list(meta.get("classes") or [])
    if not classes:
        raise Ws3dError("the model names no classes; pass --classes a,b,c")
    things = _names(args.things) if args.things is not None else list(meta.get("things") or [])
    pipeline.set_vocabulary(classes, [t for t in things if t in classes])
    kit = rosbags_kit()

    t0 = time.perf_counter()
    n_frames = 0
    overlays = 0
    stage_ms: dict[str, float] = {}
    with BagReader(args.bag) as reader, BagWriter(tmp, storage=args.storage) as writer:
        for topic, info in reader.topics.items():
            writer.add_topic(topic, info.msgtype, latched=info.latched)
        for topic, msgtype, stamp, raw in reader.raw_messages():
            writer.write_raw(topic, msgtype, stamp, raw)
        writer.add_topic(LABEL_MAP_TOPIC, "std_msgs/msg/String", latched=True)
        writer.add_topic(POINTS_TOPIC, "sensor_msgs/msg/PointCloud2")
        writer.write(
            LABEL_MAP_TOPIC,
            reader.start_ns,
            label_map_message(pipeline.vocabulary.label_map_json(), kit),
        )
        with BagFrames(args.bag, sensors=SensorSet.from_args(args)) as frames:
            bar = tqdm(
                total=reader.topics[frames.topics.points].count,
                desc="infer",
                unit="sweep",
                disable=args.quiet,
            )
            for frame in frames:
                result = pipeline(frame)
                msg = panoptic_cloud(
                    frame.points, result, frame_id=frame.frame_id, stamp_ns=frame.stamp_ns, kit=kit
                )
                writer.write(POINTS_TOPIC, frame.stamp_ns, msg)
                if args.overlay is not None:
                    overlays += _write_overlays(
                        args.overlay, frame, result, pipeline.vocabulary.color_table(), n_frames
                    )
                for k, v in result.timings.items():
                    stage_ms[k] = stage_ms.get(k, 0.0) + v
                n_frames += 1
                bar.update(1)
                if args.max_frames and n_frames >= args.max_frames:
                    break
            bar.close()
            stats = frames.stats.summary()
            stats["topics"] = {
                "points": frames.topics.points,
                "cameras": {c.name: c.image for c in frames.topics.cameras},
            }
            rng = frames.intensity_range
            stats["intensity"] = {
                "input_range": None if rng is None else list(rng),
                "origin": frames.intensity_origin,
                "model_range": list(pipeline.config.intensity_range),
            }
            stats["overlays"] = overlays
            skipped = {str(r) for r in [*reader.skipped, *frames.skipped]}
            stats["skipped_records"] = sorted(skipped)
    return n_frames, stage_ms, stats, classes, t0


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.output_dirs import atomic_output_dir

    out = args.out
    if out.suffix == ".mcap":
        out = out.with_suffix("")
    if args.overlay is not None:
        from ws3d_ros.output_dirs import check_not_input

        check_not_input(args.overlay, [args.bag, args.model, out], what="--overlay")
        if args.overlay.exists() and any(args.overlay.iterdir()):
            raise Ws3dError(
                f"--overlay {args.overlay} exists and is not empty; name a new directory"
            )
    # The labelled bag is written under a temporary name and renamed at the end; --overwrite
    # replaces only a previous `ws3d infer` output, never an input or a foreign directory.
    with atomic_output_dir(
        out, "infer", inputs=[args.bag, args.model], overwrite=args.overwrite
    ) as tmp:
        n_frames, stage_ms, stats, classes, t0 = _infer(args, tmp)
    elapsed = time.perf_counter() - t0
    summary = {
        "out": str(out),
        "frames": n_frames,
        "seconds": round(elapsed, 2),
        "mean_ms_per_stage": {k: round(v / max(n_frames, 1), 1) for k, v in stage_ms.items()},
        "frame_stats": stats,
        "classes": classes,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0
