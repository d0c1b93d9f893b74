"""Scoring labelled sweeps: class lookup, the camera field of view, the majority baseline.

Contract:
- :func:`class_lut` maps predicted class ids to ground-truth class ids by name (a
  ``(65536,)`` int64 table; names missing from the ground-truth list map to
  :data:`~ws3d_ros.labels.UNKNOWN_LABEL`); :func:`map_predicted` applies it, keeping a
  predicted unknown unknown.
- :func:`in_fov_mask` is *the* field-of-view definition of every evaluation: the points
  that a camera with an image sees (the runtime's projection with z-buffer visibility,
  :func:`ws3d_ros.models.lifting.camera_hits`, over every camera of the frame and every
  finite point). It is a property of the data, the same whatever produced the labels.
- :class:`FrameScorer` accumulates sweeps into a
  :class:`~ws3d_ros.eval.metrics.PanopticEvaluator` split in and out of the FOV and keeps
  their ground truth for :meth:`FrameScorer.baseline`, the majority-class baseline
  (the most frequent labelled class predicted everywhere, without instances).

No torch at import time (``camera_hits`` is numpy), no rclpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ws3d_ros.eval.metrics import PanopticEvaluator, majority_class_baseline
from ws3d_ros.labels import UNKNOWN_LABEL


def class_lut(id_to_name: Mapping[int, str], names: Sequence[str]) -> np.ndarray:
    """Predicted class id -> ground-truth class id (UNKNOWN_LABEL for names not in
    ``names``), as a ``(UNKNOWN_LABEL + 1,)`` int64 table."""
    lut = np.full(UNKNOWN_LABEL + 1, UNKNOWN_LABEL, np.int64)
    index = {n: k for k, n in enumerate(names)}
    for pid, name in id_to_name.items():
        lut[pid] = index.get(name, UNKNOWN_LABEL)
    return lut


def map_predicted(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``(N,)`` int64 ground-truth class ids of predicted ``labels`` (unknown stays unknown)."""
    pl = np.asarray(labels).astype(np.int64)
    return np.where(pl == UNKNOWN_LABEL, UNKNOWN_LABEL, lut[np.clip(pl, 0, UNKNOWN_LABEL)])


def in_fov_mask(frame: Any) -> np.ndarray:
    """Points of a frame that a camera with an image sees (the runtime's projection with
    z-buffer visibility, over every finite point of the sweep)."""
    from ws3d_ros.models.lifting import camera_hits

    xyz = frame.xyz.astype(np.float32)
    mask = np.zeros(len(xyz), bool)
    ok = np.all(np.isfinite(xyz), axis=1)
    idx = np.flatnonzero(ok)
    for v in frame.views:
        if v.image is None:
            continue
        hits = camera_hits(xyz[idx], v.camera, v.T_cam_from_lidar)
        mask[idx[hits.index]] = True
    return mask


class FrameScorer:
    """Scores labelled sweeps against predictions (module docstring)."""

    def __init__(self, names: Sequence[str], thing: Sequence[bool]) -> None:
        self.names = list(names)
        self.thing = list(thing)
        self.evaluator = PanopticEvaluator(self.names, self.thing)
        self._gts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    @property
    def frames(self) -> int:
        return len(self._gts)

    def add(self, frame: Any, labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
        """Score one labelled ``frame`` against predicted ``labels`` (ground-truth class
        ids, :func:`map_predicted`) and ``instances``; returns its FOV mask. Instances of
        points predicted unknown are dropped."""
        fov = in_fov_mask(frame)
        gi = frame.instances if frame.instances is not None else np.zeros(len(labels), np.uint32)
        pi = np.where(labels == UNKNOWN_LABEL, 0, np.asarray(instances).astype(np.int64))
        self.evaluator.add(frame.labels, gi, labels, pi, in_fov=fov)
        self._gts.append((frame.labels, gi, fov))
        return fov

    def result(self) -> dict[str, Any]:
        return self.evaluator.result()

    def baseline(self) -> dict[str, Any]:
        """The majority-class baseline over the sweeps added: its class, mIoU and accuracy
        over all points, mIoU in and out of the FOV."""
        major = majority_class_baseline([g[0] for g in self._gts])
        base = PanopticEvaluator(self.names, self.thing)
        for gl, gi, fov in self._gts:
            base.add(gl, gi, np.full(len(gl), major), np.zeros(len(gl), np.int64), in_fov=fov)
        bres = base.result()
        return {
            "majority_class": self.names[major],
            "miou": bres["all"]["miou"],
            "acc": bres["all"]["acc"],
            "miou_in_fov": (bres.get("in_fov") or {}).get("miou"),
            "miou_out_fov": (bres.get("out_fov") or {}).get("miou"),
        }
