"""Height of each point above the local ground: the lowest point around it.

Contract:
- :func:`height_above_ground` takes ``xyz (N, 3)`` (sensor or any z-up frame) and returns
  ``(N,)`` float32: ``z`` minus the lowest ``z`` among the points whose ``cell``-metre xy
  column lies within ``reach`` columns of the point's (a ``(2 reach + 1)^2`` window, 6 m
  at the defaults). This is the lowest-point ground estimate that grid ground filters
  start from (e.g. the lowest-point representatives of Patchwork, Lim et al., RA-L 2021):
  on a road it is ~0; on a car body, a wall or a tree crown it is the height over the
  ground beside it. A window with no ground seen (under a large object filling it) gives
  the height over the object's lowest point, so callers treat small heights as "at
  ground level" only.
- Non-finite points get ``nan``; they never lower a window's minimum.
- Deterministic; ``O(N log N)`` (sorted column keys, no dense grid, so any extent works).
"""

from __future__ import annotations

import numpy as np

__all__ = ["height_above_ground"]


def height_above_ground(xyz: np.ndarray, *, cell: float = 2.0, reach: int = 1) -> np.ndarray:
    """Per-point height over the lowest point of the surrounding xy columns (module
    docstring)."""
    if cell <= 0:
        raise ValueError(f"the ground cell must be > 0 m, found {cell}")
    if reach < 0:
        raise ValueError(f"the ground reach must be >= 0 columns, found {reach}")
    pts = np.asarray(xyz, np.float64).reshape(-1, 3)
    out = np.full(len(pts), np.nan, np.float32)
    finite = np.isfinite(pts).all(axis=1)
    if not finite.any():
        return out
    p = pts[finite]
    ij = np.floor(p[:, :2] / cell).astype(np.int64)
    ij -= ij.min(axis=0) - reach  # >= reach, so every window offset stays >= 0
    width = int(ij[:, 1].max()) + reach + 1
    key = ij[:, 0] * width + ij[:, 1]
    cols, inverse = np.unique(key, return_inverse=True)
    low = np.full(len(cols), np.inf)
    np.minimum.at(low, inverse, p[:, 2])
    ci, cj = cols // width, cols % width
    window = low.copy()
    for di in range(-reach, reach + 1):
        for dj in range(-reach, reach + 1):
            if di == 0 and dj == 0:
                continue
            nkey = (ci + di) * width + (cj + dj)
            at = np.searchsorted(cols, nkey)
            hit = (at < len(cols)) & (cols[np.minimum(at, len(cols) - 1)] == nkey)
            window[hit] = np.minimum(window[hit], low[at[hit]])
    out[finite] = (p[:, 2] - window[inverse]).astype(np.float32)
    return out
