"""The ``ws3d_perception`` node: a thin rclpy adapter over :class:`Pipeline`.

Contract (docs/DESIGN.md, "ROS interface contract"; parameters in
:mod:`ws3d_ros.ros.params`, the one source of truth):
- Two flavours over one implementation: :class:`PerceptionNode` (plain, the default: loads
  the model and starts at construction) and :class:`ManagedPerceptionNode` (a lifecycle
  node, ``perception_node --managed``): ``configure`` loads the model and creates the
  publishers, ``activate`` subscribes and starts publishing, ``deactivate`` unsubscribes
  and drops the frame in flight (nothing is published while inactive), ``cleanup`` frees
  the model, ``shutdown`` ends the process.
- Subscribes ``points`` (PointCloud2) and, per camera namespace listed in ``cameras``,
  ``<ns>/image`` (Image) or, with ``image_transport.<camera>: compressed``,
  ``<ns>/image/compressed`` (CompressedImage), and ``<ns>/camera_info`` (CameraInfo,
  cached per camera), with the sensor-data QoS by default; ``/tf_static`` when tf2_msgs
  is importable and ``use_tf_static`` is true.
- The LiDAR sweep drives the output (:class:`~ws3d_ros.sync.PivotSynchronizer`, wall-time
  ``sync.timeout``): a sweep whose images are late is still labelled, the late cameras
  on the LiDAR-only path, and counted in diagnostics. A sweep stamp earlier than the
  previous one (a bag loop) resets the synchroniser (``events.sync_reset``).
- Synchronised sets go to an :class:`~ws3d_ros.ros.worker.InferenceWorker` (latest wins,
  ``queue_depth``): the executor never runs the model; stale sets are dropped and counted
  (``drops.queue.stale``). The worker turns a set into a Frame with the bag reader's
  :func:`~ws3d_ros.data.frames.assemble_frame` (images of either transport are decoded
  there), runs the pipeline and publishes.
- Publishes ``panoptic/points``, ``panoptic/label_map`` (transient local, again on every
  vocabulary change), ``panoptic/overlay`` and ``panoptic/instances`` (switchable) with
  the input's stamp and frame, and ``/diagnostics`` every ``diagnostics_period``.
- Parameters are validated in an on-set callback (a bad value is refused with the reason
  and the old value stays); rclpy's own parameters (``use_sim_time``, ...) pass through.
  An accepted vocabulary change is one the live vocabulary takes (caps, control
  characters, lifetime ids checked first); its new prompts are encoded on a thread of
  their own while the worker keeps labelling, then swapped in on the worker before its
  next frame (never on the executor).
- Bad input (undecodable clouds/images/camera_info, clouds with no finite point or no
  points, missing camera_info or extrinsics) is dropped with a throttled log line and a
  counter; the node keeps running.
- :meth:`close` (called on SIGINT/SIGTERM by :mod:`ws3d_ros.ros.executable`) stops the
  worker, waiting at most ``grace_s`` for a frame in flight, whose outputs are then
  discarded; it returns False when that frame was abandoned.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from ws3d_ros.data.frames import FrameStats, assemble_frame
from ws3d_ros.data.sensors import camera_topics
from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.msg.kit import rclpy_kit, stamp_to_ns
from ws3d_ros.msg.pointcloud2 import cloud_to_array
from ws3d_ros.ros import params as P
from ws3d_ros.ros.calibration import CameraExtrinsics
from ws3d_ros.ros.diagnostics import NodeDiagnostics, ThrottleFilter, printable
from ws3d_ros.ros.executable import GRACE_S, parse_args, spin_node
from ws3d_ros.ros.markers import instance_boxes, instance_markers, overlay_for
from ws3d_ros.ros.worker import InferenceWorker
from ws3d_ros.runtime.outputs import label_map_message, panoptic_cloud
from ws3d_ros.runtime.vocabulary import VocabularyError
from ws3d_ros.sync import MatchedSet, PivotSynchronizer

__all__ = ["ManagedPerceptionNode", "PerceptionNode", "build_parser", "main"]

_TYPES = {
    "bool": ParameterType.PARAMETER_BOOL,
    "integer": ParameterType.PARAMETER_INTEGER,
    "double": ParameterType.PARAMETER_DOUBLE,
    "string": ParameterType.PARAMETER_STRING,
    "string_array": ParameterType.PARAMETER_STRING_ARRAY,
    "double_array": ParameterType.PARAMETER_DOUBLE_ARRAY,
}
_PARAM_TYPES = {
    "bool": Parameter.Type.BOOL,
    "integer": Parameter.Type.INTEGER,
    "double": Parameter.Type.DOUBLE,
    "string": Parameter.Type.STRING,
    "string_array": Parameter.Type.STRING_ARRAY,
    "double_array": Parameter.Type.DOUBLE_ARRAY,
}
_VOCAB_PARAMS = {"classes", "thing_classes", "prompt_templates"}
_NS = 1_000_000_000
_THROTTLE_S = 5.0

PipelineFactory = Callable[[Mapping[str, Any]], Any]


def descriptor(spec: P.ParamSpec) -> ParameterDescriptor:
    """rclpy descriptor of a :class:`~ws3d_ros.ros.params.ParamSpec`."""
    d = ParameterDescriptor(
        name=spec.name,
        type=_TYPES[spec.type],
        description=spec.description,
        additional_constraints=spec.constraint_text(),
        read_only=spec.read_only,
    )
    if spec.range is not None and spec.type == "double":
        d.floating_point_range = [
            FloatingPointRange(
                from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0
            )
        ]
    elif spec.range is not None and spec.type == "integer":
        d.integer_range = [
            IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)
        ]
    return d


def _plain(value: Any) -> Any:
    """rclpy parameter value -> plain Python (arrays to lists)."""
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    return list(value)


def load_pipeline(values: Mapping[str, Any]) -> Any:
    """The :class:`Pipeline` the parameters ask for (model_path, backend, device, mode)."""
    from ws3d_ros.runtime.pipeline import Pipeline

    if values["model_path"]:
        return Pipeline.load(
            values["model_path"],
            backend=values["backend"],
            device=values["device"],
            mode=values["mode"],
            fp16=values["fp16"],
            precision=values["precision"],
            score_threshold=values["score_threshold"],
        )
    if values["mode"] != "zero_shot":
        raise Ws3dError(
            f"mode {values['mode']!r} needs model_path (trained 3D weights); set model_path "
            "or use mode zero_shot"
        )
    from ws3d_ros.models.config import ModelConfig

    config = ModelConfig.from_yaml(values["model_config"] or None)
    return Pipeline.zero_shot(
        config,
        device=values["device"],
        precision=values["precision"],
        score_threshold=values["score_threshold"],
    )


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's text, without control characters (log safety)."""
    return printable(str(exc).strip().splitlines()[0] if str(exc).strip() else "")


