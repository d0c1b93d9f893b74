"""rosbag2 -> synchronised :class:`Frame` iterator (the one bag reader of the project).

Contract:
- Opens any rosbag2 (MCAP/sqlite3) through :class:`BagReader` and discovers
  the LiDAR topic (PointCloud2), the cameras (Image or CompressedImage topics
  with a ``camera_info`` beside them), and the ground-truth labels topic
  (PointCloud2 with ``label``/``instance`` fields); every choice can be
  overridden by name.
- Calibration comes from ``/tf_static`` (camera optical frame <- LiDAR frame)
  plus each camera's CameraInfo (the latest one received; every camera starts
  with its first one in the bag, whatever order the recorder logged image and
  info in), or from a calibration override
  (``{camera: Transform}``), e.g. loaded from a KITTI ``calib.txt``.
- Messages stream in log order through the project's
  :class:`~ws3d_ros.sync.PivotSynchronizer`: the sweep drives the output, a
  sweep whose image is late or missing still becomes a Frame with that
  camera's ``image=None``, and labels join on the exact sweep stamp. Memory is
  bounded by the synchroniser queues, not by the bag size.
- Bad messages (codec errors) are counted by reason in :class:`FrameStats`
  and skipped; they never stop iteration.
- :func:`assemble_frame` (one synchronised set of messages -> Frame) is shared
  with the perception node, so a sweep becomes the same Frame live and offline.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.bag import BagReader, SkippedRecord, TopicInfo
from ws3d_ros.data.frame import CameraView, Frame
from ws3d_ros.data.intensity import DETECT_SWEEPS, max_intensity, snap_range
from ws3d_ros.data.labels import (
    LabelClasses,
    LabelMap,
    SidecarLabels,
    load_label_map,
    output_label_classes,
)
from ws3d_ros.data.sensors import Calibration, SensorSet, load_calibration
from ws3d_ros.errors import BagError, CalibrationError, MessageFormatError, Ws3dError
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.geometry.tf_tree import TransformTree
from ws3d_ros.msg.image import to_rgb8
from ws3d_ros.msg.kit import stamp_to_ns
from ws3d_ros.msg.pointcloud2 import cloud_to_array
from ws3d_ros.sync import PivotSynchronizer

log = logging.getLogger(__name__)

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
IMAGE_SUFFIXES = ("/image_raw", "/image_rect_color", "/image_rect", "/image_color", "/image")
LABELS_STREAM = "__labels__"


@dataclass(frozen=True)
class CameraTopics:
    name: str
    image: str
    camera_info: str


@dataclass(frozen=True)
class TopicMap:
    """Which bag topics feed a Frame."""

    points: str
    cameras: tuple[CameraTopics, ...]
    labels: str | None
    tf_static: str | None


@dataclass
class FrameStats:
    """What happened to the bag's messages on the way to frames."""

    frames: int = 0
    frames_with_all_cameras: int = 0
    missing_images: Counter = field(default_factory=Counter)  # camera -> sweeps without image
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    sync: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frames_with_all_cameras": self.frames_with_all_cameras,
            "missing_images": dict(self.missing_images),
            "dropped": dict(self.dropped),
            "sync": self.sync,
        }


def camera_name_of(image_topic: str) -> str:
    """``/camera/front/image_raw`` -> ``front``; ``/camera/image_raw`` -> ``camera``."""
    ns = camera_namespace(image_topic)
    return ns.rstrip("/").rsplit("/", 1)[-1] or "camera"


def camera_namespace(image_topic: str) -> str:
    topic = image_topic.removesuffix("/compressed")
    for suffix in IMAGE_SUFFIXES:
        if topic.endswith(suffix):
            return topic[: -len(suffix)]
    return topic.rsplit("/", 1)[0]


#: Topics the project itself publishes/writes (``panoptic/points``, ``panoptic/overlay``,
#: ...): never taken as a sensor by discovery, only when named with a flag.
OUTPUT_NAMESPACE = "panoptic"


def is_project_output(name: str) -> bool:
    """``/panoptic/points``, ``/robot/panoptic/overlay``, ...: the project's outputs."""
    return OUTPUT_NAMESPACE in name.strip("/").split("/")[:-1]


def _is_label_topic(name: str, fields: Sequence[str] | None = None) -> bool:
    if fields is not None:
        return "label" in fields
    last = name.rsplit("/", 1)[-1]
    return "label" in last or last in ("gt", "ground_truth")


