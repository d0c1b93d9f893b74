"""``ws3d parts``: zero-shot part segmentation (ZeroPS) of chosen objects in a bag.

For every sweep, each object instance whose class is among ``--object-classes`` (from
the bag's labels: ground truth of ``ws3d sim`` or the output of ``ws3d infer``) is
segmented into the ``--parts`` named in words, from the frame's camera views, with SAM
(local checkpoint) and the open_clip box scorer (``--segmenter sam``). The output bag holds
every input message plus ``/parts/points`` (PointCloud2: x, y, z, ``label`` = index into the part
names, 65535 = no part, ``instance`` = part instance, unique per sweep, 0 = none); PNGs
show the parts over each camera image.

The 2D models come from a factory named by ``--segmenter`` (:data:`SEGMENTERS`:
``name -> factory(args) -> FrameModels``); a :data:`FrameModels` gives, per sweep, the
:class:`~ws3d_ros.parts.interfaces.MaskSegmenter` and
:class:`~ws3d_ros.parts.interfaces.BoxDetector` for that sweep's camera views with an
image (view indices count those views in order). Another model pair plugs in by adding
a factory to :data:`SEGMENTERS` before the parser is built.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import UNKNOWN_LABEL
from ws3d_ros.parts.interfaces import BoxDetector, MaskSegmenter

if TYPE_CHECKING:
    from ws3d_ros.data.frame import CameraView, Frame

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  ws3d parts --bag /tmp/indoor --object-classes car,chair --parts "wheel,door,window" \\
      --sam-checkpoint ~/models/sam_vit_b_01ec64.pth --out /tmp/parts
  ws3d parts --bag drive/ --object-classes car --parts wheel,door,window,light \\
      --sam-checkpoint sam_vit_h_4b8939.pth --sam-model vit_h --device cuda --out out/

SAM weights are never downloaded: pass a local checkpoint (segment-anything README).
The box scorer uses open_clip weights from the local cache (--clip-pretrained) or a file.
"""

POINTS_TOPIC = "/parts/points"
NO_PART = UNKNOWN_LABEL

#: ``(frame, views with an image) -> (segmenter, detector)`` for that sweep
FrameModels = Callable[["Frame", Sequence["CameraView"]], tuple[MaskSegmenter, BoxDetector]]


def sam_models(args: argparse.Namespace) -> FrameModels:
    """SAM (local checkpoint) + the open_clip box scorer on SAM's proposals, loaded once;
    SAM's per-view embeddings are dropped at every sweep (its views are new images)."""
    from ws3d_ros.parts.clip_boxes import ClipBoxScorer
    from ws3d_ros.parts.sam import SamSegmenter

    sam = SamSegmenter(args.sam_checkpoint, model_type=args.sam_model, device=args.device)
    scorer = ClipBoxScorer(
        sam, model=args.clip_model, pretrained=args.clip_pretrained, device=args.device
    )

    def for_frame(frame: Frame, views: Sequence[CameraView]) -> tuple[MaskSegmenter, BoxDetector]:
        sam.forget_views()
        return sam, scorer

    return for_frame


#: ``--segmenter`` name -> factory ``(args) -> FrameModels``
SEGMENTERS: dict[str, Callable[[argparse.Namespace], FrameModels]] = {"sam": sam_models}


def build_models(args: argparse.Namespace) -> FrameModels:
    """The 2D models named by ``--segmenter`` (see the module docstring)."""
    try:
        factory = SEGMENTERS[args.segmenter]
    except KeyError:
        raise Ws3dError(
            f"--segmenter must be one of {sorted(SEGMENTERS)}, found {args.segmenter!r}"
        ) from None
    return factory(args)


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise Ws3dError(f"{what} is empty; give comma-separated names")
    return names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "parts",
        help="zero-shot part segmentation of chosen objects (ZeroPS) -> labelled bag + PNGs",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bag", type=Path, required=True, help="input rosbag2 directory")
    parser.add_argument("--object-classes", required=True, help="e.g. car,chair")
    parser.add_argument("--parts", required=True, help='part names, e.g. "wheel,door,window"')
    parser.add_argument("--out", type=Path, required=True, help="output directory (new)")
    parser.add_argument(
        "--segmenter",
        choices=sorted(SEGMENTERS),
        default="sam",
        help="2D models: sam = SAM masks + open_clip box scorer (default)",
    )
    parser.add_argument("--sam-checkpoint", type=Path, help="local SAM checkpoint (.pth)")
    parser.add_argument("--sam-model", default="vit_b", help="vit_b | vit_l | vit_h")
    parser.add_argument("--clip-model", default="ViT-B-16", help="open_clip architecture")
    parser.add_argument("--clip-pretrained", default="openai", help="cached tag or a file")
    parser.add_argument("--classes-file", type=Path, help="classes.yaml (default: BAG/)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda[:N]")
    parser.add_argument("--min-object-points", type=int, default=50)
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N sweeps (0: all)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(func=run)