@dataclass
class _Job:
    """One synchronised set on its way to the worker."""

    matched: MatchedSet
    received_ns: int  # monotonic time the sweep arrived


class _PerceptionCore:
    """What the plain and the managed node share (module docstring). Mixed into an rclpy
    ``Node`` (or ``LifecycleNode``); the stages are :meth:`_setup` (parameters, at
    construction), :meth:`_load` (model, worker), :meth:`_open_outputs`,
    :meth:`_open_inputs`, :meth:`_close_inputs` and :meth:`_unload`."""

    pipeline: Any
    worker: InferenceWorker[_Job] | None

    # ---------------------------------------------------------------- stages
    def _setup(self, pipeline: Any | None, pipeline_factory: PipelineFactory | None) -> None:
        self._sync_lock = threading.RLock()  # synchroniser state: inputs, timer, parameters
        self._kit = rclpy_kit()
        self._given_pipeline = pipeline
        self._pipeline_factory = pipeline_factory or load_pipeline
        self.pipeline = None
        self.worker = None
        self._active = False
        self._closing = False
        self._inputs: list[Any] = []  # subscriptions and timers of the active state
        self._publishers_open = False
        self._vocab_generation = 0
        self._values = self._declare_all()
        try:
            P.check_update(self._values)
        except P.ParamError as exc:
            raise Ws3dError(f"bad parameters: {exc}") from None
        self.camera_names = [P.camera_name(ns) for ns in self._values["cameras"]]
        self.diag = NodeDiagnostics()
        self._frame_stats = FrameStats()
        self._throttle = ThrottleFilter(_THROTTLE_S)
        logging.getLogger("ws3d_ros.data.frames").addFilter(self._throttle)
        self.extrinsics = CameraExtrinsics(self.camera_names, self._values["calibration_file"])
        self.extrinsics.set_parameters(self._values)
        self._camera_models: dict[str, CameraModel | None] = dict.fromkeys(self.camera_names)
        self._sync_base: dict[str, int] = {}
        self._last_sweep_ns: int | None = None
        self._index = 0
        self._started = time.monotonic()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

    def _load(self) -> None:
        """The model (vocabulary encoded here once, before any frame), sync and worker."""
        pipeline = self._given_pipeline
        if pipeline is None:
            pipeline = self._pipeline_factory(self._values)
        self.pipeline = pipeline
        self.pipeline.score_threshold = float(self._values["score_threshold"])
        self._apply_intensity_range()
        self._mode = self._values["mode"]
        self._check_mode(self._mode)
        self.pipeline.set_vocabulary(*P.vocabulary_args(self._values))
        self._sync = self._make_sync()
        self._closing = False
        self.worker = InferenceWorker(
            self._process,
            depth=int(self._values["queue_depth"]),
            on_drop=lambda _job: self.diag.drop("queue.stale"),
            on_error=self._on_worker_error,
        ).start()
        self._update_info()

    def _apply_intensity_range(self) -> None:
        """The declared input intensity range ([] = detect from the sweeps)."""
        intensity = getattr(self.pipeline, "intensity", None)
        if intensity is not None:
            given = self._values["intensity_range"]
            intensity.declare(tuple(given) if given else None)

    def _create_output(self, msg_type: Any, topic: str, qos: Any) -> Any:
        return self.create_publisher(msg_type, topic, qos)

    def _open_outputs(self) -> None:
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE
        )
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.pub_points = self._create_output(PointCloud2, "panoptic/points", reliable)
        self.pub_label_map = self._create_output(String, "panoptic/label_map", latched)
        self.pub_overlay = self._create_output(Image, "panoptic/overlay", reliable)
        self.pub_instances = self._create_output(MarkerArray, "panoptic/instances", reliable)
        self.pub_diag = self._create_output(DiagnosticArray, "/diagnostics", 10)
        self._publishers_open = True

    def _close_outputs(self) -> None:
        if not self._publishers_open:
            return
        for pub in (
            self.pub_points,
            self.pub_label_map,
            self.pub_overlay,
            self.pub_instances,
            self.pub_diag,
        ):
            self._destroy_output(pub)
        self._publishers_open = False

    def _destroy_output(self, pub: Any) -> None:
        self.destroy_publisher(pub)

    def _input_qos(self) -> QoSProfile:
        depth = int(self._values["qos.depth"])
        if self._values["qos.sensor_data"]:
            return QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=depth,
                reliability=qos_profile_sensor_data.reliability,
                durability=qos_profile_sensor_data.durability,
            )
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE
        )

    def _open_inputs(self) -> None:
        """Subscriptions and timers; from here on, frames are labelled and published."""
        qos = self._input_qos()
        inputs = MutuallyExclusiveCallbackGroup()
        timers = MutuallyExclusiveCallbackGroup()
        self._active = True
        self._publish_label_map()
        subs = [
            self.create_subscription(
                PointCloud2, "points", self._on_points, qos, callback_group=inputs
            )
        ]
        for ns, name in zip(self._values["cameras"], self.camera_names, strict=True):
            transport = self._values[f"image_transport.{name}"]
            image_topic, info_topic = camera_topics(ns, transport)
            image_type = CompressedImage if transport == "compressed" else Image
            subs.append(
                self.create_subscription(
                    image_type,
                    image_topic,
                    lambda msg, cam=name: self._on_image(cam, msg),
                    qos,
                    callback_group=inputs,
                )
            )
            subs.append(
                self.create_subscription(
                    CameraInfo,
                    info_topic,
                    lambda msg, cam=name: self._on_camera_info(cam, msg),
                    qos,
                    callback_group=inputs,
                )
            )
        tf_sub = self._subscribe_tf_static(inputs)
        if tf_sub is not None:
            subs.append(tf_sub)
        timer_list = [
            self.create_timer(0.01, self._poll, callback_group=timers),
            self.create_timer(
                float(self._values["diagnostics_period"]), self._publish_diagnostics, timers
            ),
        ]
        self._inputs = subs + timer_list
        self._subscriptions_open = subs
        self._timers_open = timer_list

    def _close_inputs(self) -> None:
        """Unsubscribe, stop the timers, drop what waits (the frame in flight is discarded)."""
        self._active = False
        for sub in getattr(self, "_subscriptions_open", []):
            self.destroy_subscription(sub)
        for timer in getattr(self, "_timers_open", []):
            self.destroy_timer(timer)
        self._subscriptions_open, self._timers_open, self._inputs = [], [], []
        if self.worker is not None:
            self.worker.clear()
        with self._sync_lock:
            if self.pipeline is not None:
                self._remember_sync_counts()
                self._sync = self._make_sync()
            self._last_sweep_ns = None

    def _unload(self, grace_s: float = GRACE_S) -> bool:
        """Stop the worker (waiting at most ``grace_s``) and free the model; False when a
        frame in flight was abandoned."""
        self._closing = True
        finished = True
        if self.worker is not None:
            finished = self.worker.stop(grace_s)
        self.worker = None
        self.pipeline = None
        return finished

    def close(self, grace_s: float = GRACE_S) -> bool:
        """Stop everything before the process exits (see the module docstring)."""
        if self._active:
            self._close_inputs()
        return self._unload(grace_s)

    # ----------------------------------------------------------- parameters
    def _declare_all(self) -> dict[str, Any]:
        cam_spec = P.spec_for("cameras")
        cams = self.declare_parameter("cameras", cam_spec.default, descriptor(cam_spec))
        cameras = [str(c) for c in (cams.value or [])]
        values = {"cameras": cameras}
        for spec in P.expand(cameras):
            if spec.name == "cameras":
                continue
            if isinstance(spec.default, list) and not spec.default:
                # rclpy infers an empty list as a byte array: declare by type, then set
                p = self.declare_parameter(spec.name, _PARAM_TYPES[spec.type], descriptor(spec))
                if p.type_ == Parameter.Type.NOT_SET:
                    self.set_parameters([Parameter(spec.name, _PARAM_TYPES[spec.type], [])])
                    p = self.get_parameter(spec.name)
            else:
                p = self.declare_parameter(spec.name, spec.default, descriptor(spec))
            values[spec.name] = _plain(p.value)
        return values

    def _check_mode(self, mode: str) -> None:
        backend = getattr(self.pipeline, "backend", None)
        if mode != "zero_shot" and backend is not None and not getattr(backend, "has_net", True):
            raise P.ParamError(
                f"mode {mode!r} needs trained 3D weights; this model has CLIP only "
                "(use mode zero_shot)"
            )

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        proposed = dict(self._values)
        changed = []
        for p in params:
            if p.name not in proposed:
                if self.has_parameter(p.name):
                    continue  # rclpy's own (use_sim_time, ...): rclpy checks and applies it
                return SetParametersResult(successful=False, reason=f"unknown {p.name}")
            if p.type_ == Parameter.Type.NOT_SET:
                return SetParametersResult(
                    successful=False, reason=f"{p.name} cannot be undeclared"
                )
            proposed[p.name] = _plain(p.value)
            changed.append(p.name)
        try:
            P.check_update(proposed, changed)
            if "mode" in changed:
                self._check_mode(proposed["mode"])
            if set(changed) & _VOCAB_PARAMS:
                self._check_vocabulary(proposed)
        except P.ParamError as exc:
            self.get_logger().warning(f"parameter change refused: {printable(exc)}")
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _check_vocabulary(self, values: Mapping[str, Any]) -> None:
        """Refuse what the live vocabulary would refuse (e.g. its lifetime id limit), so
        that an accepted change is an applied one."""
        vocabulary = getattr(self.pipeline, "vocabulary", None)
        trial = getattr(vocabulary, "trial", None)
        if trial is None:
            return
        try:
            trial(*P.vocabulary_args(values))
        except VocabularyError as exc:
            raise P.ParamError(str(exc)) from None

    def _change_vocabulary(self, args: tuple[list[str], list[str], list[str]]) -> None:
        """Encode the new prompts on a thread of their own (the worker keeps labelling
        sweeps), then swap on the worker before its next frame; the latest change wins."""
        with self._sync_lock:
            self._vocab_generation += 1
            generation = self._vocab_generation
        pipeline = self.pipeline
        encode = getattr(getattr(pipeline, "backend", None), "encode_text", None)

        def warm_then_swap() -> None:
            if encode is not None:
                try:
                    # fills the text encoder's cache; set_vocabulary then only reads it
                    encode(list(args[0]), list(args[2]))
                except Exception as exc:  # the swap below reports it on the worker
                    self.get_logger().debug(f"vocabulary pre-encoding failed: {exc}")
            worker = self.worker
            if worker is not None and generation == self._vocab_generation:
                worker.call_soon("vocabulary", lambda: self._apply_vocabulary(args))

        threading.Thread(target=warm_then_swap, name="ws3d-vocabulary", daemon=True).start()

    def _after_set_parameters(self, params: list[Parameter]) -> None:
        names = set()
        for p in params:
            if p.name in self._values:
                self._values[p.name] = _plain(p.value)
                names.add(p.name)
        if self.pipeline is None:  # not configured: the values apply when the model loads
            return
        if names & _VOCAB_PARAMS and self.worker is not None:
            self._change_vocabulary(P.vocabulary_args(self._values))
        if "score_threshold" in names:
            self.pipeline.score_threshold = float(self._values["score_threshold"])
        if "intensity_range" in names:
            self._apply_intensity_range()
        if "mode" in names:
            self._mode = self._values["mode"]
        if "mode" in names or any(n.startswith("sync.") for n in names):
            self._rebuild_sync()
        if any(n.startswith("extrinsics.") for n in names):
            self.extrinsics.set_parameters(self._values)
        self._update_info()

    def _apply_vocabulary(self, args: tuple[list[str], list[str], list[str]]) -> None:
        """Worker thread: encode the new names, swap, announce the label map."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        try:
            pipeline.set_vocabulary(*args)
        except Ws3dError as exc:
            self.get_logger().error(f"vocabulary not applied: {printable(exc)}")
            self.diag.failed(f"vocabulary: {exc}")
            return
        self._publish_label_map()
        self._update_info()
        self.get_logger().info(f"vocabulary: {', '.join(pipeline.vocabulary.names)}")

    def _update_info(self) -> None:
        pipeline = self.pipeline
        if pipeline is None:
            return
        vocab = pipeline.vocabulary
        self.diag.set_info(
            backend=self._values["backend"],
            device=self._values["device"],
            mode=self._mode,
            model=self._values["model_path"] or "(zero-shot CLIP)",
            cameras=",".join(self.camera_names) or "(none)",
            vocabulary=",".join(vocab.names),
            vocabulary_version=getattr(pipeline, "vocabulary_version", ""),
            queue_depth=self._values["queue_depth"],
            score_threshold=self._values["score_threshold"],
        )

    def _ready_text(self) -> str:
        return (
            f"backend {self._values['backend']} on {self._values['device']}, mode "
            f"{self._mode}, cameras {self.camera_names or 'none'}, "
            f"{len(self.pipeline.vocabulary.names)} classes"
        )

    # --------------------------------------------------------------- inputs
    def _synced_cameras(self) -> list[str]:
        # LiDAR-only mode must not wait for images it will not use.
        return [] if self._values["mode"] == "lidar_only" else list(self.camera_names)

    def _make_sync(self) -> PivotSynchronizer:
        v = self._values
        jump = round(v["sync.max_stamp_jump"] * _NS) or None  # 0: no outlier check
        return PivotSynchronizer(
            ["points", *self._synced_cameras()],
            "points",
            slop_ns=round(v["sync.slop"] * _NS),
            timeout_ns=round(v["sync.timeout"] * _NS),
            queue_size=int(v["sync.queue_size"]),
            offsets_ns={c: round(v[f"sync.time_offset.{c}"] * _NS) for c in self._synced_cameras()},
            max_ahead_ns=jump,
            max_behind_ns=jump,
        )

    def _rebuild_sync(self) -> None:
        with self._sync_lock:
            self._submit(self._sync.flush())
            self._remember_sync_counts()
            self._sync = self._make_sync()

    def _remember_sync_counts(self) -> None:
        for reason, n in self._sync.drops.items():
            self._sync_base[reason] = self._sync_base.get(reason, 0) + n
        for cam, n in self._sync.missing.items():
            key = f"missing_image.{cam}"
            self._sync_base[key] = self._sync_base.get(key, 0) + n

    def _stamp(self, msg: Any, kind: str) -> int | None:
        try:
            return stamp_to_ns(msg.header.stamp)
        except (AttributeError, Ws3dError, ValueError, TypeError) as exc:
            self._bad(kind, f"{kind} without a usable header stamp: {exc}")
            return None

    def _bad(self, reason: str, text: str) -> None:
        self.diag.drop(f"input.{reason}")
        self.get_logger().warning(printable(text), throttle_duration_sec=_THROTTLE_S)

    def _on_points(self, msg: PointCloud2) -> None:
        now = time.monotonic_ns()
        self.diag.received("points", now / _NS)
        stamp = self._stamp(msg, "points")
        if stamp is None or not self._active:
            return
        self.diag.stamp("points", stamp)
        try:
            n_points = int(msg.width) * int(msg.height)
        except (AttributeError, TypeError, ValueError):
            n_points = 0  # the decoder says what is wrong (bad_cloud)
        if n_points > int(self._values["max_points"]):
            self._bad(
                "too_many_points",
                f"sweep of {n_points} points dropped: max_points is {self._values['max_points']}",
            )
            return
        with self._sync_lock:
            if self._last_sweep_ns is not None and stamp < self._last_sweep_ns:
                self.diag.event("sync_reset")
                self.get_logger().warning(
                    "sweep stamp went back in time (bag loop?): synchroniser reset",
                    throttle_duration_sec=_THROTTLE_S,
                )
                self._submit(self._sync.flush())
                self._remember_sync_counts()
                self._sync = self._make_sync()
            self._last_sweep_ns = stamp
            self._submit(self._sync.add("points", stamp, (msg, now), now))

    def _on_image(self, camera: str, msg: Image | CompressedImage) -> None:
        now = time.monotonic_ns()
        self.diag.received(f"{camera}/image", now / _NS)
        stamp = self._stamp(msg, "image")
        if stamp is None or camera not in self._synced_cameras() or not self._active:
            return
        self.diag.stamp(f"{camera}/image", stamp)
        with self._sync_lock:
            self._submit(self._sync.add(camera, stamp, msg, now))

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        self.diag.received(f"{camera}/camera_info", time.monotonic())
        try:
            model = CameraModel.from_camera_info(msg)
        except Ws3dError as exc:
            self._bad("bad_camera_info", f"camera {camera}: camera_info refused: {exc}")
            return
        self._camera_models[camera] = model

    def _subscribe_tf_static(self, group: Any) -> Any | None:
        if not self._values["use_tf_static"]:
            return None
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.get_logger().info(
                "tf2_msgs is not importable: extrinsics come from parameters or "
                "calibration_file only",
                once=True,
            )
            return None
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        return self.create_subscription(
            TFMessage, "/tf_static", self.extrinsics.add_tf_message, latched, callback_group=group
        )

    def _poll(self) -> None:
        with self._sync_lock:
            self._submit(self._sync.poll(time.monotonic_ns()))

    def _submit(self, sets: list[MatchedSet]) -> None:
        worker = self.worker
        if worker is None or not self._active:
            return
        for matched in sets:
            _, received = matched.item("points")  # type: ignore[misc]
            worker.submit(_Job(matched, received))

    # ------------------------------------------------------------ inference
    def _process(self, job: _Job) -> None:
        """Worker thread: set -> Frame -> PanopticResult -> messages."""
        pipeline = self.pipeline
        if pipeline is None or not self._active:
            return
        t0 = time.monotonic_ns()
        matched = job.matched
        cloud_msg, _ = matched.item("points")  # type: ignore[misc]
        items: dict[str, Any] = {"points": cloud_msg}
        stamps: dict[str, int | None] = {"points": matched.pivot_stamp_ns}
        synced = set(matched.names)  # lidar_only sets carry no camera stream
        for cam in self.camera_names:
            items[cam] = matched.item(cam) if cam in synced else None
            stamps[cam] = matched.stamp(cam) if cam in synced else None
        models = dict(self._camera_models)  # the latest camera_info of each camera
        for cam, model in models.items():
            if model is None and cam in synced:
                self.get_logger().warning(
                    f"no camera_info received yet for camera {cam}: its points take the "
                    "LiDAR-only path",
                    throttle_duration_sec=_THROTTLE_S,
                )
        frame = assemble_frame(
            items,
            stamps,
            self.camera_names,
            models.get,
            self.extrinsics.lookup,
            self._frame_stats,
            reject_unusable=True,
            skip_uncalibrated=True,
            check_image_size=True,
            index=self._index,
            source="ros",
        )
        self.diag.set_drops("input", self._frame_stats.dropped)
        if frame is None:
            return
        self._index += 1
        result = pipeline(frame, mode=self._mode)
        if not self._active or self._closing:
            return  # deactivated or shutting down while the frame ran: not published
        # a sweep without a camera's image in fusion mode: counted, WARN when frequent
        fused_mode = self._mode != "lidar_only" and bool(self.camera_names)
        fused = {v.name for v in frame.views if v.image is not None}
        missing = [c for c in self.camera_names if c not in fused] if fused_mode else []
        self.diag.missing_cameras(missing, time.monotonic())
        stamp, frame_id = frame.stamp_ns, frame.frame_id
        self.pub_points.publish(
            panoptic_cloud(
                cloud_to_array(cloud_msg), result, frame_id=frame_id, stamp_ns=stamp, kit=self._kit
            )
        )
        vocab = pipeline.vocabulary
        # optional outputs: switched on, and only computed when someone listens
        if self._values["publish.instances"] and self.pub_instances.get_subscription_count():
            names = {e.id: e.name for e in vocab.active}
            boxes = instance_boxes(frame.xyz, result)
            self.pub_instances.publish(
                instance_markers(
                    boxes,
                    names,
                    vocab.color_table(),
                    frame_id=frame_id,
                    stamp_ns=stamp,
                    kit=self._kit,
                )
            )
        if self._values["publish.overlay"] and self.pub_overlay.get_subscription_count():
            image = overlay_for(frame, result, vocab.color_table(), kit=self._kit)
            if image is not None:
                self.pub_overlay.publish(image)
        done = time.monotonic_ns()
        timings = dict(result.timings)
        timings["queue_wait"] = (t0 - job.received_ns) / 1e6
        timings["worker"] = (done - t0) / 1e6  # the whole frame on the worker, publishing included
        timings["end_to_end"] = (done - job.received_ns) / 1e6
        self.diag.published(done / _NS, timings)

    def _on_worker_error(self, exc: BaseException, job: _Job | None) -> None:
        if self._closing or not self._active:
            return  # a frame cut short by shutdown or deactivation is not an error
        self.diag.failed(f"{type(exc).__name__}: {_one_line(exc)}")
        self.diag.drop("inference.error")
        self.get_logger().error(
            f"frame not labelled: {type(exc).__name__}: {exc}", throttle_duration_sec=_THROTTLE_S
        )

    # -------------------------------------------------------------- outputs
    def _publish_label_map(self) -> None:
        pipeline = self.pipeline
        if pipeline is None or not self._publishers_open or not self._active:
            return
        self.pub_label_map.publish(
            label_map_message(pipeline.vocabulary.label_map_json(), kit=self._kit)
        )

    def _publish_diagnostics(self) -> None:
        worker = self.worker
        if worker is None or not self._active:
            return
        with self._sync_lock:
            counts = dict(self._sync_base)
            for reason, n in self._sync.drops.items():
                counts[reason] = counts.get(reason, 0) + n
            for cam, n in self._sync.missing.items():
                key = f"missing_image.{cam}"
                counts[key] = counts.get(key, 0) + n
        self.diag.set_drops("sync", counts)
        self.diag.set_drops("frames.lidar_only", self._frame_stats.missing_images)
        level, message, kv = self.diag.report(time.monotonic())
        kv.append(("queue.processed", str(worker.stats.processed)))
        kv.append(("queue.dropped_stale", str(worker.stats.dropped)))
        kv.append(("log.suppressed", str(self._throttle.suppressed)))
        status = DiagnosticStatus(
            level=bytes([level]),
            name=f"{self.get_name()}: perception",
            message=message,
            hardware_id=self._values["device"],
            values=[KeyValue(key=k, value=v) for k, v in kv],
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def _release(self) -> None:
        """Before the rclpy node is destroyed (safe after a failed start)."""
        if getattr(self, "worker", None) is not None:
            self.close()
        throttle = getattr(self, "_throttle", None)
        if throttle is not None:
            logging.getLogger("ws3d_ros.data.frames").removeFilter(throttle)


class PerceptionNode(_PerceptionCore, Node):
    """The plain node: model loaded and inputs open at construction (module docstring).
    ``pipeline`` (or ``pipeline_factory(values)``) replaces :func:`load_pipeline`, e.g. to
    wrap the real pipeline in tests."""

    def __init__(
        self,
        *,
        pipeline: Any | None = None,
        pipeline_factory: PipelineFactory | None = None,
        node_name: str = P.NODE_NAME,
        **node_kwargs: Any,
    ) -> None:
        Node.__init__(self, node_name, **node_kwargs)
        try:
            self._setup(pipeline, pipeline_factory)
            self._load()
            self._open_outputs()
            self._open_inputs()
        except BaseException:
            self._release()
            Node.destroy_node(self)
            raise
        self.get_logger().info(f"ready: {self._ready_text()}")

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


class ManagedPerceptionNode(_PerceptionCore, LifecycleNode):
    """The lifecycle flavour (module docstring). ``autostart`` configures and activates
    at construction (an error then ends the process)."""

    def __init__(
        self,
        *,
        pipeline: Any | None = None,
        pipeline_factory: PipelineFactory | None = None,
        node_name: str = P.NODE_NAME,
        autostart: bool = False,
        **node_kwargs: Any,
    ) -> None:
        LifecycleNode.__init__(self, node_name, **node_kwargs)
        self._finalized = False
        self._setup(pipeline, pipeline_factory)
        self.get_logger().info(
            "unconfigured (lifecycle node): configure loads the model, activate starts"
        )
        if autostart:
            for step in (self.trigger_configure, self.trigger_activate):
                if step() != TransitionCallbackReturn.SUCCESS:
                    self._release()
                    raise Ws3dError(f"autostart: {step.__name__[8:]} failed (see the log)")

    def _create_output(self, msg_type: Any, topic: str, qos: Any) -> Any:
        return self.create_lifecycle_publisher(msg_type, topic, qos)

    def _destroy_output(self, pub: Any) -> None:
        self.destroy_lifecycle_publisher(pub)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load()
        except Exception as exc:  # the transition fails with the reason; the node lives
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {text}")
            self._unload(0.0)
            return TransitionCallbackReturn.FAILURE
        self._open_outputs()
        self.get_logger().info(f"configured: {self._ready_text()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # activates the lifecycle publishers
        self._open_inputs()
        self.get_logger().info(f"ready: {self._ready_text()}")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_inputs()
        self.get_logger().info("inactive: inputs closed, nothing is published")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload()
        self._close_outputs()
        self.get_logger().info("unconfigured: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._close_inputs()
        self._unload()
        self._close_outputs()
        self._finalized = True
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error("error while in a transition: back to unconfigured")
        if self._active:
            self._close_inputs()
        self._unload(0.0)
        self._close_outputs()
        return TransitionCallbackReturn.SUCCESS

    def done(self) -> bool:
        """True once the shutdown transition ran: the process then exits."""
        return self._finalized

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()


EPILOG = """\
examples:
  ros2 run ws3d_ros perception_node --ros-args -p model_path:=/path/model \\
      -r points:=/lidar/points -r image:=/camera/image_raw -r camera_info:=/camera/camera_info
  ros2 run ws3d_ros perception_node --ros-args --params-file my_params.yaml
  ros2 run ws3d_ros perception_node --managed --ros-args -p model_path:=/path/model
      then: ros2 lifecycle set /ws3d_perception configure; ... activate

parameters: docs/parameters.md (ros2 param describe /ws3d_perception NAME)
"""


def build_parser() -> argparse.ArgumentParser:
    """Options of the ``perception_node`` executable (ROS arguments go after --ros-args)."""
    parser = argparse.ArgumentParser(
        prog="perception_node",
        description="Open-vocabulary LiDAR-camera panoptic perception (node ws3d_perception).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--managed",
        action="store_true",
        help="run as a lifecycle node: configure loads the model, activate subscribes and "
        "publishes, deactivate stops, cleanup frees",
    )
    parser.add_argument(
        "--autostart",
        action="store_true",
        help="with --managed: configure and activate at start",
    )
    return parser


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of ``perception_node`` (``ros2 run ws3d_ros perception_node``)."""
    opts, full = parse_args(build_parser(), args)
    if opts.autostart and not opts.managed:
        build_parser().error("--autostart needs --managed")

    def make() -> Node:
        if opts.managed:
            return ManagedPerceptionNode(autostart=opts.autostart)
        return PerceptionNode()

    return spin_node("perception_node", make, full)


if __name__ == "__main__":
    sys.exit(main())
