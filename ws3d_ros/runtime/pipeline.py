"""``Pipeline``: one :class:`~ws3d_ros.data.frame.Frame` in, one :class:`PanopticResult` out.

Contract (pure Python, no ROS; node, ``ws3d infer``, evaluation and benchmarks call it):
- Built by :meth:`Pipeline.from_config` (trained model if given, else zero-shot), or
  directly by :meth:`Pipeline.load` from a model directory written by ``ws3d export`` (ONNX
  graphs + checkpoint) or a checkpoint file, or :meth:`Pipeline.zero_shot` with CLIP
  weights only. Backends: ``torch`` (reference), ``onnxruntime`` (CPU default),
  ``tensorrt`` (GPU); a backend that cannot load raises a :class:`BackendError` naming
  the fallback.
- Modes: ``fusion`` (LiDAR x CLIP where cameras see points), ``lidar_only`` (same
  network, no image rows), ``zero_shot`` (no 3D weights: lifted CLIP features classified
  directly, smoothed over supervoxels; points no camera sees are unknown).
- :meth:`set_vocabulary` validates and encodes ONLY names not encoded before (the text
  encoder caches per name and template set); the new vocabulary is swapped in atomically
  and used from the next call. Class ids are stable per name (see
  :mod:`ws3d_ros.runtime.vocabulary`).
- ``__call__`` first brings the sweep's intensity onto the model's trained scale
  (:attr:`intensity`, :class:`~ws3d_ros.data.intensity.IntensityNormalizer`: the frame's
  declared range, else ``intensity.declare(...)``, else detected from the sweeps).
- ``__call__`` never mutates the frame; a camera whose image is missing takes the
  LiDAR-only path for its points and is listed in ``missing_cameras``. Per-stage
  timings (ms): ``voxelise``, ``rulebook``, ``projection``, ``clip``, ``lift``, ``net``,
  ``group``, ``total`` (on CUDA each stage ends with a synchronise, so they are the
  stage's own time).
- ``frame_path="device"`` (default): the frame is packed on the host, copied to the
  pipeline's device once (points, then each image; pinned on CUDA), every stage runs
  there as torch ops (:mod:`ws3d_ros.models.device`), and label/instance/score/in-FOV
  come back in one packed copy. On CPU the projection and the rulebook run their numpy
  / numba references (faster there; identical results). ``frame_path="numpy"`` is the
  earlier host path (numpy stages, the networks fed from numpy): the reference the tests
  and ``ws3d bench`` compare against. Zero-shot mode smooths over supervoxels on the host
  either way.
- ``precision`` (``fp32 | fp16 | bf16``) runs the CLIP tower and the 3D net under autocast
  (torch backend only; others raise :class:`BackendError`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.frame import Frame
from ws3d_ros.data.intensity import IntensityNormalizer
from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.instances import group_instances
from ws3d_ros.models.config import ModelConfig
from ws3d_ros.models.inputs import (
    camera_hits_for,
    camera_inputs,
    feeds,
    no_camera_inputs,
    prepare_geometry,
)
from ws3d_ros.models.sparse.rulebook import SparseIndex
from ws3d_ros.runtime.backends import Backend, BackendError, create_backend
from ws3d_ros.runtime.result import UNKNOWN, PanopticResult
from ws3d_ros.runtime.vocabulary import Vocabulary

MODES = ("fusion", "lidar_only", "zero_shot")
FRAME_PATHS = ("device", "numpy")


@dataclass(frozen=True)
class _VocabState:
    """What one inference call needs of the vocabulary (swapped atomically)."""

    version: int
    ids: np.ndarray  # (C,) uint16 class id per text row
    thing_ids: np.ndarray
    text: np.ndarray  # (C, D) float32, L2-normalised
    ids_t: Any = None  # the three above on the pipeline's device
    thing_ids_t: Any = None
    text_t: Any = None


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``None``: leave as is).

    The geometry stages on CPU are many small memory-bound ops; with 2 OpenMP threads on
    a loaded 2-core machine each parallel op waits for a descheduled thread (measured
    here: prepare_geometry_t 42 ms at 1 thread, 220-860 ms at 2), so they run on one and
    only the networks get the pool.
    """
    import torch

    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _one_gather_per_conv(net: Any) -> None:
    """On a GPU, gather all 27 taps of every 3x3x3 conv at once.

    The CPU default splits the taps to bound memory (``offsets_per_matmul``); on a GPU the
    split multiplies kernel launches, and launches, not bytes, bound this network there
    (H200, default model: 3D net 20 ms with the split). Same sums, another grouping.
    """
    from ws3d_ros.models.sparse.conv import SubMConv3d

    for module in net.modules():
        if isinstance(module, SubMConv3d) and module.kernel_size == 3:
            module.offsets_per_matmul = 27


