"""One sensor-set description: which topics and files feed a Frame, for every command.

Contract (layer 2; no torch, no rclpy):
- :class:`SensorSet` names the LiDAR topic, the cameras' image topics (raw
  ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``) and their camera_info topics,
  the calibration file, the labels source (a labels topic, or SemanticKITTI ``.label``
  sidecars with a learning map) and the input's intensity range. Every field is optional:
  what is not given is discovered from the bag (:func:`ws3d_ros.data.frames.discover_topics`)
  or detected (:mod:`ws3d_ros.data.intensity`).
- :func:`add_sensor_arguments` adds the same flags to every ``ws3d`` command that reads a
  bag (``--points``, ``--images``, ``--camera-info``, ``--calibration``, ``--labels``,
  ``--label-sidecars``, ``--label-map``, ``--intensity-range``);
  :meth:`SensorSet.from_args` reads them back. :func:`override_flags` spells the flags
  that reproduce a discovered choice (``ws3d info`` prints it).
- :func:`camera_topics` is the camera naming shared with the node (``image_transport``):
  camera namespace ``<ns>`` -> ``<ns>/image`` (raw) or ``<ns>/image/compressed``, and
  ``<ns>/camera_info``. Offline, any image topic is accepted; its camera is named by its
  namespace (:func:`ws3d_ros.data.frames.camera_name_of`), the same name the node uses.
- :func:`load_calibration` reads a calibration file into ``{camera: T_cam_from_lidar}``
  plus optional intrinsics: the project's extrinsics YAML (entries named by camera), a
  KITTI ``calib.txt`` of any file name (recognised by its ``P2``/``Tr`` lines; camera 2,
  for the first camera; its image size comes from the bag's camera_info), or a
  nuScenes-style JSON/YAML of ``calibrated_sensor`` records keyed by channel
  (``LIDAR_TOP``, ``CAM_FRONT``, ...; ``translation`` + ``rotation`` w,x,y,z
  ``T_ego_from_sensor``, optional ``camera_intrinsic``). Errors are one-line
  :class:`~ws3d_ros.errors.CalibrationError` naming the file and what was looked for.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.intensity import IntensityRange, parse_range
from ws3d_ros.errors import CalibrationError, Ws3dError
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import (
    Transform,
    from_nuscenes_sensor,
    load_extrinsics_yaml,
    load_kitti_calib,
)

#: The transports a camera can use (image_transport plugin names; the node's
#: ``image_transport.<camera>`` parameter takes the same values).
TRANSPORTS = ("raw", "compressed")
IMAGE_MSG = {"raw": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage"}


def camera_topics(namespace: str, transport: str = "raw") -> tuple[str, str]:
    """``(image topic, camera_info topic)`` of a camera namespace (the node's naming)."""
    if transport not in TRANSPORTS:
        raise Ws3dError(f"camera transport must be one of {TRANSPORTS}, found {transport!r}")
    ns = namespace.rstrip("/")
    prefix = f"{ns}/" if ns else ""  # '': the node's single camera, relative names
    image = f"{prefix}image" + ("/compressed" if transport == "compressed" else "")
    return image, f"{prefix}camera_info"


def transport_of(msgtype: str) -> str:
    """``raw`` or ``compressed`` for an image message type."""
    for name, t in IMAGE_MSG.items():
        if t == msgtype:
            return name
    raise Ws3dError(f"{msgtype} is not an image message type ({sorted(IMAGE_MSG.values())})")


def _topics(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise Ws3dError("a topic list must name at least one topic")
    return names


@dataclass(frozen=True)
class SensorSet:
    """What feeds the Frames of a bag (module docstring); ``None`` = discover/detect."""

    points: str | None = None
    images: tuple[str, ...] | None = None
    camera_infos: tuple[str, ...] | None = None
    calibration: Path | None = None
    labels: str | None = None
    label_sidecars: Path | None = None
    label_map: Path | None = None
    intensity_range: IntensityRange | None = None
    use_labels: bool = True

    def __post_init__(self) -> None:
        if self.camera_infos is not None:
            if self.images is None:
                raise Ws3dError("--camera-info needs --images (one camera_info per image topic)")
            if len(self.camera_infos) != len(self.images):
                raise Ws3dError(
                    f"--camera-info lists {len(self.camera_infos)} topics for "
                    f"{len(self.images)} --images topics; give one per image topic, in order"
                )
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise Ws3dError(f"calibration file {self.calibration} does not exist")
        if self.label_sidecars is not None and not Path(self.label_sidecars).is_dir():
            raise Ws3dError(f"label sidecars directory {self.label_sidecars} does not exist")
        if self.label_map is not None and not Path(self.label_map).is_file():
            raise Ws3dError(f"label map {self.label_map} does not exist")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SensorSet:
        """The flags of :func:`add_sensor_arguments` (absent ones are ``None``)."""
        rng = getattr(args, "intensity_range", None)
        return cls(
            points=getattr(args, "points", None),
            images=_topics(getattr(args, "images", None)),
            camera_infos=_topics(getattr(args, "camera_info", None)),
            calibration=getattr(args, "calibration", None),
            labels=getattr(args, "labels", None),
            label_sidecars=getattr(args, "label_sidecars", None),
            label_map=getattr(args, "label_map", None),
            intensity_range=None if rng is None else parse_range(rng),
        )

    def camera_info_for(self, image: str) -> str | None:
        """The camera_info topic given for ``image`` (``None``: the one beside it)."""
        if self.camera_infos is None or self.images is None:
            return None
        return dict(zip(self.images, self.camera_infos, strict=True)).get(image)


SENSOR_FLAGS_HELP = """\
sensors (default: discovered from the bag; `ws3d info BAG` prints the choice):
  --points TOPIC          LiDAR PointCloud2 topic
  --images T1[,T2...]     camera image topics, sensor_msgs/Image or CompressedImage
  --camera-info T1[,...]  their camera_info topics, in the same order
                          (default: <namespace>/camera_info beside each image)
  --calibration FILE      extrinsics YAML, KITTI calib.txt (any name) or nuScenes JSON
  --labels TOPIC          labels PointCloud2 (fields label [, instance]); ws3d infer's
                          /panoptic/points works too
  --intensity-range LO,HI the input's intensity scale (default: max of the first sweeps
                          snapped to 0-1, 0-255 or 0-65535)
"""


def add_sensor_arguments(
    parser: argparse.ArgumentParser, *, labels: bool = True, sidecars: bool = False
) -> None:
    """Add the sensor-set flags (module docstring) to a command's parser."""
    group = parser.add_argument_group("sensors (default: discovered from the bag)")
    group.add_argument("--points", metavar="TOPIC", help="LiDAR PointCloud2 topic")
    group.add_argument(
        "--images",
        metavar="TOPIC[,TOPIC...]",
        help="camera image topics (sensor_msgs/Image or CompressedImage), comma-separated",
    )
    group.add_argument(
        "--camera-info",
        metavar="TOPIC[,TOPIC...]",
        help="camera_info topics in --images order (default: <namespace>/camera_info)",
    )
    group.add_argument(
        "--calibration",
        type=Path,
        metavar="FILE",
        help="extrinsics YAML, KITTI calib.txt (any name) or nuScenes-style JSON "
        "(default: /tf_static)",
    )
    group.add_argument(
        "--intensity-range",
        metavar="LO,HI",
        help="the input's intensity scale, e.g. 0,255 (default: detected from the first sweeps)",
    )
    if labels:
        group.add_argument(
            "--labels",
            metavar="TOPIC",
            help="labels PointCloud2 topic (fields label [, instance]); "
            "the /panoptic/points of `ws3d infer` works too",
        )
    if sidecars:
        group.add_argument(
            "--label-sidecars",
            type=Path,
            metavar="DIR",
            help="SemanticKITTI labels/ directory (NNNNNN.label per sweep, in bag order)",
        )
        group.add_argument(
            "--label-map",
            type=Path,
            metavar="FILE",
            help="learning map of the sidecars' raw ids to classes, e.g. "
            "config/label_maps/semantic_kitti.yaml",
        )


def override_flags(topics: Any, sensors: SensorSet | None = None) -> str:
    """The flags that pin a discovered :class:`~ws3d_ros.data.frames.TopicMap`."""
    parts = [f"--points {topics.points}"]
    if topics.cameras:
        parts.append("--images " + ",".join(c.image for c in topics.cameras))
        if all(c.camera_info for c in topics.cameras):
            parts.append("--camera-info " + ",".join(c.camera_info for c in topics.cameras))
    if topics.labels:
        parts.append(f"--labels {topics.labels}")
    if sensors is not None:
        for flag, value in (
            ("--calibration", sensors.calibration),
            ("--label-sidecars", sensors.label_sidecars),
            ("--label-map", sensors.label_map),
        ):
            if value is not None:
                parts.append(f"{flag} {value}")
    return " ".join(parts)


# ----------------------------------------------------------------------------- calibration
@dataclass
class Calibration:
    """A calibration file's content: extrinsics per camera, maybe intrinsics."""

    path: Path
    kind: str  # "yaml" | "kitti" | "nuscenes"
    extrinsics: dict[str, Transform] = field(default_factory=dict)
    #: camera -> (K 3x3, P 3x4 or None): pinhole intrinsics with no size (the bag's
    #: camera_info or image gives the size)
    intrinsics: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)

    def camera_model(self, camera: str, width: int, height: int, frame_id: str = "") -> Any:
        """A :class:`CameraModel` of ``camera`` from the file's intrinsics at this size."""
        K, P = self.intrinsics[camera]
        return CameraModel(width, height, K, np.zeros(0), "none", P=P, frame_id=frame_id)


def _looks_like_kitti(path: Path) -> bool:
    try:
        head = path.read_text(errors="replace")[:20000]
    except OSError:
        return False
    keys = {line.partition(":")[0].strip() for line in head.splitlines() if ":" in line}
    return bool(keys & {"P2", "P_rect_02"}) and bool(keys & {"Tr", "Tr_velo_to_cam"})


def _match_camera(channel: str, cameras: Sequence[str]) -> str | None:
    low = channel.lower()
    for cam in cameras:
        if cam.lower() == low or cam.lower().endswith("_" + low) or low.endswith(cam.lower()):
            return cam
    return None


def _load_nuscenes(path: Path, doc: Mapping[str, Any], cameras: Sequence[str]) -> Calibration:
    records = {str(k): v for k, v in doc.items() if isinstance(v, Mapping)}
    lidars = [k for k in records if k.upper().startswith("LIDAR")]
    if len(lidars) != 1:
        raise CalibrationError(
            f"{path}: nuScenes-style calibration needs exactly one LIDAR_* record, found "
            f"{lidars or 'none'} (records: {sorted(records)})"
        )
    try:
        T_ego_lidar = from_nuscenes_sensor(records[lidars[0]])
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: {lidars[0]}: {exc}") from None
    calib = Calibration(path, "nuscenes")
    for channel, record in records.items():
        if channel in lidars:
            continue
        cam = _match_camera(channel, cameras) if cameras else channel
        if cam is None:
            continue
        try:
            T_ego_cam = from_nuscenes_sensor(record)
        except CalibrationError as exc:
            raise CalibrationError(f"{path}: {channel}: {exc}") from None
        calib.extrinsics[cam] = T_ego_cam.inverse() @ T_ego_lidar
        if record.get("camera_intrinsic") is not None:
            K = np.asarray(record["camera_intrinsic"], np.float64).reshape(3, 3)
            calib.intrinsics[cam] = (K, None)
    if cameras and not calib.extrinsics:
        raise CalibrationError(
            f"{path}: no record matches a camera of the bag {list(cameras)} "
            f"(records: {sorted(records)})"
        )
    return calib


def load_calibration(path: str | Path, cameras: Sequence[str] = ()) -> Calibration:
    """Read ``path`` (module docstring); ``cameras`` are the bag's camera names in order."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} does not exist")
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        try:
            if path.suffix.lower() == ".json":
                doc = json.loads(path.read_text())
            else:
                import yaml

                doc = yaml.safe_load(path.read_text())
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"cannot read calibration {path}: {exc}") from None
        except Exception as exc:  # yaml.YAMLError
            raise CalibrationError(f"{path} is not valid YAML: {exc}") from None
        if isinstance(doc, Mapping) and any(
            isinstance(v, Mapping) and "translation" in v and "rotation" in v for v in doc.values()
        ):
            return _load_nuscenes(path, doc, cameras)
        if path.suffix.lower() == ".json":
            raise CalibrationError(
                f"{path}: a JSON calibration must map channels (LIDAR_TOP, CAM_FRONT, ...) to "
                "nuScenes calibrated_sensor records (translation, rotation)"
            )
        calib = Calibration(path, "yaml", load_extrinsics_yaml(path))
        unknown = [c for c in cameras if c not in calib.extrinsics]
        if cameras and len(unknown) == len(cameras):
            raise CalibrationError(
                f"{path}: no entry is named after a camera of the bag {list(cameras)} "
                f"(entries: {sorted(calib.extrinsics)})"
            )
        return calib
    if not _looks_like_kitti(path):
        raise CalibrationError(
            f"{path}: not a calibration file: looked for an extrinsics YAML (.yaml), a "
            "nuScenes-style JSON, or a KITTI calib.txt (P2 and Tr/Tr_velo_to_cam lines)"
        )
    kitti = load_kitti_calib(path)
    calib = Calibration(path, "kitti")
    if cameras:
        calib.extrinsics[cameras[0]] = kitti.T_cam_from_lidar
        calib.intrinsics[cameras[0]] = (kitti.P2[:, :3].copy(), kitti.P2.copy())
    return calib
