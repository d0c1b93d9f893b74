"""Voxelisation of point clouds: the one grid the model, training and over-segmentation share.

Contract:
- :func:`voxelize` assigns each point to the voxel ``floor((p - origin) / voxel_size)``,
  corrected so that ``coords * voxel_size + origin <= p < (coords + 1) * voxel_size + origin``
  holds exactly in float64. ``origin=None`` puts the grid at ``floor(min / size) * size`` of
  the kept points, so every coordinate is ``>= 0``.
- Points that are non-finite, outside ``bounds`` (``lo <= p < hi`` per axis) or whose
  coordinate does not fit int32 are dropped: ``point_to_voxel == -1``.
- :class:`Voxelization` lists the occupied voxels once each, sorted lexicographically by
  ``(x, y, z)`` coordinate, with CSR grouping: ``point_order[voxel_offsets[i]:
  voxel_offsets[i+1]]`` are the points of voxel ``i`` in ascending index order. The
  result depends only on the set of points, not their order (permuting the input
  permutes ``point_to_voxel`` and leaves ``coords`` identical).
- :func:`voxel_reduce` pools per-point values per voxel (mean/max/min/sum) with
  ``ufunc.reduceat`` over ``point_order``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_INT32 = np.iinfo(np.int32)


@dataclass
class Voxelization:
    """Occupied voxels of a cloud and the points in each (CSR)."""

    coords: np.ndarray  # (M,3) int32, lexicographically sorted, unique
    point_to_voxel: np.ndarray  # (N,) int64 voxel index per input point, -1 when dropped
    voxel_offsets: np.ndarray  # (M+1,) int64 CSR offsets into point_order
    point_order: np.ndarray  # (N_valid,) int64 point indices grouped by voxel
    voxel_size: np.ndarray  # (3,) float64
    origin: np.ndarray  # (3,) float64

    def __len__(self) -> int:
        return len(self.coords)

    def counts(self) -> np.ndarray:
        """Points per voxel, ``(M,)`` int64."""
        return np.diff(self.voxel_offsets)

    def points_of(self, voxel: int) -> np.ndarray:
        """Indices of the points in voxel ``voxel`` (ascending)."""
        return self.point_order[self.voxel_offsets[voxel] : self.voxel_offsets[voxel + 1]]

    def centers(self) -> np.ndarray:
        """``(M,3)`` float64 voxel centres in the points' frame."""
        return (self.coords + 0.5) * self.voxel_size + self.origin


def _triple(value: Any, name: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(-1), (3,)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found {arr.tolist()}")
    return arr


def voxelize(
    points: np.ndarray,
    voxel_size: float | Sequence[float],
    *,
    origin: Sequence[float] | None = None,
    bounds: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Voxelization:
    """Group ``(N, >=3)`` points (first three columns: x, y, z) into voxels."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must have shape (N, >=3), found {pts.shape}")
    xyz = pts[:, :3].astype(np.float64, copy=False)
    n = len(xyz)
    size = _triple(voxel_size, "voxel_size")
    if np.any(size <= 0):
        raise ValueError(f"voxel_size must be > 0, found {size.tolist()}")

    valid = np.all(np.isfinite(xyz), axis=1)
    if bounds is not None:
        lo, hi = _triple(bounds[0], "bounds[0]"), _triple(bounds[1], "bounds[1]")
        valid &= np.all((xyz >= lo) & (xyz < hi), axis=1)
    idx = np.flatnonzero(valid)
    p = xyz[idx]

    if origin is None:
        lowest = p.min(axis=0) if len(p) else np.zeros(3)
        origin_arr = np.floor(lowest / size) * size
        # floor(min / size) can round up past min; step back so every coordinate is >= 0.
        origin_arr = np.where(origin_arr > lowest, origin_arr - size, origin_arr)
    else:
        origin_arr = _triple(origin, "origin")

    with np.errstate(invalid="ignore", over="ignore"):
        k = np.floor((p - origin_arr) / size)
        # Fix float rounding at cell borders so the documented inequality holds exactly.
        k -= k * size + origin_arr > p
        k += (k + 1) * size + origin_arr <= p
    fits = np.all((k >= _INT32.min) & (k <= _INT32.max), axis=1)
    if not np.all(fits):
        idx, k = idx[fits], k[fits]
    k = k.astype(np.int64)

    point_to_voxel = np.full(n, -1, dtype=np.int64)
    if len(idx) == 0:
        return Voxelization(
            coords=np.zeros((0, 3), np.int32),
            point_to_voxel=point_to_voxel,
            voxel_offsets=np.zeros(1, np.int64),
            point_order=np.zeros(0, np.int64),
            voxel_size=size,
            origin=origin_arr,
        )

    # One int64 key in mixed radix preserves the lexicographic order of (x, y, z).
    kmin = k.min(axis=0)
    span = k.max(axis=0) - kmin + 1
    if float(span[0]) * float(span[1]) * float(span[2]) < 2**62:
        shifted = k - kmin
        key = (shifted[:, 0] * span[1] + shifted[:, 1]) * span[2] + shifted[:, 2]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new = np.empty(len(order), dtype=bool)
        new[0] = True
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    else:
        order = np.lexsort((k[:, 2], k[:, 1], k[:, 0]))  # stable: ties keep index order
        ks = k[order]
        new = np.empty(len(order), dtype=bool)
        new[0] = True
        new[1:] = np.any(ks[1:] != ks[:-1], axis=1)
    starts = np.flatnonzero(new)
    voxel_of_sorted = np.cumsum(new) - 1
    point_order = idx[order]
    point_to_voxel[point_order] = voxel_of_sorted
    return Voxelization(
        coords=k[order[starts]].astype(np.int32),
        point_to_voxel=point_to_voxel,
        voxel_offsets=np.append(starts, len(order)).astype(np.int64),
        point_order=point_order.astype(np.int64, copy=False),
        voxel_size=size,
        origin=origin_arr.astype(np.float64),
    )


_REDUCERS = {"sum": np.add, "max": np.maximum, "min": np.minimum}


def voxel_reduce(values: np.ndarray, vox: Voxelization, op: str = "mean") -> np.ndarray:
    """Pool ``(N, ...)`` per-point values into ``(M, ...)`` per-voxel values.

    ``op``: ``mean`` (float64 for integer input, else the input float type), ``sum``,
    ``max`` or ``min`` (input dtype).
    """
    values = np.asarray(values)
    if len(values) != len(vox.point_to_voxel):
        raise ValueError(
            f"values has {len(values)} rows, the voxelisation has {len(vox.point_to_voxel)} points"
        )
    if op not in (*_REDUCERS, "mean"):
        raise ValueError(f"unknown op {op!r}; expected mean, sum, max or min")
    gathered = values[vox.point_order]
    if op == "mean" and not np.issubdtype(values.dtype, np.floating):
        gathered = gathered.astype(np.float64)
    if len(vox) == 0:
        return np.zeros((0, *values.shape[1:]), dtype=gathered.dtype)
    starts = vox.voxel_offsets[:-1]
    if op == "mean":
        total = np.add.reduceat(gathered, starts, axis=0)
        counts = vox.counts().reshape(-1, *([1] * (values.ndim - 1)))
        return total / counts.astype(total.dtype)
    return _REDUCERS[op].reduceat(gathered, starts, axis=0)
