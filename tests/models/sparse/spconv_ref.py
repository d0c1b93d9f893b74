"""Test helpers: random voxel clouds and spconv's rulebook in table form.

spconv 2.3.8's CPU wheel runs forward, but its CPU scatter-add races with more than one
thread, so every spconv call here runs under :func:`one_thread`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch


def random_coords(n: int, extent: int, seed: int, batch: int = 0) -> np.ndarray:
    """Sorted unique ``(M, 3)`` int32 coords in ``[0, extent)^3`` (``(M, 4)`` if batch)."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, extent, (n, 3))
    if batch:
        c = np.concatenate([rng.integers(0, batch, (n, 1)), c], axis=1)
    return np.unique(c, axis=0).astype(np.int32)


def surface_coords(n: int, seed: int) -> np.ndarray:
    """LiDAR-like voxels: a noisy ground plane plus a few walls, sorted unique int32."""
    rng = np.random.default_rng(seed)
    ground = np.column_stack([rng.uniform(0, 40, n), rng.uniform(0, 40, n), rng.normal(1, 0.3, n)])
    m = n // 3
    wall = np.column_stack([rng.uniform(0, 40, m), np.full(m, 20.0), rng.uniform(0, 12, m)])
    c = np.floor(np.concatenate([ground, wall])).clip(0).astype(np.int64)
    return np.unique(c, axis=0).astype(np.int32)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def with_batch_column(coords: np.ndarray) -> torch.Tensor:
    """spconv's ``(M, 4)`` int32 indices ``(batch, x, y, z)``."""
    c = np.asarray(coords)
    if c.shape[1] == 3:
        c = np.concatenate([np.zeros((len(c), 1), c.dtype), c], axis=1)
    return torch.from_numpy(np.ascontiguousarray(c, dtype=np.int32))


def batch_size(coords: np.ndarray) -> int:
    c = np.asarray(coords)
    return int(c[:, 0].max()) + 1 if c.shape[1] == 4 and len(c) else 1


def spatial_shape(coords: np.ndarray, multiple: int = 1) -> list[int]:
    """Grid size covering ``coords``, rounded up so every stride-2 step keeps all voxels."""
    hi = np.asarray(coords)[:, -3:].max(axis=0) + 1
    return [int(-(-h // multiple) * multiple) for h in hi]


def spconv_pairs_to_table(
    pairs: torch.Tensor, counts: torch.Tensor, n_out: int, n_in: int, subm: bool
) -> np.ndarray:
    """spconv ``get_indice_pairs`` output -> ``(n_out, K)`` table, sentinel ``n_in``.

    ``pairs[0, k, :counts[k]]`` are input rows and ``pairs[1, k, :counts[k]]`` output rows
    of tap ``k``. For submanifold convs spconv's native algorithm stores only the taps
    before the centre: tap ``K-1-k`` is tap ``k`` with in/out swapped and the centre is
    the identity.
    """
    p, n = pairs.numpy().astype(np.int64), counts.numpy()
    kvol = p.shape[1]
    table = np.full((n_out, kvol), n_in, dtype=np.int64)
    for k in range(kvol):
        src, dst = p[0, k, : n[k]], p[1, k, : n[k]]
        table[dst, k] = src
        if subm and k < kvol // 2:
            table[src, kvol - 1 - k] = dst
    if subm:
        assert n[kvol // 2 :].sum() == 0, "spconv stored the mirrored taps itself"
        table[:, kvol // 2] = np.arange(n_out)
    return table


def rows_of(coords: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row of each ``query`` coordinate in sorted unique ``coords`` (must all be there)."""
    view = {tuple(c): i for i, c in enumerate(np.asarray(coords).tolist())}
    return np.array([view[tuple(q)] for q in np.asarray(query).tolist()], dtype=np.int64)
