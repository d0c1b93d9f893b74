"""FOVMix: splice one scan's camera field-of-view sector into another scan.

Paper: IGNet, "Image-Guided Semi/Weakly Supervised LiDAR Semantic Segmentation"
(Unal et al.; FOVMix augmentation): the points of scan B inside a camera's horizontal
field of view, together with their image-derived features, replace scan A's points in
the same azimuth sector. The result is a new scan with new point-pixel pairings and a
new context for the out-of-FOV points.

Contract:
- :func:`fov_sector` gives the smallest azimuth arc ``(start, width)`` (radians, about
  the LiDAR z axis) that covers the points one camera sees.
- :func:`fovmix` returns a new :class:`~training.cache.CachedFrame`: scan A's points
  outside the sector of a camera of B, followed by scan B's points inside it (seen or
  not). Every per-point array (points, labels, instances, ``train_labels``,
  ``train_candidates`` (a side without them: every class a candidate), segments,
  ``view_of``) moves with its point; ``clip_index`` is remapped into one compacted
  ``clip_feats`` table (``V`` = unseen), so point ``p`` of the result has exactly the
  feature row its source point had. Instance and segment ids of B are offset so that
  they never collide with A's. If B has no camera-seen points, A is returned unchanged.
- Inputs are never modified.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from training.cache import CachedFrame


def _azimuth(xyz: np.ndarray) -> np.ndarray:
    return np.mod(np.arctan2(xyz[:, 1], xyz[:, 0]), 2 * np.pi)


def fov_sector(xyz: np.ndarray) -> tuple[float, float]:
    """``(start, width)`` of the smallest arc covering the azimuths of ``xyz (V, 3)``."""
    az = np.sort(_azimuth(np.asarray(xyz, np.float64)))
    if len(az) == 0:
        return 0.0, 0.0
    gaps = np.diff(np.r_[az, az[0] + 2 * np.pi])
    k = int(np.argmax(gaps))  # the largest gap is outside the arc
    start = az[(k + 1) % len(az)]
    return float(start), float(2 * np.pi - gaps[k])


def in_sector(xyz: np.ndarray, start: float, width: float) -> np.ndarray:
    return np.mod(_azimuth(np.asarray(xyz, np.float64)) - start, 2 * np.pi) <= width


def _offset_ids(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """B's non-zero ids shifted above A's maximum (0 stays 0)."""
    if a is None or b is None:
        return b
    shift = int(a.max()) if len(a) else 0
    return np.where(b > 0, b + shift, 0).astype(b.dtype)


def _cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return None
    return np.concatenate([a, b])


def _candidate_rows(packed: np.ndarray | None, idx: np.ndarray, width: int) -> np.ndarray:
    """Rows ``idx`` of packed candidate bits; all bits set (every class a candidate: no
    information) for a frame without them."""
    if packed is None:
        return np.full((len(idx), width), 255, np.uint8)
    return packed[idx]


def fovmix(a: CachedFrame, b: CachedFrame, rng: np.random.Generator) -> CachedFrame:
    """Scan A with the FOV sector of a random camera of scan B spliced in (module doc)."""
    cams = np.unique(b.view_of[b.view_of >= 0])
    if len(cams) == 0:
        return a
    cam = int(rng.choice(cams))
    xyz_b = b.xyz
    start, width = fov_sector(xyz_b[b.view_of == cam])
    keep_a = np.flatnonzero(~in_sector(a.xyz, start, width))
    take_b = np.flatnonzero(in_sector(xyz_b, start, width))

    va, vb = len(a.clip_feats), len(b.clip_feats)
    idx_a = a.clip_index[keep_a]
    idx_b = b.clip_index[take_b]
    joint = np.concatenate([np.where(idx_a < va, idx_a, -1), np.where(idx_b < vb, idx_b + va, -1)])
    table = np.concatenate([a.clip_feats, b.clip_feats.astype(a.clip_feats.dtype)])
    used = np.unique(joint[joint >= 0])
    remap = np.full(va + vb, -1, np.int64)
    remap[used] = np.arange(len(used))
    clip_index = np.where(joint >= 0, remap[np.maximum(joint, 0)], len(used))

    seg_b = b.segments[take_b]
    seg_shift = int(a.segments.max()) + 1 if len(a.segments) else 0
    labels_b = None if b.labels is None else b.labels[take_b]
    inst_b = None if b.instances is None else b.instances[take_b]
    train_b = None if b.train_labels is None else b.train_labels[take_b]
    cand_a = cand_b = None
    packed = next((c for c in (a.train_candidates, b.train_candidates) if c is not None), None)
    if packed is not None:
        width = packed.shape[1]
        cand_a = _candidate_rows(a.train_candidates, keep_a, width)
        cand_b = _candidate_rows(b.train_candidates, take_b, width)
    inst_a = None if a.instances is None else a.instances[keep_a]

    return dataclasses.replace(
        a,
        key=f"{a.key}+fov({b.key})",
        points=np.concatenate([a.points[keep_a], b.points[take_b].astype(a.points.dtype)]),
        clip_feats=table[used],
        clip_index=clip_index.astype(np.int64),
        view_of=np.concatenate([a.view_of[keep_a], b.view_of[take_b]]),
        segments=np.concatenate(
            [a.segments[keep_a], np.where(seg_b >= 0, seg_b + seg_shift, -1)]
        ).astype(np.int32),
        labels=_cat(None if a.labels is None else a.labels[keep_a], labels_b),
        instances=_cat(inst_a, _offset_ids(a.instances, inst_b)),
        train_labels=_cat(None if a.train_labels is None else a.train_labels[keep_a], train_b),
        train_candidates=_cat(cand_a, cand_b),
    )
