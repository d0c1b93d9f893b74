"""Parameters of the ``ws3d_perception`` node: the one source of truth (no rclpy here).

Contract:
- :data:`PARAMETERS` declares every parameter once: name, type, default, description,
  range or choices, ``read_only`` (a change needs a restart) and a value check. The node
  turns each :class:`ParamSpec` into an rclpy ``ParameterDescriptor``;
  ``config/perception.yaml`` and ``docs/parameters.md`` are generated from this table by
  ``scripts/gen_param_docs.py`` (a test keeps them current).
- Names containing ``<camera>`` are declared once per camera listed in ``cameras``
  (:func:`expand`); :func:`camera_name` maps a camera namespace to that name.
- :func:`check_value` checks one value against its spec; :func:`check_update` checks a
  whole proposed parameter state (cross-parameter rules: ``thing_classes`` within
  ``classes``, a valid vocabulary, one extrinsics form per camera). Both raise
  :class:`ParamError` whose text is the reason the node returns in
  ``SetParametersResult``; nothing is changed by a check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ws3d_ros.errors import CalibrationError, Ws3dError
from ws3d_ros.geometry.extrinsics import transform_from_spec
from ws3d_ros.labels import DRIVING_CLASSES, DRIVING_THINGS  # the default vocabulary
from ws3d_ros.runtime.backends import BACKENDS
from ws3d_ros.runtime.pipeline import MODES
from ws3d_ros.runtime.vocabulary import DEFAULT_TEMPLATES, Vocabulary, VocabularyError

__all__ = [
    "CAMERA",
    "NODE_NAME",
    "PARAMETERS",
    "TRANSPORTS",
    "TYPES",
    "ParamError",
    "ParamSpec",
    "camera_name",
    "check_update",
    "check_value",
    "defaults",
    "expand",
    "extrinsics_spec",
    "spec_for",
    "vocabulary_args",
]

NODE_NAME = "ws3d_perception"
CAMERA = "<camera>"
#: Precisions of the torch runtime (the same as ws3d_ros.models.device.precision, which
#: imports torch; a test keeps the two equal).
PRECISIONS = ("fp32", "fp16", "bf16")
#: Image transports a camera can use (image_transport's plugin names).
TRANSPORTS = ("raw", "compressed")
TYPES = ("bool", "integer", "double", "string", "string_array", "double_array")


class ParamError(Ws3dError, ValueError):
    """A parameter value is rejected; the text is the reason given to the caller."""


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter (see the module docstring)."""

    name: str
    type: str
    default: Any
    description: str
    read_only: bool = False
    range: tuple[float, float] | None = None  # inclusive
    choices: tuple[str, ...] = ()
    check: Callable[[Any], None] | None = None
    constraints: str = ""  # human text for the descriptor's additional_constraints

    @property
    def per_camera(self) -> bool:
        return CAMERA in self.name

    def constraint_text(self) -> str:
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        if self.range is not None:
            parts.append(f"range [{self.range[0]:g}, {self.range[1]:g}]")
        if self.constraints:
            parts.append(self.constraints)
        return "; ".join(parts)


def _device(value: str) -> None:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise ParamError(f"device must be 'cpu', 'cuda' or 'cuda:N', found {value!r}")


def _names(what: str) -> Callable[[Sequence[str]], None]:
    def check(values: Sequence[str]) -> None:
        for v in values:
            if not v.strip():
                raise ParamError(f"{what} holds an empty name")
        cleaned = [" ".join(v.split()) for v in values]
        if len(set(cleaned)) != len(cleaned):
            raise ParamError(f"{what} holds duplicates: {sorted(cleaned)}")

    return check


def _non_empty_names(what: str) -> Callable[[Sequence[str]], None]:
    base = _names(what)

    def check(values: Sequence[str]) -> None:
        if not values:
            raise ParamError(f"{what} must not be empty")
        base(values)

    return check


