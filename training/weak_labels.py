"""Weak labels derived from dense ground truth, for label-efficient training experiments.

Contract (numpy; every function is deterministic given its ``rng``; the trainer seeds it
with ``(labels.seed, frame key)`` so the same frame gets the same weak labels every epoch
and on every rank):
- Input: dense ``labels (N,)`` uint16 (65535 unknown) and ``instances (N,)`` uint32
  (0 = none) of one sweep. Output: ``(N,)`` uint16 with 65535 on every point that is NOT
  labelled; labelled points keep their ground-truth class.
- :func:`label_fraction`: a uniformly random ``fraction`` of the labelled points (at
  least one point when any is labelled).
- :func:`clicks_per_object`: One Thing One Click (Liu et al., "One Thing One Click: A
  Self-Training Approach for Weakly Supervised 3D Semantic Segmentation", CVPR 2021):
  ``n`` labelled points per object, where an object is a thing instance
  ``(class, instance > 0)`` or a stuff region. A stuff region is one *connected
  component* of a stuff class in the sweep (:func:`stuff_components`: the points of one
  class joined through occupied ``stuff_cell``-metre voxels, 26-neighbourhood), as OTOC
  annotates: every separate building / patch of sidewalk / stretch of road the annotator
  sees gets its own click; a component with fewer than ``min_region_points`` points is
  not clicked unless it is its class' largest in the sweep (every class present gets at
  least one click). A point of a thing class without instance id counts as stuff.
  ``xyz=None`` or ``stuff_cell <= 0``: one region per stuff class in the sweep.
- :func:`scribbles`: line-like strokes (ScribbleKITTI, Unal et al., CVPR 2022): per
  object, the points within ``width`` metres of a line through a random object point
  along the object's principal (longest) horizontal axis.
- :func:`expand_to_segments`: OTOC's initial labels (Sec. 3.1: a click labels its whole
  supervoxel): every segment whose labelled points all agree gets their class on all its
  points; a segment with clicks of different classes keeps only the clicked points.
- :func:`weak_labels` dispatches on the ``labels.mode`` of the training config
  (``full`` | ``none`` | ``fraction`` | ``clicks`` | ``scribbles``).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ws3d_ros.labels import UNKNOWN_LABEL

UNKNOWN = UNKNOWN_LABEL


def frame_rng(seed: int, key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the frame's key."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _objects(labels: np.ndarray, instances: np.ndarray | None) -> np.ndarray:
    """Dense object id per labelled point (-1 on unknown points)."""
    lab = labels.astype(np.int64)
    inst = np.zeros_like(lab) if instances is None else instances.astype(np.int64)
    key = np.where(lab == UNKNOWN, -1, (lab << 32) | inst)
    out = np.full(len(lab), -1, np.int64)
    ok = key >= 0
    if ok.any():
        _, out[ok] = np.unique(key[ok], return_inverse=True)
    return out


def connected_components(xyz: np.ndarray, cell: float) -> np.ndarray:
    """``(N,)`` int64 component id per point: points whose ``cell``-metre voxels touch
    (26-neighbourhood) are connected; ids dense in ``[0, K)`` (``-1``: non-finite)."""
    from ws3d_ros.geometry.supervoxels import neighbour_table
    from ws3d_ros.geometry.voxel import voxelize

    n = len(xyz)
    if n == 0:
        return np.zeros(0, np.int64)
    vox = voxelize(np.asarray(xyz, np.float64), cell)
    m = len(vox.coords)
    out = np.full(n, -1, np.int64)
    if m == 0:
        return out
    nbr = neighbour_table(vox.coords.astype(np.int64))
    safe = np.where(nbr >= 0, nbr, np.arange(m)[:, None])
    comp = np.arange(m, dtype=np.int64)
    while True:  # min-label propagation with pointer jumping (converges to the min id)
        new = np.minimum(comp[safe].min(axis=1), comp)
        new = new[new]
        if np.array_equal(new, comp):
            break
        comp = new
    _, dense = np.unique(comp, return_inverse=True)
    ok = vox.point_to_voxel >= 0
    out[ok] = dense[vox.point_to_voxel[ok]]
    return out


def stuff_components(
    labels: np.ndarray,
    instances: np.ndarray | None,
    xyz: np.ndarray,
    *,
    cell: float = 1.0,
    min_points: int = 20,
) -> np.ndarray:
    """Dense object id per point for clicking (see the module docstring): thing
    instances and the connected components of each stuff class; ``-1`` on unknown points
    and on the stuff components too small to be clicked."""
    lab = labels.astype(np.int64)
    inst = np.zeros_like(lab) if instances is None else instances.astype(np.int64)
    stuffy = (lab != UNKNOWN) & (inst == 0)
    comp_id = np.zeros_like(lab)
    drop = np.zeros(len(lab), bool)
    pts = np.asarray(xyz, np.float64)
    for c in np.unique(lab[stuffy]):
        idx = np.flatnonzero(stuffy & (lab == c))
        comp = connected_components(pts[idx], cell)
        valid = comp >= 0
        if not valid.any():
            drop[idx] = True
            continue
        sizes = np.bincount(comp[valid])
        keep = sizes >= min_points
        keep[int(sizes.argmax())] = True
        ok = valid & keep[np.maximum(comp, 0)]
        comp_id[idx] = np.where(ok, comp, 0)
        drop[idx] = ~ok
    # Bit 33 keeps stuff components apart from thing instance ids of the same class.
    key = (lab << 34) | np.where(stuffy, (1 << 33) | comp_id, inst)
    key[(lab == UNKNOWN) | drop] = -1
    out = np.full(len(lab), -1, np.int64)
    sel = key >= 0
    if sel.any():
        _, out[sel] = np.unique(key[sel], return_inverse=True)
    return out


def label_fraction(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    out = np.full(len(labels), UNKNOWN, np.uint16)
    idx = np.flatnonzero(labels != UNKNOWN)
    if len(idx) == 0:
        return out
    k = max(1, round(fraction * len(idx)))
    pick = rng.choice(idx, size=min(k, len(idx)), replace=False)
    out[pick] = labels[pick]
    return out


def clicks_per_object(
    labels: np.ndarray,
    instances: np.ndarray | None,
    n: int,
    rng: np.random.Generator,
    xyz: np.ndarray | None = None,
    *,
    stuff_cell: float = 1.0,
    min_region_points: int = 20,
) -> np.ndarray:
    out = np.full(len(labels), UNKNOWN, np.uint16)
    if xyz is None or stuff_cell <= 0:
        obj = _objects(labels, instances)
    else:
        obj = stuff_components(
            labels, instances, xyz, cell=stuff_cell, min_points=min_region_points
        )
    if (obj < 0).all():
        return out
    order = np.argsort(obj, kind="stable")
    order = order[obj[order] >= 0]
    starts = np.flatnonzero(np.r_[True, np.diff(obj[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends, strict=True):
        members = order[s:e]
        pick = rng.choice(members, size=min(n, len(members)), replace=False)
        out[pick] = labels[pick]
    return out


def scribbles(
    labels: np.ndarray,
    instances: np.ndarray | None,
    xyz: np.ndarray,
    rng: np.random.Generator,
    *,
    width: float = 0.3,
    per_object: int = 1,
) -> np.ndarray:
    out = np.full(len(labels), UNKNOWN, np.uint16)
    obj = _objects(labels, instances)
    if (obj < 0).all():
        return out
    order = np.argsort(obj, kind="stable")
    order = order[obj[order] >= 0]
    starts = np.flatnonzero(np.r_[True, np.diff(obj[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    p2 = np.asarray(xyz, np.float64)[:, :2]
    for s, e in zip(starts, ends, strict=True):
        members = order[s:e]
        pts = p2[members]
        centred = pts - pts.mean(axis=0)
        if len(members) >= 3:
            _, vecs = np.linalg.eigh(centred.T @ centred)
            axis = vecs[:, -1]
        else:
            axis = np.array([1.0, 0.0])
        normal = np.array([-axis[1], axis[0]])
        for _ in range(per_object):
            anchor = pts[rng.integers(len(members))]
            dist = np.abs((pts - anchor) @ normal)
            stroke = members[dist <= width]
            out[stroke] = labels[stroke]
    return out


def weak_labels(
    mode: str,
    labels: np.ndarray | None,
    instances: np.ndarray | None,
    xyz: np.ndarray,
    rng: np.random.Generator,
    *,
    fraction: float = 0.01,
    clicks: int = 1,
    stuff_cell: float = 1.0,
    min_region_points: int = 20,
    scribble_width: float = 0.3,
    scribbles_per_object: int = 1,
) -> np.ndarray:
    """The training labels of one sweep under ``mode`` (see the module docstring)."""
    n = len(xyz)
    if labels is None or mode == "none":
        return np.full(n, UNKNOWN, np.uint16)
    labels = np.asarray(labels, np.uint16)
    if mode == "full":
        return labels.copy()
    if mode == "fraction":
        return label_fraction(labels, fraction, rng)
    if mode == "clicks":
        return clicks_per_object(
            labels,
            instances,
            clicks,
            rng,
            xyz,
            stuff_cell=stuff_cell,
            min_region_points=min_region_points,
        )
    if mode == "scribbles":
        return scribbles(
            labels, instances, xyz, rng, width=scribble_width, per_object=scribbles_per_object
        )
    raise ValueError(f"unknown label mode {mode!r}")


def expand_to_segments(labels: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Weak ``labels (N,)`` spread over their ``segments (N,)`` (module docstring);
    points with a negative segment id are left as they are."""
    labels = np.asarray(labels, np.uint16)
    seg = np.asarray(segments, np.int64)
    if len(labels) != len(seg):
        raise ValueError(f"{len(labels)} labels for {len(seg)} segment ids")
    out = labels.copy()
    hit = (labels != UNKNOWN) & (seg >= 0)
    if not hit.any():
        return out
    num = int(seg.max()) + 1
    lo = np.full(num, np.iinfo(np.int64).max, np.int64)
    hi = np.full(num, -1, np.int64)
    np.minimum.at(lo, seg[hit], labels[hit].astype(np.int64))
    np.maximum.at(hi, seg[hit], labels[hit].astype(np.int64))
    agree = (hi >= 0) & (lo == hi)
    fill = np.where(agree, hi, UNKNOWN)
    spread = (seg >= 0) & (labels == UNKNOWN)
    out[spread] = fill[seg[spread]].astype(np.uint16)
    return out
