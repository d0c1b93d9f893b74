"""One cached frame -> network inputs and loss targets (:func:`make_sample`).

Used by the trainer's step loop and evaluation and by OTOC's pseudo labelling. With an
``rng`` and ``augment`` options the points are augmented (flip, rotation, scale), the
CLIP rows of the network input dropped (modality / row dropout) and the points capped
(``max_points``, labelled points kept); without them the frame is taken as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from training.cache import CachedFrame
from training.losses import LossInputs
from training.weak_labels import UNKNOWN
from ws3d_ros.models.config import ModelConfig


@dataclass
class Sample:
    """Network inputs and loss targets of one (augmented) sweep, as tensors."""

    net_args: tuple[Any, ...]  # voxel_feats, point_feats, point_to_voxel, clip, index, sparse
    targets: LossInputs
    labels_gt: np.ndarray | None = None  # (N,) uint16 dense ground truth of kept points
    in_fov: np.ndarray | None = None
    kept: np.ndarray | None = None  # (N,) indices of the frame's points the sample holds


def _augment_points(points: np.ndarray, rng: np.random.Generator, aug: dict) -> np.ndarray:
    pts = points.copy()
    x = pts["x"].astype(np.float64)
    y = pts["y"].astype(np.float64)
    z = pts["z"].astype(np.float64)
    if aug.get("flip_y") and rng.random() < 0.5:
        y = -y
    if aug.get("rotate_z"):
        a = rng.uniform(-np.pi, np.pi)
        c, s = math.cos(a), math.sin(a)
        x, y = c * x - s * y, s * x + c * y
    lo, hi = aug.get("scale") or (1.0, 1.0)
    k = rng.uniform(float(lo), float(hi))
    pts["x"], pts["y"], pts["z"] = x * k, y * k, z * k
    return pts


def make_sample(
    frame: CachedFrame,
    config: ModelConfig,
    text: torch.Tensor,
    things: np.ndarray,
    *,
    rng: np.random.Generator | None,
    augment: dict | None,
    segments_from: str = "instances",
    device: torch.device | str = "cpu",
) -> Sample:
    """One cached (maybe FOVMix-ed) frame -> network inputs + loss targets.

    ``rng``/``augment`` None: no augmentation and no modality dropout (evaluation).
    """
    from ws3d_ros.models.inputs import prepare_geometry

    points = frame.points
    if rng is not None and augment:
        points = _augment_points(points, rng, augment)
    geom = prepare_geometry(points, config)
    kept = geom.kept
    v = len(frame.clip_feats)
    index = frame.clip_index[kept]
    teacher_table = np.concatenate(
        [frame.clip_feats.astype(np.float32), np.zeros((1, frame.clip_feats.shape[1]), np.float32)]
    )
    teacher = teacher_table[np.minimum(index, v)]
    seen = index < v
    net_index = index.copy()
    if rng is not None and augment:
        if rng.random() < float(augment.get("modality_dropout", 0.0)):
            net_index[:] = v
        else:
            drop = rng.random(len(net_index)) < float(augment.get("row_dropout", 0.0))
            net_index[drop] = v
    n = len(kept)
    train_labels = (
        frame.train_labels[kept].astype(np.int64)
        if frame.train_labels is not None
        else np.full(n, UNKNOWN, np.int64)
    )
    train_labels[train_labels == UNKNOWN] = -1
    candidates = None
    if frame.train_candidates is not None:
        candidates = np.unpackbits(
            frame.train_candidates[kept], axis=1, count=text.shape[0]
        ).astype(bool)
    gt = frame.labels[kept] if frame.labels is not None else None
    inst = frame.instances[kept] if frame.instances is not None else None
    if inst is not None and gt is not None:
        is_thing = np.isin(gt, things) & (inst > 0)
        inst_key = np.where(is_thing, (gt.astype(np.int64) << 32) | inst.astype(np.int64), -1)
    else:
        inst_key = np.full(n, -1, np.int64)
    if segments_from == "instances" and gt is not None:
        # Ground-truth object masks: thing instances, and one region per stuff class.
        stuff = (gt != UNKNOWN) & ~np.isin(gt, things)
        seg = np.where(stuff, gt.astype(np.int64) << 32, inst_key)
    else:
        seg = frame.segments[kept].astype(np.int64)

    point_to_voxel = geom.point_to_voxel
    point_feats = geom.point_feats
    xyz = geom.xyz
    limit = int((augment or {}).get("max_points", 0) or 0)
    if rng is not None and limit and n > limit:
        # Labelled points are always kept (weak labels are few); the rest is sampled.
        labelled = np.flatnonzero(train_labels >= 0)
        rest = np.flatnonzero(train_labels < 0)
        k = max(limit - len(labelled), 0)
        if len(labelled) >= limit:
            # Dense (pseudo) labels: the unlabelled points with a candidate set (the
            # partial-label loss) are drawn with them, by their share.
            signal = labelled
            if candidates is not None:
                ruled = np.flatnonzero((train_labels < 0) & ~candidates.all(1))
                signal = np.sort(np.r_[labelled, ruled])
            sub = np.sort(rng.choice(signal, size=limit, replace=False))
        else:
            sub = np.sort(np.r_[labelled, rng.choice(rest, size=min(k, len(rest)), replace=False)])
        point_to_voxel, point_feats, xyz = point_to_voxel[sub], point_feats[sub], xyz[sub]
        net_index, teacher, seen = net_index[sub], teacher[sub], seen[sub]
        train_labels, inst_key, seg = train_labels[sub], inst_key[sub], seg[sub]
        candidates = candidates[sub] if candidates is not None else None
        gt = gt[sub] if gt is not None else None

    def t(a: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    net_args = (
        t(geom.voxel_feats),
        t(point_feats),
        t(point_to_voxel, torch.long),
        t(frame.clip_feats.astype(np.float32)),
        t(net_index, torch.long),
        geom.sparse.to_torch(device),
    )
    targets = LossInputs(
        xyz=t(xyz),
        point_to_voxel=net_args[2],
        teacher=t(teacher),
        seen=t(seen, torch.bool),
        labels=t(train_labels, torch.long),
        segments=t(seg, torch.long),
        instances=t(inst_key, torch.long),
        text=text,
        candidates=None if candidates is None else t(candidates, torch.bool),
    )
    return Sample(net_args, targets, gt, seen, kept)