def _templates(values: Sequence[str]) -> None:
    from ws3d_ros.runtime.vocabulary import validate_templates

    try:
        validate_templates(list(values))
    except VocabularyError as exc:
        raise ParamError(str(exc)) from None


def _cameras(values: Sequence[str]) -> None:
    for ns in values:
        if ns and not re.fullmatch(r"/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*", ns):
            raise ParamError(
                f"camera namespace {ns!r} is not a valid ROS name (letters, digits, _ and /)"
            )
    names = [camera_name(ns) for ns in values]
    if len(set(names)) != len(names):
        raise ParamError(f"cameras give duplicate camera names {names}")


def _vector(sizes: tuple[int, ...]) -> Callable[[Sequence[float]], None]:
    def check(values: Sequence[float]) -> None:
        if len(values) not in sizes:
            want = " or ".join(str(s) for s in sizes)
            raise ParamError(f"expected {want} numbers, found {len(values)}")
        if not all(math.isfinite(v) for v in values):
            raise ParamError("values must be finite")

    return check


def _intensity_range(values: Sequence[float]) -> None:
    _vector((0, 2))(values)
    if values and not values[0] < values[1]:
        raise ParamError(f"min must be below max, found {list(values)}")


def _file_path(value: str) -> None:
    if value != value.strip():
        raise ParamError(f"path {value!r} has leading or trailing blanks")