def _is_lidar_candidate(name: str, fields: Sequence[str] | None) -> bool:
    if is_project_output(name):
        return False
    if fields is None:
        return not _is_label_topic(name)
    return "x" in fields


def _lidar_rank(name: str, count: int, fields: Sequence[str] | None) -> tuple:
    """Sort key of a LiDAR candidate: ring/intensity fields first, then clouds without
    labels, then sweep-like names, then the busiest."""
    f = set(fields or ())
    sensor_fields = (-(("ring" in f) + ("intensity" in f)), "label" in f)
    last = name.rsplit("/", 1)[-1]
    named = not (last.endswith("points") or last.endswith("pointcloud"))
    return (sensor_fields, named, "depth" in name, -count, name)


def _check_type(
    topics: Mapping[str, TopicInfo], name: str, flag: str, types: Sequence[str]
) -> None:
    if name not in topics:
        raise BagError(f"{flag} {name}: topic is not in the bag (topics: {sorted(topics)})")
    if topics[name].msgtype not in types:
        raise BagError(f"{flag} {name} is a {topics[name].msgtype}, expected {' or '.join(types)}")


def discover_topics(
    topics: Mapping[str, TopicInfo],
    *,
    points: str | None = None,
    images: Sequence[str] | None = None,
    labels: str | None = None,
    use_labels: bool = True,
    camera_infos: Sequence[str] | None = None,
    cloud_fields: Mapping[str, Sequence[str]] | None = None,
    uncalibrated_ok: bool = False,
) -> TopicMap:
    """Pick the LiDAR, camera and label topics of a bag (or check the given ones).

    Discovery never picks the project's own outputs (:func:`is_project_output`); a
    LiDAR candidate is a PointCloud2 without a ``label`` field, those with ``ring`` /
    ``intensity`` fields first (``cloud_fields``: each cloud topic's field names, when
    known); labels are a PointCloud2 with a ``label`` field (the sweep itself when it
    carries one and no other cloud does). ``camera_infos`` pairs with
    ``images`` in order (default: ``<namespace>/camera_info``); with ``uncalibrated_ok``
    an image without camera_info is kept (``camera_info=""``: the calibration file gives
    its intrinsics).
    """
    fields = dict(cloud_fields or {})
    by_type: dict[str, list[str]] = {}
    for info in topics.values():
        by_type.setdefault(info.msgtype, []).append(info.name)
    clouds = sorted(by_type.get(POINTCLOUD2, []))

    if points is not None:
        _check_type(topics, points, "--points", [POINTCLOUD2])
    if labels is not None:
        _check_type(topics, labels, "--labels", [POINTCLOUD2])
    for image in images or []:
        _check_type(topics, image, "--images", IMAGE_TYPES)
    for info in camera_infos or []:
        _check_type(topics, info, "--camera-info", [CAMERA_INFO])
    if points is None:
        candidates = [t for t in clouds if _is_lidar_candidate(t, fields.get(t)) and t != labels]
        if not candidates:
            raise BagError(
                f"no PointCloud2 LiDAR topic in the bag (topics: {sorted(topics)}); "
                "pass --points TOPIC"
            )
        candidates.sort(key=lambda t: _lidar_rank(t, topics[t].count, fields.get(t)))
        points = candidates[0]
    if labels is None and use_labels:
        found = [
            t for t in clouds if _is_label_topic(t, fields.get(t)) and not is_project_output(t)
        ]
        # A separate labels cloud first; else labels carried inside the sweep itself.
        found.sort(key=lambda t: (t == points, t))
        labels = found[0] if found else None

    image_topics = list(images) if images is not None else []
    if images is None:
        for type_name in IMAGE_TYPES:
            image_topics += [t for t in by_type.get(type_name, []) if not is_project_output(t)]
        # An Image and its /compressed twin: keep the raw one.
        raw = set(image_topics)
        image_topics = [
            t for t in image_topics if not (t.endswith("/compressed") and t[:-11] in raw)
        ]
        image_topics.sort()
    given_infos = dict(zip(images or [], camera_infos or [], strict=False))
    infos = set(by_type.get(CAMERA_INFO, []))
    cameras = []
    for image in image_topics:
        info = given_infos.get(image) or camera_namespace(image) + "/camera_info"
        if info not in infos:
            if uncalibrated_ok:
                info = ""
            elif images is not None:
                raise BagError(
                    f"no camera_info topic {info} beside image topic {image}; "
                    "pass --camera-info TOPIC (or a --calibration file with intrinsics)"
                )
            else:
                log.warning("image topic %s has no %s: not used", image, info)
                continue
        cameras.append(CameraTopics(camera_name_of(image), image, info))
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):  # /a/cam/image_raw and /b/cam/image_raw
        cameras = [
            CameraTopics(
                camera_namespace(c.image).strip("/").replace("/", "_"), c.image, c.camera_info
            )
            for c in cameras
        ]
    tf_static = "/tf_static" if "/tf_static" in topics else None
    return TopicMap(points, tuple(cameras), labels, tf_static)


