"""Write simulated frames as a rosbag2 (with ``classes.yaml``) and as SemanticKITTI files.

Contract:
- :func:`write_bag` writes ``config.frames`` frames into the new bag
  directory ``out_dir`` (MCAP by default, sqlite3 on request) through
  :class:`~ws3d_ros.data.bag.BagWriter`, plus ``classes.yaml`` inside that
  directory (rosbag readers ignore it). Topics (:data:`TOPICS` documents them):
  ``/lidar/points`` (PointCloud2, frame ``lidar``: x, y, z, intensity, ring,
  time), ``/lidar/labels`` (PointCloud2 with only ``label`` uint16 and
  ``instance`` uint32, same header and point order as the sweep), per camera
  ``<ns>/image_raw`` (rgb8) and ``<ns>/camera_info`` with ``<ns>`` =
  ``/camera`` or ``/camera/<name>``, ``/tf_static`` (latched: base_link ->
  lidar and each camera's optical frame) and ``/tf`` (odom -> base_link at
  each sweep stamp). Log time = header stamp. Same config -> byte-identical
  files (no wall-clock time anywhere).
- :func:`export_semantickitti` writes one SemanticKITTI sequence directory:
  ``velodyne/NNNNNN.bin`` (float32 x, y, z, intensity), ``labels/NNNNNN.label``
  (uint32: class id in the lower 16 bits, instance id in the upper 16),
  ``calib.txt`` (P2, R0_rect, Tr_velo_to_cam of the front camera),
  ``poses.txt`` (KITTI convention: camera pose of each frame in the camera
  frame of frame 0, 3x4 row-major), ``times.txt`` and ``classes.yaml``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.bag import BagWriter
from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.extrinsics import Transform, write_kitti_calib
from ws3d_ros.msg.image import array_to_image
from ws3d_ros.msg.kit import MessageKit, rosbags_kit
from ws3d_ros.msg.pointcloud2 import array_to_cloud, structured
from ws3d_ros.sim.classes import SimClass, write_classes
from ws3d_ros.sim.rig import SimConfig, SimFrame, Simulator

POINTS_TOPIC = "/lidar/points"
LABELS_TOPIC = "/lidar/labels"
TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"
CLASSES_FILE = "classes.yaml"

TOPICS = {
    POINTS_TOPIC: "sensor_msgs/msg/PointCloud2",
    LABELS_TOPIC: "sensor_msgs/msg/PointCloud2",
    TF_TOPIC: "tf2_msgs/msg/TFMessage",
    TF_STATIC_TOPIC: "tf2_msgs/msg/TFMessage",
    "/camera/image_raw": "sensor_msgs/msg/Image",
    "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/camera/<name>/image_raw": "sensor_msgs/msg/Image (6-camera ring)",
    "/camera/<name>/camera_info": "sensor_msgs/msg/CameraInfo (6-camera ring)",
}


def _transform_stamped(
    kit: MessageKit, parent: str, child: str, T: Transform, stamp_ns: int
) -> Any:
    xyz, q = T.to_xyz_quat()
    return kit.make(
        "geometry_msgs/msg/TransformStamped",
        header=kit.header(parent, stamp_ns),
        child_frame_id=child,
        transform=kit.make(
            "geometry_msgs/msg/Transform",
            translation=kit.make(
                "geometry_msgs/msg/Vector3", x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2])
            ),
            rotation=kit.make(
                "geometry_msgs/msg/Quaternion",
                x=float(q[0]),
                y=float(q[1]),
                z=float(q[2]),
                w=float(q[3]),
            ),
        ),
    )


def labels_cloud(frame: SimFrame, kit: MessageKit | None = None) -> Any:
    """The ``/lidar/labels`` message of ``frame``: fields label (uint16) + instance (uint32)."""
    arr = structured(
        label=frame.labels.astype(np.uint16), instance=frame.instances.astype(np.uint32)
    )
    return array_to_cloud(arr, frame_id=frame.lidar_frame, stamp_ns=frame.stamp_ns, kit=kit)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="frame", desc=desc)


def write_bag(
    config: SimConfig,
    out_dir: str | Path,
    progress: bool = True,
    *,
    semantickitti_dir: str | Path | None = None,
    preview_png: str | Path | None = None,
) -> Path:
    """Simulate ``config`` into the new bag directory ``out_dir``; returns its path.

    Optionally also exports the frames as SemanticKITTI (``semantickitti_dir``)
    and saves :func:`~ws3d_ros.sim.preview.render_preview` of the first frame.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    sim = Simulator(config)
    rig = sim.rig
    kit = rosbags_kit()
    kitti = _KittiWriter(semantickitti_dir, sim) if semantickitti_dir is not None else None
    with BagWriter(out, storage=config.storage) as bag:
        bag.add_topic(TF_STATIC_TOPIC, TOPICS[TF_STATIC_TOPIC], latched=True)
        bag.add_topic(TF_TOPIC, TOPICS[TF_TOPIC])
        bag.add_topic(POINTS_TOPIC, TOPICS[POINTS_TOPIC])
        bag.add_topic(LABELS_TOPIC, TOPICS[LABELS_TOPIC])
        for cam in rig.cameras:
            bag.add_topic(cam.image_topic, "sensor_msgs/msg/Image")
            bag.add_topic(cam.info_topic, "sensor_msgs/msg/CameraInfo")
        first = sim.stamp_ns(0)
        statics = [
            _transform_stamped(kit, rig.base_frame, rig.lidar_frame, rig.T_base_from_lidar, first)
        ]
        statics += [
            _transform_stamped(kit, rig.base_frame, c.frame_id, c.T_base_from_cam, first)
            for c in rig.cameras
        ]
        bag.write(TF_STATIC_TOPIC, first, kit.make("tf2_msgs/msg/TFMessage", transforms=statics))
        with _progress(config.frames, progress, f"ws3d sim {config.preset}") as bar:
            for frame in sim.frames():
                _write_frame(bag, kit, sim, frame)
                if kitti is not None:
                    kitti.add(frame)
                if preview_png is not None and frame.index == 0:
                    save_preview(frame, preview_png)
                bar.update(1)
    write_classes(out / CLASSES_FILE, sim.classes)
    if kitti is not None:
        kitti.close()
    return out