PARAMETERS: tuple[ParamSpec, ...] = (
    # ---------------------------------------------------------------- model
    ParamSpec(
        "model_path",
        "string",
        "",
        "Model to load: a directory written by `ws3d export` (onnxruntime, tensorrt) or a "
        "checkpoint file from `ws3d train` (torch). Needed by modes fusion (the default) "
        "and lidar_only; empty only with mode zero_shot (CLIP weights named in "
        "model_config).",
        read_only=True,
        check=_file_path,
    ),
    ParamSpec(
        "model_config",
        "string",
        "",
        "Model YAML used when model_path is empty (zero-shot, CLIP only); empty: the "
        "package's config/model.yaml.",
        read_only=True,
        check=_file_path,
    ),
    ParamSpec(
        "backend",
        "string",
        "onnxruntime",
        "Inference backend: onnxruntime (CPU robots), tensorrt (NVIDIA GPU, engines built "
        "from the exported ONNX and cached beside it), torch (reference).",
        read_only=True,
        choices=BACKENDS,
    ),
    ParamSpec(
        "device",
        "string",
        "cpu",
        "Compute device: cpu, cuda or cuda:N.",
        read_only=True,
        check=_device,
        constraints="cpu, cuda or cuda:N",
    ),
    ParamSpec(
        "fp16",
        "bool",
        False,
        "TensorRT only: build and run an FP16 engine.",
        read_only=True,
    ),
    ParamSpec(
        "precision",
        "string",
        "fp32",
        "Number format of the CLIP tower and the 3D net on the torch backend: fp32, or "
        "bf16 / fp16 (autocast; on a GPU about 10 % faster with one camera, nearly 2x with "
        "six; labels agree with fp32 on more than 99.7 % of points, docs/runtime.md).",
        read_only=True,
        choices=PRECISIONS,
    ),
    ParamSpec(
        "mode",
        "string",
        "fusion",
        "fusion: LiDAR x CLIP where cameras see points; lidar_only: ignore images; "
        "zero_shot: lifted CLIP features only (points no camera sees are unknown). "
        "fusion and lidar_only need trained 3D weights.",
        choices=MODES,
    ),
    # ----------------------------------------------------------- vocabulary
    ParamSpec(
        "classes",
        "string_array",
        list(DRIVING_CLASSES),
        "Class names in words (the open vocabulary). Changing it re-encodes only new "
        "names, off the executor thread; it applies from the next frame. Class ids are "
        "stable per name for the node's lifetime (see panoptic/label_map).",
        check=_non_empty_names("classes"),
        constraints="non-empty, unique names",
    ),
    ParamSpec(
        "thing_classes",
        "string_array",
        list(DRIVING_THINGS),
        "Class names that have instances; a name not in classes is ignored (so classes "
        "can change alone). The other classes are stuff.",
        check=_names("thing_classes"),
        constraints="unique names",
    ),
    ParamSpec(
        "prompt_templates",
        "string_array",
        list(DEFAULT_TEMPLATES),
        "Prompt templates averaged per class name; each holds one {} for the name.",
        check=_templates,
        constraints="non-empty; each template holds exactly one {}",
    ),
    ParamSpec(
        "score_threshold",
        "double",
        0.0,
        "Points whose class score is below this get label 65535 (unknown).",
        range=(0.0, 1.0),
    ),
    # --------------------------------------------------------------- inputs
    ParamSpec(
        "cameras",
        "string_array",
        [""],
        "Camera namespaces. '' is one camera on the topics image and camera_info (named "
        "'camera'); 'front' subscribes front/image and front/camera_info (named 'front'). "
        "To run without cameras, set mode to lidar_only (images are then not subscribed).",
        read_only=True,
        check=_cameras,
        constraints="valid ROS names, unique camera names",
    ),
    ParamSpec(
        f"image_transport.{CAMERA}",
        "string",
        "raw",
        "How this camera's images arrive (image_transport naming): raw subscribes "
        "<camera>/image (sensor_msgs/Image); compressed subscribes <camera>/image/compressed "
        "(sensor_msgs/CompressedImage, jpeg or png, decoded on the inference thread).",
        read_only=True,
        choices=TRANSPORTS,
    ),
    ParamSpec(
        "qos.sensor_data",
        "bool",
        True,
        "Subscribe with the sensor-data QoS (best effort, keep last qos.depth); false: reliable.",
        read_only=True,
    ),
    ParamSpec(
        "qos.depth",
        "integer",
        5,
        "History depth of the input subscriptions.",
        read_only=True,
        range=(1, 1000),
    ),
    ParamSpec(
        "calibration_file",
        "string",
        "",
        "Extrinsics file: an extrinsics YAML whose entries are named by camera (each "
        "T_camera_from_lidar: matrix or xyz + rpy/quat) or a KITTI calib.txt (one camera). "
        "Empty: extrinsics.<camera>.* parameters, else /tf_static.",
        read_only=True,
        check=_file_path,
    ),
    ParamSpec(
        "use_tf_static",
        "bool",
        True,
        "Look up camera <- LiDAR transforms on /tf_static for cameras without extrinsics "
        "parameters or calibration file entries (needs tf2_msgs).",
        read_only=True,
    ),
    ParamSpec(
        f"extrinsics.{CAMERA}.xyz",
        "double_array",
        [],
        "Translation (m) of T_camera_from_lidar (maps LiDAR points into the camera "
        "optical frame); empty: not given.",
        check=_vector((0, 3)),
        constraints="empty or 3 finite numbers",
    ),
    ParamSpec(
        f"extrinsics.{CAMERA}.rpy",
        "double_array",
        [],
        "Rotation of T_camera_from_lidar as roll, pitch, yaw (rad, ROS fixed axes); "
        "empty: identity when xyz is given.",
        check=_vector((0, 3)),
        constraints="empty or 3 finite numbers",
    ),
    ParamSpec(
        f"extrinsics.{CAMERA}.matrix",
        "double_array",
        [],
        "T_camera_from_lidar as 16 (4x4) or 12 (3x4) numbers, row-major; instead of xyz + rpy.",
        check=_vector((0, 12, 16)),
        constraints="empty, 12 or 16 finite numbers forming a rigid transform",
    ),
    # ----------------------------------------------------------------- sync
    ParamSpec(
        "sync.slop",
        "double",
        0.05,
        "Largest |image stamp - sweep stamp| (s, after time offsets) that pairs an image "
        "with a sweep.",
        range=(0.0, 1.0),
    ),
    ParamSpec(
        "sync.timeout",
        "double",
        0.1,
        "How long (s, wall time) a sweep waits for its images; then it is labelled with "
        "the late cameras on the LiDAR-only path (counted in diagnostics).",
        range=(0.0, 5.0),
    ),
    ParamSpec(
        "sync.queue_size",
        "integer",
        10,
        "Sweeps waiting for images, and messages held per camera.",
        range=(1, 100),
    ),
    ParamSpec(
        "sync.max_stamp_jump",
        "double",
        5.0,
        "A message stamped more than this (s) ahead of or behind its sweep clock is "
        "dropped and counted (drops.sync.stamp_ahead / stamp_behind) without moving its "
        "stream's clock, so one wrongly stamped image cannot stop fusion; 0 turns the "
        "check off.",
        range=(0.0, 3600.0),
    ),
    ParamSpec(
        f"sync.time_offset.{CAMERA}",
        "double",
        0.0,
        "Seconds added to this camera's image stamps before matching (e.g. -0.03 when "
        "its stamps are 30 ms late).",
        range=(-1.0, 1.0),
    ),
    # ------------------------------------------------------------ inference
    ParamSpec(
        "queue_depth",
        "integer",
        1,
        "Frames waiting for inference; when full the oldest is dropped (latest wins, "
        "counted), so a slow backend drops stale frames instead of adding latency.",
        read_only=True,
        range=(1, 16),
    ),
    ParamSpec(
        "intensity_range",
        "double_array",
        [],
        "The LiDAR's intensity range [min, max] (e.g. [0, 255]); intensities are mapped to "
        "the range the model was trained on. Empty: detected from the first sweeps "
        "(0-1, 0-255 or 0-65535) and logged once. Applies from the next sweep.",
        check=_intensity_range,
        constraints="empty or 2 finite numbers, min < max",
    ),
    ParamSpec(
        "max_points",
        "integer",
        1_000_000,
        "Largest sweep (points) the node labels; a larger one is dropped before decoding "
        "and counted (drops.input.too_many_points), so one oversized cloud cannot hold the "
        "worker or the memory.",
        range=(1, 100_000_000),
    ),
    # -------------------------------------------------------------- outputs
    ParamSpec(
        "publish.overlay",
        "bool",
        False,
        "Publish panoptic/overlay: every camera's image with its points coloured by class, "
        "tiled in rows of three (one camera: its image).",
    ),
    ParamSpec(
        "publish.instances",
        "bool",
        True,
        "Publish panoptic/instances: a box and a text label per instance (MarkerArray).",
    ),
    ParamSpec(
        "diagnostics_period",
        "double",
        1.0,
        "Seconds between /diagnostics messages.",
        read_only=True,
        range=(0.1, 60.0),
    ),
)

