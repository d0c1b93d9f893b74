"""``ws3d train``: train the 3D network from rosbags (CLIP distillation, IGNet, weak labels).

Builds a sharded frame cache of the bags once (points, lifted CLIP teacher features,
labels), then trains with the losses the config enables; writes RUN_DIR/model.pt (what
`ws3d infer`, `ws3d eval` and `ws3d export` take), RUN_DIR/last.pt (for --resume),
TensorBoard scalars in RUN_DIR/tb and RUN_DIR/curves.png. An existing run directory is
refused unless --resume (continue it) or --force (start over). Runs under
`torchrun --nproc_per_node=K` with DistributedDataParallel (disjoint cache shards).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ws3d_ros.data.sensors import SensorSet, add_sensor_arguments

EPILOG = """\
examples:
  ws3d train --config training/configs/demo_quick.yaml --bags /tmp/tr --out runs/demo
  ws3d train --config distill_clip.yaml --bags a/ b/ --out runs/distill --steps 2000
  ws3d train --config weak_clicks.yaml --bags a/ --out runs/clicks --clicks-per-object 1
  ws3d train --config full_supervised.yaml --bags a/ --out runs/full --resume
  ws3d train --config otoc.yaml --bags a/ --out runs/otoc       # OTOC rounds 0..3
  ws3d train --config full_supervised --bags kitti/ --out runs/kitti \\
      --points /kitti/velo/pointcloud --calibration calib.txt \\
      --label-sidecars sequences/00/labels --label-map config/label_maps/semantic_kitti.yaml
  ws3d train --config distill_clip --bags nusc/ --out runs/nusc --intensity-range 0,255
  torchrun --nproc_per_node=2 -m ws3d_ros.cli.main train --config ignet_fovmix.yaml \\
      --bags a/ b/ --out runs/ddp