def _class_ids(args: argparse.Namespace, wanted: list[str]) -> list[int]:
    from ws3d_ros.labels import load_classes

    path = args.classes_file or args.bag / "classes.yaml"
    if not path.is_file():
        raise Ws3dError(f"no class list at {path}; pass --classes-file")
    by_name = {c.name: c.id for c in load_classes(path)}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise Ws3dError(f"object classes {missing} are not in {path} ({sorted(by_name)})")
    return [by_name[n] for n in wanted]


def _segment_frame(
    frame, ids: list[int], models: FrameModels, part_names: list[str], min_points: int
):
    """Per-point part label (uint16) and part instance (uint32) of one sweep."""
    from ws3d_ros.parts.pipeline import ZeroPS

    n = len(frame)
    label = np.full(n, NO_PART, np.uint16)
    instance = np.zeros(n, np.uint32)
    if frame.labels is None or frame.instances is None:
        raise Ws3dError("the bag has no labels (class + instance) to find the objects by")
    views = [v for v in frame.views if v.image is not None]
    xyz = frame.xyz
    zerops = None
    next_id = 1
    for obj in np.unique(frame.instances[np.isin(frame.labels, ids) & (frame.instances > 0)]):
        idx = np.flatnonzero(frame.instances == obj)
        if len(idx) < min_points or not views:
            continue
        if zerops is None:
            zerops = ZeroPS(*models(frame, views))
        res = zerops(xyz[idx], views, part_names)
        held = res.part_label >= 0
        label[idx[held]] = res.part_label[held]
        instance[idx[held]] = res.part_instance[held] + next_id - 1
        next_id += int(res.part_instance.max())
    return label, instance


def _png(frame, label: np.ndarray, out: Path) -> None:
    import cv2

    from ws3d_ros.geometry.projection import project_points

    palette = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48]], np.uint8)
    for v in frame.views:
        if v.image is None:
            continue
        proj = project_points(frame.xyz, v.camera, v.T_cam_from_lidar, zbuffer_block=3)
        img = (v.image * 0.5).astype(np.uint8)
        idx = np.flatnonzero(proj.mask & (label != NO_PART))
        rc = np.floor(proj.uv[idx][:, ::-1]).astype(np.int64)
        img[rc[:, 0], rc[:, 1]] = palette[label[idx] % len(palette)]
        cv2.imwrite(str(out / f"{frame.index:06d}_{v.name}.png"), img[:, :, ::-1])


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.data.bag import BagReader, BagWriter
    from ws3d_ros.data.frames import BagFrames
    from ws3d_ros.msg.kit import rosbags_kit
    from ws3d_ros.msg.pointcloud2 import array_to_cloud, structured
    from ws3d_ros.output_dirs import atomic_output_dir

    objects = _names(args.object_classes, "--object-classes")
    part_names = _names(args.parts, "--parts")
    if not args.bag.is_dir():
        raise Ws3dError(f"bag not found: {args.bag}")
    ids = _class_ids(args, objects)
    kit = rosbags_kit()
    n_frames = n_labelled = 0
    with atomic_output_dir(args.out, "parts", inputs=[args.bag], overwrite=args.overwrite) as tmp:
        models = build_models(args)  # after the --out checks: weights load only when needed
        pngs = tmp / "png"
        pngs.mkdir(parents=True)  # the staging path does not exist yet
        with (
            BagReader(args.bag) as reader,
            BagWriter(tmp / "bag", storage=args.storage) as writer,
        ):
            for topic, info in reader.topics.items():
                writer.add_topic(topic, info.msgtype, latched=info.latched)
            for topic, msgtype, stamp, raw in reader.raw_messages():
                writer.write_raw(topic, msgtype, stamp, raw)
            writer.add_topic(POINTS_TOPIC, "sensor_msgs/msg/PointCloud2")
            with BagFrames(args.bag) as frames:
                for frame in frames:
                    label, instance = _segment_frame(
                        frame, ids, models, part_names, args.min_object_points
                    )
                    xyz = frame.xyz
                    arr = structured(
                        x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], label=label, instance=instance
                    )
                    msg = array_to_cloud(
                        arr, frame_id=frame.frame_id, stamp_ns=frame.stamp_ns, kit=kit
                    )
                    writer.write(POINTS_TOPIC, frame.stamp_ns, msg)
                    _png(frame, label, pngs)
                    n_frames += 1
                    n_labelled += int((label != NO_PART).sum())
                    if args.max_frames and n_frames >= args.max_frames:
                        break
        (tmp / "parts.json").write_text(json.dumps({"parts": part_names, "objects": objects}))
    print(json.dumps({"out": str(args.out), "frames": n_frames, "points_with_part": n_labelled}))
    return 0
