"""Instance grouping of thing points from per-point class and predicted centre offsets.

The panoptic step after semantic classification: each point of a thing class is moved by
its predicted offset towards its object's centre, and the moved points of one class are
clustered (bottom-up grouping of PointGroup, Jiang et al., CVPR 2020; the "shifted"
coordinate set of its dual-set clustering, also used by Panoptic-PolarNet / DS-Net style
LiDAR panoptic heads).

Contract of :func:`group_instances`:
- Points of each thing class are clustered separately: two points of one class are in one
  cluster when they are linked by a chain of points whose cells (of size ``radius``, on the
  grid of :func:`ws3d_ros.geometry.voxel.voxelize`) are equal or 26-neighbours. Points
  closer than ``radius`` are always linked (a superset of the radius-graph components).
- Clusters with fewer than ``min_points`` points, points of stuff classes, of the unknown
  label 65535, and points with a non-finite coordinate or offset get id 0.
- Ids are ``1..K`` in order of each instance's smallest point index, so the result is
  deterministic and permutation-equivariant (permuting the input permutes the output up
  to this renumbering; the partition itself is order-independent).
- ``dual_set=True`` (PointGroup's two coordinate sets, with a fixed rule in place of its
  ScoreNet + NMS): clusters of the shifted points (above) are kept first; then every
  cluster ``Q`` of the original points (same rule) is compared with them: its points no
  shifted cluster holds form a new instance when they are more than half of ``Q`` (the
  offsets failed there, e.g. a missed object) and at least ``min_points``; otherwise they
  join the shifted cluster that holds most of ``Q`` (stray points of an object whose centre
  was found). Ties go to the cluster whose first grid cell comes first.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba as nb
import numpy as np

from ws3d_ros.geometry.supervoxels import neighbour_table
from ws3d_ros.geometry.voxel import voxelize
from ws3d_ros.labels import UNKNOWN_LABEL

__all__ = ["UNKNOWN_LABEL", "connected_cells", "group_instances"]


@nb.njit(cache=True)
def _union_find(nbr: np.ndarray) -> np.ndarray:  # pragma: no cover
    # Union by smaller root index over the forward half of the 26-neighbourhood; the
    # component id of a cell is then the index of its component's first cell.
    m = len(nbr)
    parent = np.arange(m)
    for i in range(m):
        for k in range(14, 27):
            j = nbr[i, k]
            if j < 0:
                continue
            a = i
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            b = j
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            if a < b:
                parent[b] = a
            elif b < a:
                parent[a] = b
    for i in range(m):  # ascending: a parent's root is final before its children read it
        parent[i] = parent[parent[i]]
    return parent


def connected_cells(
    points: np.ndarray, groups: np.ndarray, cell_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of ``(K,3)`` finite points per group (26-neighbour cells).

    Returns ``(component, first_cell)``: ``component`` ``(K,)`` int64 numbers the
    components ``0..C-1`` in grid-cell order; ``first_cell`` ``(C,)`` is each component's
    first cell rank (order-independent, used to break ties). Points of different
    ``groups`` (non-negative ints) are never connected.
    """
    k = len(points)
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    vox = voxelize(points, cell_size)
    m = len(vox)
    pv = vox.point_to_voxel
    # One cell per (group, voxel); groups side by side along x with a gap, so the cells
    # stay lexicographically sorted and never touch across groups.
    cells, cell_of_point = np.unique(groups.astype(np.int64) * m + pv, return_inverse=True)
    coords = vox.coords[cells % m].astype(np.int64)
    coords[:, 0] += (cells // m) * (int(vox.coords[:, 0].max()) + 3)
    root = _union_find(neighbour_table(coords))
    roots, comp_of_cell = np.unique(root, return_inverse=True)
    return comp_of_cell.reshape(-1)[cell_of_point.reshape(-1)], roots


def _renumber_by_first_point(comp: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Map component ids (``-1`` = none) to ``1..K`` by smallest point index; 0 for none."""
    out = np.zeros(len(comp), np.uint32)
    sel = np.flatnonzero(keep)
    if len(sel) == 0:
        return out
    _, first, inverse = np.unique(comp[sel], return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, len(first) + 1)
    out[sel] = rank[inverse.reshape(-1)]
    return out


def group_instances(
    xyz: np.ndarray,
    offsets: np.ndarray | None,
    labels: np.ndarray,
    thing_ids: Iterable[int] | np.ndarray,
    *,
    radius: float = 0.5,
    min_points: int = 8,
    dual_set: bool = False,
) -> np.ndarray:
    """``(N,)`` uint32 instance ids of ``(N,3)`` points (see the module docstring).

    ``offsets``: ``(N,3)`` predicted vectors from each point to its instance centre, or
    ``None`` (cluster the points where they are). ``labels``: ``(N,)`` class ids.
    """
    p = np.asarray(xyz, dtype=np.float64)
    n = len(p)
    if p.shape != (n, 3):
        raise ValueError(f"xyz must have shape (N, 3), found {p.shape}")
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != n:
        raise ValueError(f"labels has {len(lab)} values for {n} points")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, found {radius}")
    ids = thing_ids if isinstance(thing_ids, np.ndarray) else list(thing_ids)
    things = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
    things = things[things != UNKNOWN_LABEL]
    shifted = p
    if offsets is not None:
        off = np.asarray(offsets, dtype=np.float64)
        if off.shape != (n, 3):
            raise ValueError(f"offsets must have shape ({n}, 3), found {off.shape}")
        shifted = p + off
    sel = np.flatnonzero(
        np.isin(lab.astype(np.int64), things)
        & np.all(np.isfinite(shifted), axis=1)
        & np.all(np.isfinite(p), axis=1)
    )
    out = np.zeros(n, np.uint32)
    if len(sel) == 0:
        return out
    group = np.searchsorted(things, lab[sel].astype(np.int64))

    comp, first_cell = connected_cells(shifted[sel], group, radius)
    size = np.bincount(comp)
    kept = size[comp] >= min_points
    inst = np.where(kept, comp, -1)
    if dual_set:
        inst = _dual_set(p[sel], group, radius, min_points, inst, first_cell, len(size))
    out[sel] = _renumber_by_first_point(inst, inst >= 0)
    return out


def _dual_set(
    points: np.ndarray,
    group: np.ndarray,
    radius: float,
    min_points: int,
    inst: np.ndarray,
    first_cell: np.ndarray,
    n_shifted: int,
) -> np.ndarray:
    """Complete shifted-set clusters with original-set clusters (rule: module docstring)."""
    q, _ = connected_cells(points, group, radius)
    q_size = np.bincount(q)
    big = q_size[q] >= min_points
    free = big & (inst < 0)
    out = inst.copy()
    if not np.any(free):
        return out
    nq = len(q_size)
    q_free = np.bincount(q[free], minlength=nq)
    # Shifted cluster holding most of each Q: count (Q, instance) pairs, pick per Q the
    # largest count, ties to the instance whose first cell comes first.
    held = (inst >= 0) & big
    pair_q, pair_i = q[held], inst[held]
    owner = np.full(nq, -1, np.int64)
    if len(pair_q):
        key, cnt = np.unique(pair_q * n_shifted + pair_i, return_counts=True)
        kq, ki = key // n_shifted, key % n_shifted
        order = np.lexsort((first_cell[ki], -cnt, kq))
        lead = np.ones(len(order), bool)
        lead[1:] = kq[order][1:] != kq[order][:-1]
        best = order[lead]
        owner[kq[best]] = ki[best]
    new = (2 * q_free > q_size) & (q_free >= min_points)
    absorb = ~new & (owner >= 0)
    new_id = n_shifted + np.arange(nq)  # disjoint from shifted ids
    target = np.where(new, new_id, np.where(absorb, owner, -1))
    out[free] = target[q[free]]
    return out