class Pipeline:
    """Frame -> PanopticResult over one backend (see the module docstring)."""

    def __init__(
        self,
        config: ModelConfig,
        backend: Backend,
        *,
        mode: str = "fusion",
        score_threshold: float = 0.0,
        classes: Sequence[str] | None = None,
        thing_classes: Sequence[str] = (),
        templates: Sequence[str] | None = None,
        precision: str = "fp32",
        frame_path: str = "device",
    ) -> None:
        import torch

        from ws3d_ros.models.device.frame import Staging

        if frame_path not in FRAME_PATHS:
            raise Ws3dError(f"frame_path must be one of {FRAME_PATHS}, found {frame_path!r}")
        if mode not in MODES:
            raise Ws3dError(f"mode must be one of {MODES}, found {mode!r}")
        if mode != "zero_shot" and not backend.has_net:
            raise Ws3dError(
                f"mode {mode!r} needs trained 3D weights; this model has CLIP only "
                "(use mode zero_shot, or train one with `ws3d train`)"
            )
        self.config = config
        self.backend = backend
        self.mode = mode
        self.score_threshold = float(score_threshold)
        self.frame_path = frame_path
        self.precision = precision
        try:
            backend.set_precision(precision)
        except ValueError as exc:
            raise Ws3dError(str(exc)) from None
        self.device = torch.device(backend.device)
        if self.device.type == "cuda" and backend.name == "torch" and backend.has_net:
            _one_gather_per_conv(backend.loaded.net)
        self._staging = Staging(self.device)
        # The CPU thread count the networks run with (the geometry stages use one).
        self._pool = torch.get_num_threads() if self.device.type == "cpu" else None
        self._cameras: dict[tuple, Any] = {}
        # Input preparation: each sweep's intensity onto the model's trained scale.
        self.intensity = IntensityNormalizer(config.intensity_range)
        self.vocabulary = Vocabulary(
            templates=tuple(templates or config.clip["templates"]),
        )
        self._lock = threading.Lock()
        self._state: _VocabState | None = None
        self._version = 0
        if classes:
            self.set_vocabulary(classes, thing_classes, templates)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        backend: str = "onnxruntime",
        device: str = "cpu",
        mode: str = "fusion",
        fp16: bool = False,
        **kw: Any,
    ) -> Pipeline:
        """From a model directory (``ws3d export``) or a checkpoint file (``ws3d train``)."""
        be = create_backend(backend, Path(path), device=device, fp16=fp16)
        return cls(be.config, be, mode=mode, **kw)

    @classmethod
    def from_config(
        cls,
        config: ModelConfig | str | Path | None = None,
        *,
        model: str | Path | None = None,
        backend: str = "onnxruntime",
        device: str = "cpu",
        mode: str | None = None,
        **kw: Any,
    ) -> Pipeline:
        """One entry for every caller: a trained ``model`` (directory or checkpoint) if
        given, else zero-shot with the CLIP weights named by ``config`` (a
        :class:`ModelConfig`, a YAML path, or ``None`` for ``config/model.yaml``)."""
        if model:
            return cls.load(model, backend=backend, device=device, mode=mode or "fusion", **kw)
        if mode not in (None, "zero_shot"):
            raise Ws3dError(f"mode {mode!r} needs a trained model; pass model=DIR or use zero_shot")
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_yaml(config)
        return cls.zero_shot(config, device=device, **kw)

    @classmethod
    def zero_shot(
        cls,
        config: ModelConfig | None = None,
        *,
        device: str = "cpu",
        **kw: Any,
    ) -> Pipeline:
        """CLIP weights only (``config.clip``): the day-one mode with no 3D training."""
        from ws3d_ros.runtime.backends import TorchBackend

        config = config or ModelConfig.from_yaml()
        return cls(config, TorchBackend.clip_only(config, device=device), mode="zero_shot", **kw)

    # --------------------------------------------------------------- vocabulary
    def set_vocabulary(
        self,
        classes: Sequence[str],
        thing_classes: Sequence[str] = (),
        templates: Sequence[str] | None = None,
    ) -> Vocabulary:
        """Validate, encode the new names, swap in (see the module docstring)."""
        import torch

        with self._lock:
            trial = Vocabulary(templates=self.vocabulary.templates)
            trial._ids = dict(self.vocabulary._ids)
            trial.update(classes, thing_classes, templates)  # raises before any change
            text = self.backend.encode_text(list(trial.names), list(trial.templates))
            self.vocabulary = trial
            self._version += 1
            ids, thing_ids = trial.active_ids, trial.thing_ids()
            text = np.ascontiguousarray(text, dtype=np.float32)
            self._state = _VocabState(
                version=self._version,
                ids=ids,
                thing_ids=thing_ids,
                text=text,
                ids_t=torch.from_numpy(ids.astype(np.int32)).to(self.device),
                thing_ids_t=torch.from_numpy(np.asarray(thing_ids, np.int64)).to(self.device),
                text_t=torch.from_numpy(text).to(self.device),
            )
            return trial

    @property
    def vocabulary_version(self) -> int:
        return self._version

    # ---------------------------------------------------------------- inference
    def __call__(self, frame: Frame, *, mode: str | None = None) -> PanopticResult:
        state = self._state
        if state is None:
            raise Ws3dError("no vocabulary: call set_vocabulary(classes) first")
        mode = mode or self.mode
        if mode not in MODES:
            raise Ws3dError(f"mode must be one of {MODES}, found {mode!r}")
        frame = self.intensity(frame)
        if self.frame_path == "device":
            import torch

            with torch.inference_mode(), _threads(1 if self.device.type == "cpu" else None):
                return self._call_device(frame, mode, state)
        return self._call_numpy(frame, mode, state)

    def _call_numpy(self, frame: Frame, mode: str, state: _VocabState) -> PanopticResult:
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        n_in = len(frame.points)
        geom = prepare_geometry(frame.points, self.config)
        timings.update(geom.timings)

        views = [v for v in frame.views if v.image is not None] if mode != "lidar_only" else []
        t = time.perf_counter()
        hits = camera_hits_for(geom, views)
        timings["projection"] = (time.perf_counter() - t) * 1e3
        if views:
            t = time.perf_counter()
            maps = self.backend.clip_features([v.image for v in views])
            timings["clip"] = (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            sizes = [(v.image.shape[0], v.image.shape[1]) for v in views]
            cam = camera_inputs(geom, hits, maps, sizes, self.backend.embed_dim)
            timings["lift"] = (time.perf_counter() - t) * 1e3
        else:
            cam = no_camera_inputs(geom, self.backend.embed_dim)
            timings["clip"] = timings["lift"] = 0.0

        t = time.perf_counter()
        if mode == "zero_shot":
            index, score = self._zero_shot(geom.xyz, cam.clip_feats, cam.clip_index, state)
            offsets = None
            valid = cam.seen
        else:
            out = self.backend.run_net(feeds(geom, cam, state.text))
            index, score, offsets = out["class_index"], out["score"], out["offsets"]
            valid = np.ones(len(index), bool)
        timings["net"] = (time.perf_counter() - t) * 1e3

        labels = state.ids[np.clip(index, 0, len(state.ids) - 1)].astype(np.uint16)
        labels[~valid | (score < self.score_threshold)] = UNKNOWN
        t = time.perf_counter()
        grouping = self.config.grouping
        inst = group_instances(
            geom.xyz,
            offsets,
            labels,
            state.thing_ids,
            radius=float(grouping["radius"]),
            min_points=int(grouping["min_points"]),
        )
        timings["group"] = (time.perf_counter() - t) * 1e3

        result = PanopticResult.empty(
            n_in,
            missing_cameras=frame.missing_cameras,
            mode=mode,
            vocabulary_version=state.version,
        )
        result.label[geom.kept] = labels
        result.instance[geom.kept] = inst
        result.score[geom.kept] = np.where(valid, score, 0.0)
        result.in_fov[geom.kept] = cam.seen
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        result.timings = timings
        return result

    def _camera(self, view: Any) -> Any:
        """The device form of a view's calibration, cached per calibration."""
        from ws3d_ros.models.device.projection import CameraT

        cam, T = view.camera, view.T_cam_from_lidar
        key = (
            cam.width,
            cam.height,
            cam.distortion_model,
            cam.K.tobytes(),
            cam.D.tobytes(),
            np.asarray(T.matrix).tobytes(),
        )
        found = self._cameras.get(key)
        if found is None:
            if len(self._cameras) > 64:  # calibrations that change every frame
                self._cameras.clear()
            found = self._cameras[key] = CameraT.from_model(cam, T, self.device)
        return found

    def _call_device(self, frame: Frame, mode: str, state: _VocabState) -> PanopticResult:
        """The device-resident path (module docstring)."""
        import torch

        from ws3d_ros.models.device.frame import StageClock, pack_points, prepare_geometry_t
        from ws3d_ros.models.device.grouping import group_instances_t
        from ws3d_ros.models.device.lifting import lift_t
        from ws3d_ros.models.device.projection import camera_hits_t
        from ws3d_ros.models.lifting import camera_hits

        dev = self.device
        clock = StageClock(dev)
        t_start = clock._t
        n_in = len(frame.points)
        cols = self._staging.upload(pack_points(frame.points, self.config.point_features), "pts")
        geom = prepare_geometry_t(cols, self.config, clock)
        n = int(geom.kept.shape[0])

        views = [v for v in frame.views if v.image is not None] if mode != "lidar_only" else []
        hits = []
        for v in views:
            if dev.type == "cpu":  # numpy is faster there, and the reference
                h = camera_hits(geom.xyz.numpy(), v.camera, v.T_cam_from_lidar)
                hits.append((torch.from_numpy(h.index), torch.from_numpy(h.uv)))
            else:
                hits.append(camera_hits_t(geom.xyz, self._camera(v)))
        clock.stop("projection")
        embed_dim = self.backend.embed_dim
        if views:
            with _threads(self._pool):
                maps = self.backend.clip_maps_t([v.image for v in views], self._staging)
            clock.stop("clip")
            sizes = [(v.image.shape[0], v.image.shape[1]) for v in views]
            clip_feats, clip_index = lift_t(n, hits, maps, sizes)
            clock.stop("lift")
        else:
            clip_feats = torch.zeros((0, embed_dim), dtype=torch.float32, device=dev)
            clip_index = torch.zeros(n, dtype=torch.int64, device=dev)
            clock.timings["clip"] = clock.timings["lift"] = 0.0
        seen = clip_index < clip_feats.shape[0]

        if mode == "zero_shot":
            idx_np, score_np = self._zero_shot(
                geom.xyz.cpu().numpy(), clip_feats.cpu().numpy(), clip_index.cpu().numpy(), state
            )
            index, score = torch.from_numpy(idx_np).to(dev), torch.from_numpy(score_np).to(dev)
            offsets = None
            valid = seen
        else:
            feeds_t = {
                "voxel_feats": geom.voxel_feats,
                "point_feats": geom.point_feats,
                "point_to_voxel": geom.point_to_voxel,
                "clip_feats": clip_feats,
                "clip_index": clip_index,
                "text_embeds": state.text_t,
            }
            names = SparseIndex.input_names(len(self.config.lidar_encoder["encoder_channels"]))
            feeds_t.update(zip(names, geom.sparse, strict=True))
            with _threads(self._pool):
                out = self.backend.run_net_t(feeds_t)
            index, score, offsets = out["class_index"], out["score"], out["offsets"]
            valid = torch.ones(n, dtype=torch.bool, device=dev)
        clock.stop("net")

        ids = state.ids_t
        labels = ids[index.clamp(0, len(ids) - 1)]
        labels = torch.where(~valid | (score < self.score_threshold), UNKNOWN, labels)
        grouping = self.config.grouping
        inst = group_instances_t(
            geom.xyz,
            offsets,
            labels,
            state.thing_ids_t,
            radius=float(grouping["radius"]),
            min_points=int(grouping["min_points"]),
        )
        clock.stop("group")

        # One device->host copy: label, instance, score bits and in-FOV as int32 columns.
        packed = torch.zeros((n_in, 4), dtype=torch.int32, device=dev)
        packed[:, 0] = UNKNOWN
        packed[geom.kept, 0] = labels.int()
        packed[geom.kept, 1] = inst.int()
        packed[geom.kept, 2] = torch.where(valid, score.float(), 0.0).view(torch.int32)
        packed[geom.kept, 3] = seen.int()
        host = packed.cpu().numpy()
        result = PanopticResult(
            label=host[:, 0].astype(np.uint16),
            instance=host[:, 1].view(np.uint32).copy(),
            score=host[:, 2].view(np.float32).copy(),
            in_fov=host[:, 3].astype(bool),
            missing_cameras=frame.missing_cameras,
            mode=mode,
            vocabulary_version=state.version,
        )
        clock.timings["total"] = (time.perf_counter() - t_start) * 1e3
        result.timings = clock.timings
        return result

    def _zero_shot(
        self, xyz: np.ndarray, clip_feats: np.ndarray, clip_index: np.ndarray, state: _VocabState
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lifted CLIP features vs text, averaged over supervoxels (OpenScene-style 2D
        fusion; the over-segmentation removes per-pixel noise)."""
        from ws3d_ros.geometry.supervoxels import supervoxels

        n = len(xyz)
        index = np.zeros(n, np.int64)
        score = np.zeros(n, np.float32)
        seen = np.flatnonzero(clip_index < len(clip_feats))
        if seen.size == 0:
            return index, score
        logits = clip_feats @ state.text.T / float(self.backend.temperature)
        sv = supervoxels(xyz[seen])
        num = int(sv.labels.max()) + 1
        pooled = np.zeros((num, logits.shape[1]), np.float64)
        np.add.at(pooled, sv.labels, logits[clip_index[seen]])
        pooled /= np.maximum(np.bincount(sv.labels, minlength=num), 1)[:, None]
        z = pooled - pooled.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        index[seen] = prob.argmax(axis=1)[sv.labels]
        score[seen] = prob.max(axis=1)[sv.labels]
        return index, score


__all__ = ["MODES", "BackendError", "PanopticResult", "Pipeline"]
