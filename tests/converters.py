"""Simulated bags rewritten in the layouts of the common dataset -> rosbag2 converters.

- :func:`kitti_layout`: kitti2bag topic names (``/kitti/velo/pointcloud`` with x, y, z,
  intensity in [0, 1]; ``/kitti/camera_color_left/image_raw`` + ``camera_info``), no
  labels topic: SemanticKITTI ``.label`` sidecars with the dataset's raw ids
  (10 car, 252 moving car, 40 road, ...) and a KITTI calibration file of any name.
  Optionally without ``/tf_static`` and ``camera_info`` (the calibration file is then
  the only calibration) and with the images cropped (KITTI's sizes vary per drive).
- :func:`nuscenes_layout`: nuScenes-converter names (``/LIDAR_TOP`` with intensity in
  [0, 255]; six ``/CAM_<NAME>/image_raw/compressed`` JPEG streams + ``camera_info``),
  the labels as ``/LIDAR_TOP/lidarseg`` and a decoy depth cloud ``/CAM_FRONT/depth/points``
  that is busier than the LiDAR; optionally a nuScenes-style calibration JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ws3d_ros.data.bag import BagReader, BagWriter
from ws3d_ros.geometry.extrinsics import matrix_to_quat, write_kitti_calib
from ws3d_ros.geometry.tf_tree import TransformTree
from ws3d_ros.msg.image import array_to_compressed, array_to_image, to_rgb8
from ws3d_ros.msg.kit import rosbags_kit, stamp_to_ns
from ws3d_ros.msg.pointcloud2 import array_to_cloud, cloud_to_array, structured
from ws3d_ros.sim.bagwrite import write_bag
from ws3d_ros.sim.rig import SimConfig

#: simulator street class id -> SemanticKITTI raw id (cone: other-object, unlabelled)
SIM_TO_SEMANTIC_KITTI = [40, 48, 72, 50, 70, 80, 81, 51, 10, 18, 30, 31, 99]
#: sim street class id -> the class id of config/label_maps/semantic_kitti.yaml
SIM_TO_SK_CLASS = [8, 10, 16, 12, 14, 17, 18, 13, 0, 3, 5, 6, 65535]


def _tree(reader: BagReader) -> TransformTree:
    tree = TransformTree()
    for _, _, msg in reader.messages(["/tf_static"]):
        tree.add_message(msg)
    return tree


def kitti_layout(
    out: Path,
    *,
    frames: int = 2,
    seed: int = 5,
    tf_static: bool = True,
    camera_info: bool = True,
    crop: tuple[int, int] | None = None,
) -> dict[str, Path]:
    """``{"bag", "labels", "calib"}`` of a kitti2bag-style bag (module docstring)."""
    sim = out.parent / f".{out.name}_sim"
    write_bag(SimConfig(frames=frames, lidar_beams=32, seed=seed), sim, progress=False)
    kit = rosbags_kit()
    labels_dir = out.parent / f"{out.name}_labels"
    labels_dir.mkdir(parents=True)
    lut = np.asarray(SIM_TO_SEMANTIC_KITTI, np.uint32)
    with BagReader(sim) as reader, BagWriter(out) as writer:
        tree = _tree(reader)
        writer.add_topic("/kitti/velo/pointcloud", "sensor_msgs/msg/PointCloud2")
        writer.add_topic("/kitti/camera_color_left/image_raw", "sensor_msgs/msg/Image")
        if camera_info:
            writer.add_topic("/kitti/camera_color_left/camera_info", "sensor_msgs/msg/CameraInfo")
        if tf_static:
            writer.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        index = 0
        K = None
        for topic, log_ns, msg in reader.messages():
            if topic == "/lidar/points":
                arr = cloud_to_array(msg)
                cloud = structured(x=arr["x"], y=arr["y"], z=arr["z"], intensity=arr["intensity"])
                writer.write(
                    "/kitti/velo/pointcloud",
                    log_ns,
                    array_to_cloud(
                        cloud,
                        frame_id=msg.header.frame_id,
                        stamp_ns=stamp_to_ns(msg.header.stamp),
                        kit=kit,
                    ),
                )
            elif topic == "/lidar/labels":
                arr = cloud_to_array(msg)
                raw = lut[np.minimum(arr["label"], len(lut) - 1)]
                moving = (arr["label"] == 8) & (arr["instance"] % 2 == 1)  # some moving cars
                raw = np.where(moving, 252, raw).astype(np.uint32)
                packed = raw | (arr["instance"].astype(np.uint32) << 16)
                packed.astype("<u4").tofile(labels_dir / f"{index:06d}.label")
                index += 1
            elif topic == "/camera/image_raw":
                rgb = to_rgb8(msg)
                if crop is not None:
                    rgb = np.ascontiguousarray(rgb[: crop[1], : crop[0]])
                writer.write(
                    "/kitti/camera_color_left/image_raw",
                    log_ns,
                    array_to_image(
                        rgb,
                        "rgb8",
                        frame_id=msg.header.frame_id,
                        stamp_ns=stamp_to_ns(msg.header.stamp),
                        kit=kit,
                    ),
                )
            elif topic == "/camera/camera_info":
                K = np.asarray(msg.k, np.float64).reshape(3, 3)
                if camera_info:
                    if crop is not None:
                        msg.width, msg.height = crop
                    writer.write("/kitti/camera_color_left/camera_info", log_ns, msg)
            elif topic == "/tf_static" and tf_static:
                writer.write("/tf_static", log_ns, msg)
        assert K is not None
        T = tree.lookup("camera", "lidar")
    calib = out.parent / f"{out.name}_calib_velo_to_cam.txt"  # not named calib*.txt
    write_kitti_calib(calib, np.hstack([K, np.zeros((3, 1))]), np.eye(3), T)
    return {"bag": out, "labels": labels_dir, "calib": calib, "T": T}


def nuscenes_layout(out: Path, *, frames: int = 2, seed: int = 7) -> dict[str, Path]:
    """``{"bag", "calib"}`` of a nuScenes-converter-style bag (module docstring)."""
    sim = out.parent / f".{out.name}_sim"
    write_bag(SimConfig(frames=frames, lidar_beams=32, seed=seed, cameras=6), sim, progress=False)
    kit = rosbags_kit()
    with BagReader(sim) as reader, BagWriter(out) as writer:
        tree = _tree(reader)
        cams = sorted(
            t.split("/")[2] for t in reader.topics if t.startswith("/camera/") and "image" in t
        )
        writer.add_topic("/LIDAR_TOP", "sensor_msgs/msg/PointCloud2")
        writer.add_topic("/LIDAR_TOP/lidarseg", "sensor_msgs/msg/PointCloud2")
        writer.add_topic("/CAM_FRONT/depth/points", "sensor_msgs/msg/PointCloud2")
        writer.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        for cam in cams:
            ns = f"/CAM_{cam.upper()}"
            writer.add_topic(f"{ns}/image_raw/compressed", "sensor_msgs/msg/CompressedImage")
            writer.add_topic(f"{ns}/camera_info", "sensor_msgs/msg/CameraInfo")
        for topic, log_ns, msg in reader.messages():
            stamp = stamp_to_ns(msg.header.stamp) if hasattr(msg, "header") else log_ns
            if topic == "/lidar/points":
                arr = cloud_to_array(msg).copy()
                arr["intensity"] = np.round(arr["intensity"] * 255.0)
                writer.write(
                    "/LIDAR_TOP",
                    log_ns,
                    array_to_cloud(arr, frame_id=msg.header.frame_id, stamp_ns=stamp, kit=kit),
                )
                # A depth camera's cloud (x, y, z, rgb), busier than the LiDAR.
                xyz = cloud_to_array(msg)[:500]
                rgb = np.zeros(len(xyz), np.float32)
                depth = structured(x=xyz["x"], y=xyz["y"], z=xyz["z"], rgb=rgb)
                for k in range(3):
                    writer.write(
                        "/CAM_FRONT/depth/points",
                        log_ns + k,
                        array_to_cloud(depth, frame_id="camera_front", stamp_ns=stamp, kit=kit),
                    )
            elif topic == "/lidar/labels":
                writer.write("/LIDAR_TOP/lidarseg", log_ns, msg)
            elif topic.startswith("/camera/") and topic.endswith("/image_raw"):
                ns = f"/CAM_{topic.split('/')[2].upper()}"
                writer.write(
                    f"{ns}/image_raw/compressed",
                    log_ns,
                    array_to_compressed(
                        to_rgb8(msg), "jpeg", frame_id=msg.header.frame_id, stamp_ns=stamp,
                        kit=kit,
                    ),
                )  # fmt: skip
            elif topic.startswith("/camera/") and topic.endswith("/camera_info"):
                writer.write(f"/CAM_{topic.split('/')[2].upper()}/camera_info", log_ns, msg)
            elif topic == "/tf_static":
                writer.write("/tf_static", log_ns, msg)
        records = {}
        for frame, channel in [("lidar", "LIDAR_TOP")] + [
            (f"camera_{c}", f"CAM_{c.upper()}") for c in cams
        ]:
            T = tree.lookup("base_link", frame)
            x, y, z, w = matrix_to_quat(T.matrix[:3, :3])
            records[channel] = {
                "translation": T.matrix[:3, 3].tolist(),
                "rotation": [float(w), float(x), float(y), float(z)],
            }
    calib = out.parent / f"{out.name}_calibrated_sensor.json"
    calib.write_text(json.dumps(records))
    return {"bag": out, "calib": calib}
