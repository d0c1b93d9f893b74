"""``ws3d info BAG_OR_FILE``: what a bag (or a KITTI-style file) holds.

For a rosbag2: topics with types, counts and rates; a decoded summary of the
first message of every sensor topic; the sensor set the commands use (LiDAR,
cameras raw or compressed, labels, intensity range; discovered unless given
with the same flags as infer/eval/train) and the flags that pin it; the
calibration found (``/tf_static`` edges or --calibration, per-camera model and
extrinsics); and how many synchronised frames the frame iterator makes, with
the reasons others were dropped. For a KITTI ``velodyne/*.bin`` sweep, a
SemanticKITTI ``.label`` file or a KITTI calibration (any file name with P2 and
Tr lines): counts, ranges and histograms. ``--json`` prints the same as one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.sensors import (
    IMAGE_MSG,
    SensorSet,
    add_sensor_arguments,
    override_flags,
    transport_of,
)
from ws3d_ros.errors import BagError, Ws3dError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="topics, rates, calibration and synchronised frames of a bag (or a KITTI file)",
        description=__doc__.split("\n\n")[1],
        epilog="examples:\n  ws3d info /tmp/street\n  ws3d info /tmp/street --json\n"
        "  ws3d info kitti_bag --points /kitti/velo/pointcloud "
        "--calibration 2011_09_26.txt\n"
        "  ws3d info nusc_bag --intensity-range 0,255\n"
        "  ws3d info kitti/velodyne/000000.bin\n  ws3d info kitti/labels/000000.label\n"
        "  ws3d info kitti/00/calib.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="rosbag2 directory, .bin, .label or calib.txt")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--no-frames", action="store_true", help="skip the synchronisation pass (faster)"
    )
    add_sensor_arguments(parser, sidecars=True)
    parser.set_defaults(func=run)


def _summarise_message(msgtype: str, msg: Any) -> str:
    from ws3d_ros.geometry.camera import CameraModel
    from ws3d_ros.msg.image import to_rgb8
    from ws3d_ros.msg.pointcloud2 import cloud_to_array

    try:
        if msgtype == "sensor_msgs/msg/PointCloud2":
            arr = cloud_to_array(msg)
            fields = ", ".join(
                f"{n}:{arr.dtype.fields[n][0].base.name}" for n in (arr.dtype.names or ())
            )
            shape = "x".join(str(s) for s in arr.shape)
            return f"{shape} points, point_step {msg.point_step}, fields {fields}"
        if msgtype == "sensor_msgs/msg/Image":
            to_rgb8(msg)
            return f"{msg.width}x{msg.height} {msg.encoding}"
        if msgtype == "sensor_msgs/msg/CompressedImage":
            rgb = to_rgb8(msg)
            return f"{rgb.shape[1]}x{rgb.shape[0]} {msg.format}"
        if msgtype == "sensor_msgs/msg/CameraInfo":
            cam = CameraModel.from_camera_info(msg)
            return (
                f"{cam.width}x{cam.height} {cam.distortion_model} fx={cam.K[0, 0]:.1f} "
                f"fy={cam.K[1, 1]:.1f} frame {cam.frame_id!r}"
            )
        if msgtype == "tf2_msgs/msg/TFMessage":
            return ", ".join(f"{t.header.frame_id}->{t.child_frame_id}" for t in msg.transforms)
    except Ws3dError as exc:
        return f"UNREADABLE: {exc}"
    return ""


def bag_info(
    path: Path, *, frames: bool = True, sensors: SensorSet | None = None
) -> dict[str, Any]:
    from ws3d_ros.data.bag import BagReader
    from ws3d_ros.data.frames import BagFrames

    out: dict[str, Any] = {"path": str(path), "kind": "rosbag2"}
    with BagReader(path) as reader:
        infos = reader.topics
        out["storage"] = reader.storage
        out["duration_s"] = (reader.end_ns - reader.start_ns) / 1e9
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        summaries: dict[str, str] = {}
        store = None
        for topic, msgtype, stamp, raw in reader.raw_messages():
            first.setdefault(topic, stamp)
            last[topic] = stamp
            if topic not in summaries:
                if store is None:
                    from ws3d_ros.msg.kit import typestore

                    store = typestore()
                try:
                    msg = store.deserialize_cdr(memoryview(raw), msgtype)
                    summaries[topic] = _summarise_message(msgtype, msg)
                except Exception as exc:  # unknown type or corrupt record: report, go on
                    summaries[topic] = f"UNREADABLE: {exc}"
        out["skipped_records"] = [str(r) for r in reader.skipped]
    topics = []
    for name, info in infos.items():
        span = (last.get(name, 0) - first.get(name, 0)) / 1e9
        rate = (info.count - 1) / span if info.count > 1 and span > 0 else None
        topics.append(
            {
                "topic": name,
                "type": info.msgtype,
                "count": info.count,
                "rate_hz": rate,
                "latched": info.latched,
                "first": summaries.get(name, ""),
            }
        )
    out["topics"] = topics
    try:
        with BagFrames(path, decode_images=frames, sensors=sensors) as bag:
            kinds = {t["topic"]: t["type"] for t in topics}
            out["streams"] = {
                "points": bag.topics.points,
                "cameras": {c.name: c.image for c in bag.topics.cameras},
                "camera_transports": {
                    c.name: transport_of(kinds.get(c.image, IMAGE_MSG["raw"]))
                    for c in bag.topics.cameras
                },
                "camera_infos": {c.name: c.camera_info for c in bag.topics.cameras},
                "labels": bag.topics.labels,
                "label_sidecars": None if bag.sidecars is None else str(bag.sidecars.directory),
                "calibration_file": None
                if bag.calibration_file is None
                else f"{bag.calibration_file.path} ({bag.calibration_file.kind})",
                "intensity_range": bag.intensity_range,
                "intensity_origin": bag.intensity_origin,
            }
            out["override_flags"] = override_flags(bag.topics, bag.sensors)
            out["tf_static"] = [f"{p}->{c}" for p, c in bag.tf.edges()]
            if frames:
                n_points = []
                calib: dict[str, str] = {}
                for frame in bag:
                    n_points.append(len(frame))
                    for v in frame.views:
                        if v.name not in calib:
                            xyz, _ = v.T_cam_from_lidar.to_xyz_quat()
                            calib[v.name] = (
                                f"{v.camera.width}x{v.camera.height} {v.camera.distortion_model}, "
                                f"T_cam_from_lidar t=({xyz[0]:.3f}, {xyz[1]:.3f}, {xyz[2]:.3f})"
                            )
                out["calibration"] = calib
                out["frames"] = bag.stats.summary()
                if n_points:
                    out["points_per_sweep"] = {
                        "min": int(min(n_points)),
                        "median": float(np.median(n_points)),
                        "max": int(max(n_points)),
                    }
    except BagError as exc:
        if sensors is not None and (sensors.points or sensors.images or sensors.labels):
            raise  # a flag named a wrong topic: an error, not a report
        out["frames_error"] = str(exc)
    return out


def _is_kitti_calib(path: Path) -> bool:
    from ws3d_ros.data.sensors import _looks_like_kitti

    return path.is_file() and _looks_like_kitti(path)


def file_info(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(path)}
    if path.suffix == ".bin":
        raw = np.fromfile(path, dtype=np.float32)
        if raw.size % 4:
            raise Ws3dError(
                f"{path}: {raw.size} floats is not a multiple of 4 (x, y, z, intensity)"
            )
        pts = raw.reshape(-1, 4).astype(np.float64)  # float64: rounded values print cleanly
        out.update(
            kind="kitti_velodyne",
            points=len(pts),
            min=pts[:, :3].min(0).round(2).tolist() if len(pts) else None,
            max=pts[:, :3].max(0).round(2).tolist() if len(pts) else None,
            intensity=[round(float(pts[:, 3].min()), 4), round(float(pts[:, 3].max()), 4)]
            if len(pts)
            else None,
        )
    elif path.suffix == ".label":
        raw = np.fromfile(path, dtype=np.uint32)
        classes = Counter((raw & 0xFFFF).tolist())
        out.update(
            kind="semantickitti_label",
            points=len(raw),
            classes={int(k): v for k, v in sorted(classes.items())},
            instances=len(np.unique(raw[(raw >> 16) > 0])),
        )
    elif _is_kitti_calib(path):
        from ws3d_ros.geometry.extrinsics import load_kitti_calib

        calib = load_kitti_calib(path)
        out.update(
            kind="kitti_calib",
            P2=calib.P2.round(4).tolist(),
            T_cam_from_lidar=calib.T_cam_from_lidar.matrix.round(4).tolist(),
        )
    else:
        raise Ws3dError(
            f"{path}: not a rosbag2 directory, KITTI .bin, SemanticKITTI .label or a KITTI "
            "calibration (P2 and Tr/Tr_velo_to_cam lines)"
        )
    return out


def _print_bag(info: dict[str, Any]) -> None:
    print(f"bag: {info['path']} ({info['storage']}, {info['duration_s']:.2f} s)")
    width = max((len(t["topic"]) for t in info["topics"]), default=10)
    print(f"\n{'topic':<{width}}  {'type':<32} {'count':>7} {'rate Hz':>8}  first message")
    for t in info["topics"]:
        rate = f"{t['rate_hz']:.2f}" if t["rate_hz"] else "-"
        latched = " (latched)" if t["latched"] else ""
        print(
            f"{t['topic']:<{width}}  {t['type']:<32} {t['count']:>7} {rate:>8}  "
            f"{t['first']}{latched}"
        )
    for record in info.get("skipped_records", []):
        print(f"skipped a corrupt record: {record}")
    if "streams" in info:
        s = info["streams"]
        labels = s["labels"] or (
            f"sidecars {s['label_sidecars']}" if s["label_sidecars"] else "none"
        )
        print(f"\nLiDAR: {s['points']}   labels: {labels}")
        rng = s["intensity_range"]
        if rng is None:
            print(f"intensity: {s['intensity_origin']}")
        else:
            print(f"intensity: [{rng[0]:g}, {rng[1]:g}] ({s['intensity_origin']})")
        for name, topic in s["cameras"].items():
            info_topic = s["camera_infos"][name] or "intrinsics from the calibration file"
            print(
                f"camera {name}: {topic} ({s['camera_transports'][name]}), {info_topic}  "
                f"{info.get('calibration', {}).get(name, '')}"
            )
        if s["calibration_file"]:
            print(f"calibration: {s['calibration_file']}")
        print(f"tf_static: {', '.join(info['tf_static']) or 'none'}")
        print(f"override with: {info['override_flags']}")
    if "frames" in info:
        f = info["frames"]
        print(
            f"\nsynchronised frames: {f['frames']} "
            f"({f['frames_with_all_cameras']} with every camera)"
        )
        if "points_per_sweep" in info:
            p = info["points_per_sweep"]
            print(f"points per sweep: min {p['min']}, median {p['median']:.0f}, max {p['max']}")
        for name, n in f["missing_images"].items():
            print(f"  sweeps without {name}: {n}")
        for reason, n in f["dropped"].items():
            print(f"  dropped ({reason}): {n}")
    if "frames_error" in info:
        print(f"\nno frames: {info['frames_error']}")


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    if not path.exists():
        raise Ws3dError(f"{path} does not exist")
    is_bag = path.is_dir() or path.suffix in (".mcap", ".db3")
    if is_bag:
        info = bag_info(path, frames=not args.no_frames, sensors=SensorSet.from_args(args))
    else:
        info = file_info(path)
    if args.json:
        json.dump(info, sys.stdout, indent=2, default=str)
        print()
    elif is_bag:
        _print_bag(info)
    else:
        for key, value in info.items():
            print(f"{key}: {value}")
    return 0
