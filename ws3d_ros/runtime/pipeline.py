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
- ``__call__`` never mutates the frame; a camera whose image is missing takes the
  LiDAR-only path for its points and is listed in ``missing_cameras``. Per-stage
  timings (ms): ``voxelise``, ``rulebook``, ``projection``, ``clip``, ``lift``, ``net``,
  ``group``, ``total``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.frame import Frame
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
from ws3d_ros.runtime.backends import Backend, BackendError, create_backend
from ws3d_ros.runtime.result import UNKNOWN, PanopticResult
from ws3d_ros.runtime.vocabulary import Vocabulary

MODES = ("fusion", "lidar_only", "zero_shot")


@dataclass(frozen=True)
class _VocabState:
    """What one inference call needs of the vocabulary (swapped atomically)."""

    version: int
    ids: np.ndarray  # (C,) uint16 class id per text row
    thing_ids: np.ndarray
    text: np.ndarray  # (C, D) float32, L2-normalised


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
    ) -> None:
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
        with self._lock:
            trial = Vocabulary(templates=self.vocabulary.templates)
            trial._ids = dict(self.vocabulary._ids)
            trial.update(classes, thing_classes, templates)  # raises before any change
            text = self.backend.encode_text(list(trial.names), list(trial.templates))
            self.vocabulary = trial
            self._version += 1
            self._state = _VocabState(
                version=self._version,
                ids=trial.active_ids,
                thing_ids=trial.thing_ids(),
                text=np.ascontiguousarray(text, dtype=np.float32),
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
            index, score = self._zero_shot(geom, cam, state)
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

    def _zero_shot(self, geom: Any, cam: Any, state: _VocabState) -> tuple[np.ndarray, np.ndarray]:
        """Lifted CLIP features vs text, averaged over supervoxels (OpenScene-style 2D
        fusion; the over-segmentation removes per-pixel noise)."""
        from ws3d_ros.geometry.supervoxels import supervoxels

        n = len(geom.kept)
        index = np.zeros(n, np.int64)
        score = np.zeros(n, np.float32)
        seen = np.flatnonzero(cam.seen)
        if seen.size == 0:
            return index, score
        logits = cam.clip_feats @ state.text.T / float(self.backend.temperature)
        sv = supervoxels(geom.xyz[seen])
        num = int(sv.labels.max()) + 1
        pooled = np.zeros((num, logits.shape[1]), np.float64)
        np.add.at(pooled, sv.labels, logits[cam.clip_index[seen]])
        pooled /= np.maximum(np.bincount(sv.labels, minlength=num), 1)[:, None]
        z = pooled - pooled.max(axis=1, keepdims=True)
        prob = np.exp(z)
        prob /= prob.sum(axis=1, keepdims=True)
        index[seen] = prob.argmax(axis=1)[sv.labels]
        score[seen] = prob.max(axis=1)[sv.labels]
        return index, score


__all__ = ["MODES", "BackendError", "PanopticResult", "Pipeline"]