_BY_NAME = {p.name: p for p in PARAMETERS}


def camera_name(namespace: str) -> str:
    """``''`` -> ``camera``; ``/cams/front`` -> ``cams_front`` (the name used in parameters,
    diagnostics and calibration entries)."""
    ns = namespace.strip("/")
    return ns.replace("/", "_") if ns else "camera"


def expand(cameras: Iterable[str]) -> list[ParamSpec]:
    """Every concrete parameter for these camera namespaces (``<camera>`` filled in)."""
    names = [camera_name(ns) for ns in cameras]
    out: list[ParamSpec] = []
    for p in PARAMETERS:
        if p.per_camera:
            out.extend(replace(p, name=p.name.replace(CAMERA, n)) for n in names)
        else:
            out.append(p)
    return out


def spec_for(name: str) -> ParamSpec:
    """The spec of a concrete parameter name (per-camera names resolve to their template)."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    for p in PARAMETERS:
        if p.per_camera:
            head, tail = p.name.split(CAMERA)
            if name.startswith(head) and name.endswith(tail) and len(name) > len(head + tail):
                return replace(p, name=name)
    raise ParamError(f"unknown parameter {name!r}")


def defaults(cameras: Iterable[str] = ("",)) -> dict[str, Any]:
    """Name -> default value, for these cameras."""
    return {p.name: p.default for p in expand(cameras)}


_PY_TYPES: dict[str, Callable[[Any], bool]] = {
    "bool": lambda v: isinstance(v, bool | np.bool_),
    "integer": lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, float | int | np.floating) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "string_array": lambda v: not isinstance(v, str) and all(isinstance(x, str) for x in v),
    "double_array": lambda v: (
        not isinstance(v, str) and all(isinstance(x, float | int | np.floating) for x in v)
    ),
}


def check_value(spec: ParamSpec, value: Any) -> None:
    """Type, range, choices and the spec's own check; raises :class:`ParamError`."""
    if not _PY_TYPES[spec.type](value):
        raise ParamError(f"{spec.name} must be of type {spec.type}, found {value!r}")
    if spec.type in ("double", "integer") and not math.isfinite(value):
        raise ParamError(f"{spec.name} must be finite, found {value}")
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        raise ParamError(
            f"{spec.name} must be within [{spec.range[0]:g}, {spec.range[1]:g}], found {value}"
        )
    if spec.choices and value not in spec.choices:
        raise ParamError(f"{spec.name} must be one of {list(spec.choices)}, found {value!r}")
    if spec.check is not None:
        try:
            spec.check(list(value) if spec.type.endswith("array") else value)
        except ParamError as exc:
            raise ParamError(f"{spec.name}: {exc}") from None