def cloud_fields_of(reader: BagReader, names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Field names of the first message of each PointCloud2 topic in ``names``."""
    out: dict[str, tuple[str, ...]] = {}
    wanted = [n for n in names if reader.topics[n].count > 0]
    if not wanted:
        return out
    for topic, _, msg in reader.messages(wanted):
        if topic not in out:
            out[topic] = tuple(f.name for f in msg.fields)
            if len(out) == len(wanted):
                break
    return out


def read_static_tf(reader: BagReader, topic: str | None) -> TransformTree:
    tree = TransformTree()
    if topic is not None:
        for _, _, msg in reader.messages([topic]):
            tree.add_message(msg)
    return tree


def _labels_from_cloud(msg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    arr = cloud_to_array(msg).reshape(-1)
    names = arr.dtype.names or ()
    if "label" not in names:
        raise Ws3dError(f"labels cloud has no 'label' field (fields: {names})")
    labels = arr["label"].astype(np.uint16)
    instances = arr["instance"].astype(np.uint32) if "instance" in names else None
    return labels, instances


class BagFrames:
    """Iterate synchronised frames of one bag; see the module docstring.

    ``slop_ns`` bounds |image stamp - sweep stamp|; ``timeout_ns`` is how long
    (in bag log time) a sweep waits for its images before it is emitted with
    the late cameras missing.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        points: str | None = None,
        images: Sequence[str] | None = None,
        labels: str | None = None,
        use_labels: bool = True,
        calibration: Mapping[str, Transform] | None = None,
        camera_models: Mapping[str, CameraModel] | None = None,
        slop_ns: int = 50_000_000,
        timeout_ns: int = 500_000_000,
        queue_size: int = 20,
        decode_images: bool = True,
        sensors: SensorSet | None = None,
    ) -> None:
        self.path = Path(path)
        self.sensors = sensors = sensors or SensorSet(
            points=points, images=None if images is None else tuple(images), labels=labels
        )
        use_labels = use_labels and sensors.use_labels
        self._reader = BagReader(self.path)
        topics = self._reader.topics
        fields: dict[str, tuple[str, ...]] = {}
        if sensors.points is None or (sensors.labels is None and use_labels):
            clouds = [t for t, i in topics.items() if i.msgtype == POINTCLOUD2]
            fields = cloud_fields_of(self._reader, clouds)
        self.topics = discover_topics(
            topics,
            points=sensors.points,
            images=sensors.images,
            labels=sensors.labels,
            use_labels=use_labels,
            camera_infos=sensors.camera_infos,
            cloud_fields=fields,
            uncalibrated_ok=sensors.calibration is not None,
        )
        self.tf = read_static_tf(self._reader, self.topics.tf_static)
        self.calibration = dict(calibration or {})
        self.calibration_file: Calibration | None = None
        if sensors.calibration is not None:
            self.calibration_file = load_calibration(sensors.calibration, self.camera_names)
            for name, T in self.calibration_file.extrinsics.items():
                self.calibration.setdefault(name, T)
        self.camera_models = dict(camera_models or {})
        self._intrinsics_only_cameras()
        self.label_map: LabelMap | None = (
            load_label_map(sensors.label_map) if sensors.label_map is not None else None
        )
        self.sidecars = (
            SidecarLabels(sensors.label_sidecars, self.label_map)
            if sensors.label_sidecars is not None and use_labels
            else None
        )
        #: the classes of a labels topic written by the project (from its label_map; ids
        #: renumbered 0..C-1), or of the label map file; ``None``: the bag's classes.yaml
        self.label_classes: LabelClasses | None = self._output_label_classes()
        if self.label_classes is None and self.label_map is not None:
            m = self.label_map
            self.label_classes = LabelClasses(m.names, m.things, m.colors)
        self.intensity_range, self.intensity_origin = self._intensity_range()
        self.slop_ns = slop_ns
        self.timeout_ns = timeout_ns
        self.queue_size = queue_size
        self.decode_images = decode_images
        self.stats = FrameStats()

    def _intrinsics_only_cameras(self) -> None:
        """Cameras without camera_info: the calibration file's intrinsics at the size of
        their first image."""
        for cam in self.topics.cameras:
            if cam.camera_info or cam.name in self.camera_models:
                continue
            calib = self.calibration_file
            if calib is None or cam.name not in calib.intrinsics:
                raise CalibrationError(
                    f"camera {cam.name} ({cam.image}) has no camera_info topic and the "
                    "calibration file gives it no intrinsics; pass --camera-info TOPIC"
                )
            for _, _, msg in self._reader.messages([cam.image]):
                h, w = to_rgb8(msg).shape[:2]
                self.camera_models[cam.name] = calib.camera_model(
                    cam.name, w, h, getattr(msg.header, "frame_id", "")
                )
                break

    def _output_label_classes(self) -> LabelClasses | None:
        labels = self.topics.labels
        if labels is None or not is_project_output(labels):
            return None
        map_topic = labels.rsplit("/", 1)[0] + "/label_map"
        if map_topic not in self._reader.topics:
            return None
        found = None
        for _, _, msg in self._reader.messages([map_topic]):
            found = output_label_classes(msg.data)
        return found

    def _intensity_range(self) -> tuple[tuple[float, float] | None, str]:
        """The LiDAR's intensity range: declared, else max of the first sweeps snapped."""
        if self.sensors.intensity_range is not None:
            return self.sensors.intensity_range, "declared"
        peak: float | None = None
        seen = 0
        for _, _, msg in self._reader.messages([self.topics.points]):
            try:
                value = max_intensity(cloud_to_array(msg).reshape(-1))
            except Ws3dError:
                continue
            seen += 1
            if value is not None:
                peak = value if peak is None else max(peak, value)
            if seen >= DETECT_SWEEPS:
                break
        if peak is None:
            return None, "no intensity field"
        return snap_range(peak), f"detected: max {peak:g} over the first {seen} sweeps"

    def close(self) -> None:
        self._reader.close()

    @property
    def skipped(self) -> list[SkippedRecord]:
        """Corrupt records skipped so far (see :class:`~ws3d_ros.data.bag.BagReader`)."""
        return list(self._reader.skipped)

    def __enter__(self) -> BagFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.topics.cameras]

    def extrinsics(self, camera: str, camera_frame: str, lidar_frame: str) -> Transform:
        """``T_cam_from_lidar`` for ``camera``: the override, else ``/tf_static``."""
        if camera in self.calibration:
            return self.calibration[camera]
        try:
            return self.tf.lookup(camera_frame, lidar_frame)
        except CalibrationError as exc:
            raise CalibrationError(
                f"no extrinsics for camera {camera!r} ({camera_frame} <- {lidar_frame}): {exc}; "
                "record /tf_static or pass a calibration file"
            ) from exc

    def __iter__(self) -> Iterator[Frame]:
        cams = {c.image: c.name for c in self.topics.cameras}
        infos = {c.camera_info: c.name for c in self.topics.cameras if c.camera_info}
        streams = ["points", *cams.values()]
        offsets = {}
        slops = self.slop_ns
        labels_apart = self.topics.labels not in (None, self.topics.points)
        if labels_apart:
            streams.append(LABELS_STREAM)
        sync = PivotSynchronizer(
            streams,
            "points",
            slop_ns=slops,
            timeout_ns=self.timeout_ns,
            queue_size=self.queue_size,
            offsets_ns=offsets,
        )
        # Prime each camera with its first CameraInfo: recorders interleave an image
        # and its camera_info in either order, and the first sweep must not lose
        # its cameras because the info was logged a moment after the image.
        latest_info = self._first_camera_infos(infos)
        wanted = [self.topics.points, *cams, *infos]
        if labels_apart:
            wanted.append(self.topics.labels)
        index = 0
        for topic, log_ns, msg in self._reader.messages(wanted):
            if topic in infos:
                latest_info[infos[topic]] = msg
                continue
            try:
                stamp = stamp_to_ns(msg.header.stamp)
            except AttributeError:
                self.stats.dropped["no_header"] += 1
                continue
            if topic == self.topics.points:
                name = "points"
            elif labels_apart and topic == self.topics.labels:
                name = LABELS_STREAM
            else:
                name = cams[topic]
            for matched in sync.add(name, stamp, msg, now_ns=log_ns):
                frame = self._build(matched, streams, latest_info, index)
                if frame is not None:
                    index += 1
                    yield frame
            for matched in sync.poll(log_ns):
                frame = self._build(matched, streams, latest_info, index)
                if frame is not None:
                    index += 1
                    yield frame
        for matched in sync.flush():
            frame = self._build(matched, streams, latest_info, index)
            if frame is not None:
                index += 1
                yield frame
        self.stats.sync = sync.stats()
        for reason, count in sync.drops.items():
            self.stats.dropped[f"sync_{reason}"] += count

    def _first_camera_infos(self, infos: Mapping[str, str]) -> dict[str, Any]:
        """Camera name -> its first CameraInfo (reads only until every camera has one)."""
        first: dict[str, Any] = {}
        counts = self._reader.topics
        pending = {
            topic: name
            for topic, name in infos.items()
            if topic and name not in self.camera_models and counts[topic].count > 0
        }
        if not pending:
            return first
        for topic, _, msg in self._reader.messages(list(pending)):
            first.setdefault(pending[topic], msg)
            if len(first) == len(pending):
                break
        return first

    def _camera_model(self, name: str, info_msg: Any | None) -> CameraModel | None:
        if name in self.camera_models:
            return self.camera_models[name]
        if info_msg is None:
            return None
        try:
            return CameraModel.from_camera_info(info_msg)
        except CalibrationError:
            calib = self.calibration_file
            if calib is None or name not in calib.intrinsics:
                raise
            # e.g. a converter's camera_info with an empty K: the file's intrinsics at
            # the camera_info's image size.
            return calib.camera_model(
                name, int(info_msg.width), int(info_msg.height), info_msg.header.frame_id
            )

    def _build(
        self, matched: Any, streams: list[str], latest_info: dict[str, Any], index: int
    ) -> Frame | None:
        items = dict(zip(streams, matched.items, strict=True))
        stamps = dict(zip(streams, matched.stamps_ns, strict=True))
        labels = instances = None
        n_points: int | None = None
        label_msg = items["points"] if self.topics.labels == self.topics.points else None
        if LABELS_STREAM in items:
            label_msg = items[LABELS_STREAM]
            if label_msg is None:
                self.stats.missing_images["labels"] += 1
        if label_msg is not None:
            try:
                labels, instances = _labels_from_cloud(label_msg)
                n_points = len(labels)
            except Ws3dError as exc:
                self.stats.dropped["bad_labels"] += 1
                log.warning("labels at %d ignored: %s", stamps["points"], exc)
        frame = assemble_frame(
            items,
            stamps,
            [c.name for c in self.topics.cameras],
            lambda name: self._camera_model(name, latest_info.get(name)),
            self.extrinsics,
            self.stats,
            decode_images=self.decode_images,
            index=index,
            source=str(self.path),
        )
        if frame is None:
            return None
        frame.intensity_range = self.intensity_range
        frame.intensity_origin = self.intensity_origin
        if labels is None and self.sidecars is not None:
            try:
                found = self.sidecars.read(index, len(frame.points))
            except Ws3dError as exc:
                self.stats.dropped["bad_labels"] += 1
                log.warning("labels of sweep %d ignored: %s", index, exc)
                found = None
            if found is not None:
                frame.labels, frame.instances = found
            return frame
        if labels is not None:
            if n_points == len(frame.points):
                if self.label_map is not None:
                    labels = self.label_map.apply(labels)
                elif self.label_classes is not None:
                    labels = self.label_classes.apply(labels)
                frame.labels, frame.instances = labels, instances
            else:
                self.stats.dropped["bad_labels"] += 1
                log.warning(
                    "labels at %d ignored: labels cloud has %d points, sweep has %d",
                    stamps["points"],
                    n_points,
                    len(frame.points),
                )
        return frame


