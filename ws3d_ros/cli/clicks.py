"""``ws3d clicks``: one-click labels, derived from ground truth or clicked in rviz.

- ``ws3d clicks --bag B --from-labels --per-object N --out FILE``: N clicks per object
  (thing instance or connected stuff region) of every labelled sweep of bag B, drawn from
  ground truth with :func:`training.weak_labels.clicks_per_object` (the same draw as
  ``ws3d train --clicks-per-object N``, seeded per sweep by ``--seed`` and the frame key
  ``<bag name>:<stamp>``), written as a clicks sidecar (:mod:`ws3d_ros.data.clicks`).
- ``ws3d clicks --bag B --labeler --out FILE [--class C] [--classes ...]``: start the
  ``click_labeler`` node (where ``ros2 run`` is not available), keyed by B's name; play
  the bag beside it (``ws3d play B``) and click with rviz's "Publish Point".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ws3d_ros.errors import Ws3dError

EPILOG = """\
examples:
  ws3d clicks --bag /tmp/street --from-labels --per-object 1 --out /tmp/street.clicks.jsonl
  ws3d clicks --bag /tmp/street --labeler --out /tmp/street.clicks.jsonl --class car \\
      --ros-args -r points:=/lidar/points
  (then: ws3d play /tmp/street; ros2 param set /click_labeler current_class road)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "clicks",
        help="one-click labels: from the rviz click labeler or derived from ground truth",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bag", required=True, type=Path, help="the bag the clicks belong to")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--from-labels", action="store_true", help="derive from dense labels")
    mode.add_argument("--labeler", action="store_true", help="start the click_labeler node")
    parser.add_argument("--out", required=True, type=Path, help="clicks file (JSON lines)")
    parser.add_argument("--per-object", type=int, default=1, help="clicks per object (N)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the click draw")
    parser.add_argument("--class", dest="current_class", help="labeler: first class")
    parser.add_argument("--classes", nargs="+", help="labeler: allowed class names")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--ros-args",
        dest="ros_args",
        nargs=argparse.REMAINDER,
        default=[],
        help="labeler: everything after this goes to ROS unchanged (remaps)",
    )
    parser.set_defaults(func=run)


def class_names_of(bag: Path) -> list[str]:
    """Class names by id from the ``classes.yaml`` beside/inside ``bag`` (``[]`` if none)."""
    from ws3d_ros.labels import load_classes

    path = (bag if bag.is_dir() else bag.parent) / "classes.yaml"
    if not path.is_file():
        return []
    classes = load_classes(path)
    names = [""] * (max(c.id for c in classes) + 1)
    for c in classes:
        names[c.id] = c.name
    return names


def derive_from_labels(bag: Path, per_object: int, seed: int = 0) -> list:
    """The clicks of every labelled sweep of ``bag`` (see the module docstring)."""
    import numpy as np

    from training.weak_labels import UNKNOWN, clicks_per_object, frame_rng
    from ws3d_ros.data.clicks import Click
    from ws3d_ros.data.frames import BagFrames

    if per_object < 1:
        raise Ws3dError(f"--per-object must be >= 1, found {per_object}")
    names = class_names_of(bag)
    if not names:
        raise Ws3dError(f"{bag} has no classes.yaml beside it: cannot name the clicked classes")
    clicks = []
    labelled = 0
    with BagFrames(bag, decode_images=False) as frames:
        for frame in frames:
            if frame.labels is None:
                continue
            labelled += 1
            key = f"{bag.name}:{frame.stamp_ns}"
            xyz = frame.xyz
            # Stuff regions: connected components per class (the trainer's default draw).
            weak = clicks_per_object(
                frame.labels, frame.instances, per_object, frame_rng(seed, key), xyz
            )
            for i in np.flatnonzero(weak != UNKNOWN).tolist():
                cid = int(weak[i])
                if cid >= len(names):
                    raise Ws3dError(f"{bag}: label {cid} has no name in classes.yaml")
                clicks.append(
                    Click(
                        bag=bag.name,
                        stamp_ns=int(frame.stamp_ns),
                        index=int(i),
                        cls=names[cid],
                        xyz=tuple(float(v) for v in xyz[i]),
                        source="labels",
                    )
                )
    if labelled == 0:
        raise Ws3dError(f"{bag} has no labelled sweeps (no labels topic)")
    return clicks


def run(args: argparse.Namespace) -> int:
    if args.from_labels:
        from ws3d_ros.data.clicks import write_clicks

        if not args.bag.exists():
            raise Ws3dError(f"bag {args.bag} does not exist")
        clicks = derive_from_labels(args.bag, args.per_object, args.seed)
        write_clicks(args.out, clicks)
        sweeps = len({(c.bag, c.stamp_ns) for c in clicks})
        print(json.dumps({"clicks": len(clicks), "sweeps": sweeps, "out": str(args.out)}))
        return 0
    try:
        from ws3d_ros.ros.click_labeler import main
    except ImportError as exc:
        from ws3d_ros.cli.node import ROS_MISSING

        raise Ws3dError(f"{ROS_MISSING} ({exc})") from None
    ros = ["--ros-args", "-p", f"output:={args.out.resolve()}", "-p", f"bag:={args.bag.name}"]
    if args.current_class:
        ros += ["-p", f"current_class:={args.current_class}"]
    if args.classes:
        ros += ["-p", f"classes:={json.dumps(list(args.classes))}"]
    if not args.quiet:
        print(
            f"click_labeler: writing {args.out}; click with rviz 'Publish Point'", file=sys.stderr
        )
    return main(["ws3d clicks", *ros, *args.ros_args])