configs (training/configs): distill_clip, ignet_fovmix, weak_clicks, full_supervised,
demo_quick, otoc, ws3dpp. With otoc.rounds > 0 (otoc, ws3dpp) the command runs One Thing
One Click self-training: round 0 on the clicks, rounds 1..R on pseudo labels propagated
over the supervoxel graph (RUN_DIR/round<r>/, RUN_DIR/rounds.json with per-round
pseudo-label coverage/accuracy/mIoU, RUN_DIR/model.pt = the last round's model).
A config name without a path is looked up there.

sensors: --points, --images, --camera-info, --calibration, --labels, --intensity-range
are those of `ws3d info/infer/eval` (data.points, data.images, ... in the config);
--label-sidecars with --label-map reads SemanticKITTI .label files through a learning
map; --supervoxel-voxel sets the over-segmentation voxel (m; indoor scans ~0.05).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the 3D network from bags (distillation, IGNet, weak labels)",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="training YAML (path or config name)")
    parser.add_argument("--bags", nargs="+", type=Path, required=True, help="rosbag2 dirs")
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    parser.add_argument(
        "--force",
        action="store_true",
        help="start over in an existing run directory (only one `ws3d train` created)",
    )
    parser.add_argument("--steps", type=int, help="override train.steps")
    parser.add_argument("--seed", type=int, help="override train.seed")
    parser.add_argument("--val-bags", nargs="*", type=Path, help="bags held out for validation")
    parser.add_argument(
        "--val-fraction", type=float, help="hold out the last fraction of each bag's time"
    )
    parser.add_argument("--cache-dir", type=Path, help="frame cache root (default RUN_DIR/cache)")
    parser.add_argument("--label-fraction", type=float, help="train on this fraction of labels")
    parser.add_argument("--clicks-per-object", type=int, help="N labelled points per object")
    parser.add_argument("--scribbles", action="store_true", help="scribble labels per object")
    parser.add_argument("--no-labels", action="store_true", help="ignore labels (distillation)")
    parser.add_argument(
        "--supervoxel-voxel",
        type=float,
        metavar="M",
        help="voxel of the cached over-segmentation (data.supervoxel_voxel_size, default 0.2)",
    )
    parser.add_argument("--classes", help="comma-separated classes (default: bag classes.yaml)")
    parser.add_argument("--things", help="comma-separated thing classes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set optim.lr=0.001 (repeatable)",
    )
    parser.add_argument("--device", help="auto | cpu | cuda[:N]")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_sensor_arguments(parser, sidecars=True)
    # Testing aid: stop after this step as if killed (checkpoints as usual).
    parser.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in args.set:
        if "=" not in item:
            from ws3d_ros.errors import Ws3dError

            raise Ws3dError(f"--set expects KEY=VALUE, found {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    if args.steps is not None:
        out["train.steps"] = args.steps
    if args.seed is not None:
        out["train.seed"] = args.seed
    if args.device:
        out["train.device"] = args.device
    if args.val_bags is not None:
        out["data.val_bags"] = [str(b) for b in args.val_bags]
    if args.val_fraction is not None:
        out["data.val_fraction"] = args.val_fraction
    if args.cache_dir is not None:
        out["data.cache_dir"] = str(args.cache_dir)
    if args.label_sidecars is not None:
        out["data.label_sidecars"] = str(args.label_sidecars)
    if args.supervoxel_voxel is not None:
        out["data.supervoxel_voxel_size"] = args.supervoxel_voxel
    sensors = SensorSet.from_args(args)  # validates the flags
    for key, value in (
        ("points", sensors.points),
        ("images", sensors.images),
        ("camera_info", sensors.camera_infos),
        ("calibration", sensors.calibration),
        ("labels_topic", sensors.labels),
        ("label_map", sensors.label_map),
        ("intensity_range", sensors.intensity_range),
    ):
        if value is not None:
            out[f"data.{key}"] = (
                str(value) if isinstance(value, Path) else list(value)
                if isinstance(value, tuple) else value
            )  # fmt: skip
    modes = [
        args.label_fraction is not None,
        args.clicks_per_object is not None,
        args.scribbles,
        args.no_labels,
    ]
    if sum(modes) > 1:
        from ws3d_ros.errors import Ws3dError

        raise Ws3dError(
            "pick one of --label-fraction, --clicks-per-object, --scribbles, --no-labels"
        )
    if args.label_fraction is not None:
        out["labels.mode"] = "fraction"
        out["labels.fraction"] = args.label_fraction
    if args.clicks_per_object is not None:
        out["labels.mode"] = "clicks"
        out["labels.clicks_per_object"] = args.clicks_per_object
    if args.scribbles:
        out["labels.mode"] = "scribbles"
    if args.no_labels:
        out["labels.mode"] = "none"
    return out


def _run_otoc(cfg: object, bags: list[Path], args: argparse.Namespace) -> int:
    """One Thing One Click self-training: rounds 0..otoc.rounds into RUN_DIR/round<r>."""
    from training.otoc.self_training import run_self_training
    from ws3d_ros.errors import Ws3dError

    if args.stop_after is not None:
        raise Ws3dError("--stop-after is not supported with otoc.rounds > 0")
    history = run_self_training(
        cfg,
        bags,
        args.out,
        progress=not args.quiet,
        resume=args.resume,
        classes=_names(args.classes),
        things=_names(args.things),
    )
    rounds = [
        {k: h.get(k) for k in ("round", "pseudo_coverage", "pseudo_accuracy", "pseudo_miou")}
        | {"val_miou": (h.get("metrics") or {}).get("val_miou"), "seconds": h.get("seconds")}
        for h in history
    ]
    summary = {
        "run_dir": str(args.out),
        "model": str(Path(args.out) / "model.pt"),
        "rounds": rounds,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def run(args: argparse.Namespace) -> int:
    from training.config import TrainConfig
    from training.trainer import train
    from ws3d_ros.output_dirs import prepare_run_dir

    cfg = TrainConfig.from_yaml(args.config).with_overrides(overrides_from_args(args))
    bags = list(args.bags) + [b for b in (args.val_bags or []) if b not in args.bags]
    # An existing run is continued (--resume) or replaced (--force, only a marked run
    # directory), never silently overwritten; torchrun's other ranks leave it to rank 0.
    if int(os.environ.get("RANK", "0")) == 0:
        prepare_run_dir(
            args.out,
            "train",
            inputs=[*bags, args.label_sidecars, args.label_map, args.calibration],
            resume=args.resume,
            force=args.force,
        )
    if int(cfg.raw["otoc"]["rounds"]) > 0:
        return _run_otoc(cfg, bags, args)
    result = train(
        cfg,
        bags,
        args.out,
        resume=args.resume,
        stop_after=args.stop_after,
        progress=not args.quiet,
        classes=_names(args.classes),
        things=_names(args.things),
    )
    import torch.distributed as dist

    if dist.is_initialized():
        rank = dist.get_rank()
        dist.destroy_process_group()
        if rank != 0:
            return 0
    summary = {
        "run_dir": str(result.run_dir),
        "model": str(result.run_dir / "model.pt"),
        "step": result.step,
        "seconds": round(result.seconds, 1),
        "metrics": result.metrics,
    }
    print(json.dumps(summary, indent=2, default=str))
    return 0