def extrinsics_spec(values: Mapping[str, Any], camera: str) -> dict[str, Any] | None:
    """The :func:`transform_from_spec` mapping given by ``extrinsics.<camera>.*``
    parameters, or ``None`` when none is set."""
    prefix = f"extrinsics.{camera}."
    xyz = list(values.get(prefix + "xyz") or [])
    rpy = list(values.get(prefix + "rpy") or [])
    matrix = list(values.get(prefix + "matrix") or [])
    if matrix and (xyz or rpy):
        raise ParamError(f"{prefix}matrix and {prefix}xyz/rpy are both set; give one form")
    if matrix:
        return {"matrix": matrix}
    if xyz or rpy:
        return {"xyz": xyz or [0.0, 0.0, 0.0], "rpy": rpy or [0.0, 0.0, 0.0]}
    return None


def vocabulary_args(values: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """``(classes, thing_classes within classes, prompt_templates)`` for
    :meth:`Pipeline.set_vocabulary` from the parameter values."""
    classes = [str(c) for c in values["classes"]]
    cleaned = {" ".join(c.split()) for c in classes}
    things = [str(t) for t in values["thing_classes"] if " ".join(str(t).split()) in cleaned]
    return classes, things, [str(t) for t in values["prompt_templates"]]


def check_update(values: Mapping[str, Any], changed: Iterable[str] | None = None) -> None:
    """Check a whole proposed state (name -> value, every declared parameter); with
    ``changed``, only the rules touching those names run. Raises :class:`ParamError`."""
    names = set(values) if changed is None else set(changed)
    for name in sorted(names):
        check_value(spec_for(name), values[name])
    if names & {"classes", "thing_classes", "prompt_templates"}:
        try:
            Vocabulary().update(*vocabulary_args(values))
        except VocabularyError as exc:
            raise ParamError(str(exc)) from None
    for name in names:
        if name.startswith("extrinsics."):
            camera = name[len("extrinsics.") :].rsplit(".", 1)[0]
            spec = extrinsics_spec(values, camera)
            if spec is not None:
                try:
                    transform_from_spec(spec)
                except CalibrationError as exc:
                    raise ParamError(f"extrinsics.{camera}: {exc}") from None
