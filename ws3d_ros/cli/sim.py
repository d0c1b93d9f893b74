"""``ws3d sim``: simulate a LiDAR + camera rig into a rosbag2 with ground-truth panoptic labels.

Writes a new bag directory (MCAP by default) with the sweep, per-point class
and instance labels, camera images with CameraInfo, and the TF tree, plus the
preset's ``classes.yaml`` inside the bag directory. Optionally a SemanticKITTI
export of the same frames and a preview picture of the first frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """\
examples:
  ws3d sim --out /tmp/street --frames 20
  ws3d sim --out /tmp/ring --cameras 6 --lidar-beams 32 --seed 3 --preview /tmp/ring.png
  ws3d sim --out /tmp/office --preset indoor --frames 50 --storage sqlite3
  ws3d sim --out /tmp/s --frames 100 --export-semantickitti /tmp/kitti/sequences/00

topics: /lidar/points, /lidar/labels, /tf, /tf_static, and /camera/image_raw +
/camera/camera_info (one camera) or /camera/<name>/image_raw + camera_info for
the ring (front, front_left, front_right, back, back_left, back_right).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulated LiDAR + camera rig -> rosbag2 with ground-truth panoptic labels",
        description=__doc__.split("\n\n")[1],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="new bag directory to write")
    parser.add_argument("--frames", type=int, default=20, help="LiDAR sweeps (default 20)")
    parser.add_argument("--rate", type=float, default=10.0, help="sweep rate in Hz (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="scene and noise seed (default 0)")
    parser.add_argument(
        "--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage (default mcap)"
    )
    parser.add_argument(
        "--preset", choices=("street", "indoor"), default="street", help="scene (default street)"
    )
    parser.add_argument(
        "--cameras",
        type=int,
        choices=(1, 6),
        default=1,
        help="one front camera or a 6-camera ring (default 1)",
    )
    parser.add_argument(
        "--lidar-beams",
        type=int,
        choices=(32, 64, 128),
        default=64,
        help="LiDAR beams (default 64)",
    )
    parser.add_argument("--preview", type=Path, help="also save a PNG picture of the first frame")
    parser.add_argument(
        "--export-semantickitti",
        type=Path,
        metavar="DIR",
        help="also write the frames as a SemanticKITTI sequence (velodyne/, labels/, calib.txt)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it is an existing bag"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ws3d_ros.output_dirs import atomic_output_dir
    from ws3d_ros.sim.bagwrite import write_bag
    from ws3d_ros.sim.rig import SimConfig

    out: Path = args.out
    config = SimConfig(
        preset=args.preset,
        frames=args.frames,
        rate_hz=args.rate,
        seed=args.seed,
        cameras=args.cameras,
        lidar_beams=args.lidar_beams,
        storage=args.storage,
    )
    t0 = time.perf_counter()
    # Written under a temporary name, renamed at the end; --overwrite replaces only a
    # previous `ws3d sim` output.
    with atomic_output_dir(out, "sim", overwrite=args.overwrite) as tmp:
        write_bag(
            config,
            tmp,
            progress=not args.quiet,
            semantickitti_dir=args.export_semantickitti,
            preview_png=args.preview,
        )
    path = out
    dt = time.perf_counter() - t0
    print(
        f"wrote {config.frames} frames ({config.preset}, {config.cameras} camera(s), "
        f"{config.lidar_beams} beams) to {path} in {dt:.1f} s",
        file=sys.stderr,
    )
    if args.preview is not None:
        print(f"preview: {args.preview}", file=sys.stderr)
    if args.export_semantickitti is not None:
        print(f"SemanticKITTI export: {args.export_semantickitti}", file=sys.stderr)
    return 0