def _write_frame(bag: BagWriter, kit: MessageKit, sim: Simulator, frame: SimFrame) -> None:
    rig = sim.rig
    stamp = frame.stamp_ns
    tf = _transform_stamped(kit, rig.odom_frame, rig.base_frame, frame.T_odom_from_base, stamp)
    bag.write(TF_TOPIC, stamp, kit.make("tf2_msgs/msg/TFMessage", transforms=[tf]))
    cloud = array_to_cloud(frame.points, frame_id=frame.lidar_frame, stamp_ns=stamp, kit=kit)
    bag.write(POINTS_TOPIC, stamp, cloud)
    bag.write(LABELS_TOPIC, stamp, labels_cloud(frame, kit))
    for cam in rig.cameras:
        shot = frame.cameras[cam.name]
        # CameraInfo first: a reader that pairs each image with the latest info has it.
        info = shot.camera.to_camera_info(stamp_ns=shot.stamp_ns, kit=kit)
        bag.write(cam.info_topic, shot.stamp_ns, info)
        image = array_to_image(
            frame.images[cam.name], "rgb8", frame_id=cam.frame_id, stamp_ns=shot.stamp_ns, kit=kit
        )
        bag.write(cam.image_topic, shot.stamp_ns, image)


def save_preview(frame: SimFrame, path: str | Path) -> Path:
    """Write :func:`~ws3d_ros.sim.preview.render_preview` of ``frame`` as a PNG."""
    import cv2

    from ws3d_ros.sim.preview import render_preview

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = render_preview(frame, frame.classes)
    bgr = np.ascontiguousarray(picture[:, :, ::-1])
    if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise Ws3dError(f"cannot write preview image {path}")
    return path


class _KittiWriter:
    """Streams frames into a SemanticKITTI sequence directory."""

    def __init__(self, root: str | Path, sim: Simulator) -> None:
        self.root = Path(root)
        (self.root / "velodyne").mkdir(parents=True, exist_ok=True)
        (self.root / "labels").mkdir(parents=True, exist_ok=True)
        names = [c.name for c in sim.rig.cameras]
        self.camera = "camera" if "camera" in names else "front"
        self.T_cam_from_lidar = sim.rig.T_cam_from_lidar(self.camera)
        self.T_base_from_lidar = sim.rig.T_base_from_lidar
        self.classes: tuple[SimClass, ...] = sim.classes
        self.start_ns = sim.config.start_ns
        self.poses: list[np.ndarray] = []
        self.times: list[float] = []
        cam = sim.rig.camera(self.camera).model
        P = np.zeros((3, 4))
        P[:3, :3] = np.asarray(cam.K, np.float64).reshape(3, 3)
        write_kitti_calib(self.root / "calib.txt", P, np.eye(3), self.T_cam_from_lidar)
        write_classes(self.root / CLASSES_FILE, self.classes)

    def add(self, frame: SimFrame) -> None:
        name = f"{frame.index:06d}"
        scan = np.empty((len(frame.points), 4), np.float32)
        for k, f in enumerate(("x", "y", "z", "intensity")):
            scan[:, k] = frame.points[f]
        scan.tofile(self.root / "velodyne" / f"{name}.bin")
        if frame.instances.size and int(frame.instances.max()) > 0xFFFF:
            raise Ws3dError("instance ids above 65535 do not fit a SemanticKITTI .label")
        packed = frame.labels.astype(np.uint32) | (frame.instances.astype(np.uint32) << 16)
        packed.astype("<u4").tofile(self.root / "labels" / f"{name}.label")
        # KITTI poses: camera of frame i in the camera frame of frame 0.
        Tr = self.T_cam_from_lidar.matrix
        T_bl = self.T_base_from_lidar.matrix
        T_lidar0_from_lidar = np.linalg.inv(T_bl) @ frame.T_odom_from_base.matrix @ T_bl
        self.poses.append(Tr @ T_lidar0_from_lidar @ np.linalg.inv(Tr))
        self.times.append((frame.stamp_ns - self.start_ns) * 1e-9)

    def close(self) -> None:
        _write_rows(self.root / "poses.txt", (p[:3, :4].reshape(-1) for p in self.poses))
        (self.root / "times.txt").write_text("".join(f"{t:.6e}\n" for t in self.times))


def _write_rows(path: Path, rows: Iterable[np.ndarray]) -> None:
    path.write_text("".join(" ".join(f"{v:.9e}" for v in row) + "\n" for row in rows))


def export_semantickitti(frames: Iterable[SimFrame], sim: Simulator, out_dir: str | Path) -> Path:
    """Write ``frames`` (of ``sim``) as a SemanticKITTI sequence into ``out_dir``."""
    writer = _KittiWriter(out_dir, sim)
    for frame in frames:
        writer.add(frame)
    writer.close()
    return Path(out_dir)