def cloud_problem(points: np.ndarray) -> str | None:
    """Why a decoded sweep cannot be labelled at all: ``"empty_cloud"`` (no points) or
    ``"nonfinite_cloud"`` (no point has finite x, y, z); ``None`` when usable.

    A sweep with SOME non-finite points is usable (organised clouds mark missing
    returns with NaN); those points come out unknown.
    """
    if len(points) == 0:
        return "empty_cloud"
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=-1)
    if not np.isfinite(xyz).all(axis=-1).any():
        return "nonfinite_cloud"
    return None


def assemble_frame(
    items: Mapping[str, Any],
    stamps: Mapping[str, int | None],
    cameras: Sequence[str],
    camera_model: Callable[[str], CameraModel | None],
    extrinsics: Callable[[str, str, str], Transform],
    stats: FrameStats,
    *,
    decode_images: bool = True,
    reject_unusable: bool = False,
    skip_uncalibrated: bool = False,
    check_image_size: bool = False,
    index: int = 0,
    source: str = "",
) -> Frame | None:
    """One synchronised set of messages -> :class:`Frame` (shared by the bag reader and
    the perception node).

    ``items``/``stamps`` map stream names (``"points"`` and each camera name) to the
    message and header stamp, ``None`` for a camera missing from the set.
    ``camera_model(name)`` gives the camera's model (``None``: no camera_info yet; a
    :class:`CalibrationError` counts ``bad_camera_info``); ``extrinsics(camera,
    camera_frame, lidar_frame)`` gives ``T_cam_from_lidar``. A camera without a model
    (or, with ``skip_uncalibrated``, without extrinsics: ``no_extrinsics``) has no view;
    a camera whose image is missing or undecodable (``bad_image``) has a view with
    ``image=None``; both count in ``stats.missing_images``. So does an image with no
    pixels (``empty_image``) and, with ``check_image_size``, an image whose size differs
    from its camera_info's (``image_size_mismatch``: its pixels would be read at the wrong
    places). Returns ``None`` (counted in ``stats.dropped``) when the cloud cannot be
    decoded or lacks an ``x``, ``y`` or ``z`` field (``bad_cloud``) or, with
    ``reject_unusable``, has no usable point (:func:`cloud_problem`).
    """
    cloud_msg = items["points"]
    try:
        points = cloud_to_array(cloud_msg).reshape(-1)
        absent = [f for f in ("x", "y", "z") if f not in (points.dtype.names or ())]
        if absent:
            raise MessageFormatError(f"the cloud has no field {', '.join(absent)}")
    except Ws3dError as exc:
        stats.dropped["bad_cloud"] += 1
        log.warning("sweep at %s skipped: %s", stamps.get("points"), exc)
        return None
    if reject_unusable:
        problem = cloud_problem(points)
        if problem is not None:
            stats.dropped[problem] += 1
            log.warning("sweep at %s skipped: %s", stamps.get("points"), problem)
            return None
    lidar_frame = cloud_msg.header.frame_id
    views = []
    for name in cameras:
        try:
            model = camera_model(name)
        except CalibrationError as exc:
            stats.dropped["bad_camera_info"] += 1
            log.warning("camera %s: %s", name, exc)
            model = None
        if model is None:
            stats.missing_images[name] += 1
            continue
        try:
            T = extrinsics(name, model.frame_id or name, lidar_frame)
        except CalibrationError as exc:
            if not skip_uncalibrated:
                raise
            stats.dropped["no_extrinsics"] += 1
            stats.missing_images[name] += 1
            log.warning("camera %s not used: %s", name, exc)
            continue
        image = None
        msg = items.get(name)
        if msg is not None and decode_images:
            try:
                image = to_rgb8(msg)
            except Ws3dError as exc:
                stats.dropped["bad_image"] += 1
                log.warning("camera %s image skipped: %s", name, exc)
        elif msg is not None:
            image = np.empty((0, 0, 3), np.uint8)
        if image is not None and decode_images and image.size == 0:
            stats.dropped["empty_image"] += 1
            log.warning("camera %s image skipped: it has no pixels", name)
            image = None
        if (
            image is not None
            and check_image_size
            and model.width > 0
            and image.shape[:2] != (model.height, model.width)
        ):
            stats.dropped["image_size_mismatch"] += 1
            log.warning(
                "camera %s image skipped: %dx%d pixels, its camera_info says %dx%d",
                name,
                image.shape[1],
                image.shape[0],
                model.width,
                model.height,
            )
            image = None
        if image is None:
            stats.missing_images[name] += 1
        views.append(CameraView(name, model, T, image, stamps.get(name)))
    stats.frames += 1
    if len(views) == len(cameras) and all(v.image is not None for v in views):
        stats.frames_with_all_cameras += 1
    return Frame(
        stamp_ns=int(stamps["points"]),  # type: ignore[arg-type]
        frame_id=lidar_frame,
        points=points,
        views=views,
        index=index,
        source=source,
    )


def iter_frames(path: str | Path, **kwargs: Any) -> Iterator[Frame]:
    """Convenience: ``for frame in iter_frames(bag): ...`` (see :class:`BagFrames`)."""
    with BagFrames(path, **kwargs) as frames:
        yield from frames
