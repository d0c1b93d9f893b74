"""Neighbour tables ("rulebooks") of a sparse U-Net, built with numpy only.

Contract:
- Input: voxel coordinates ``(M, 3)`` (``x, y, z``) or ``(M, 4)`` (``batch, x, y, z``),
  integer, ``>= 0``, unique and sorted lexicographically (what
  :class:`ws3d_ros.geometry.voxel.Voxelization` gives; for a batch, concatenate the clouds
  in batch order with the batch index in front). Anything else raises ``ValueError``.
- Level ``l`` (``0..L``) holds the voxels at stride ``2**l``: level ``l+1`` is
  ``unique(coords_l // 2)`` (batch index untouched), sorted lexicographically, so the
  tables are a deterministic function of the coordinate set.
- ``subm[l]``: ``(M_l, 27)`` int64. Column ``k = 9*kx + 3*ky + kz`` holds the row at level
  ``l`` of the voxel at ``coords + (kx-1, ky-1, kz-1)``, or ``M_l`` when it is not occupied
  (a sentinel row: the gather form appends one zero row to the features). This is
  spconv's ``SubMConv3d(kernel_size=3)`` rulebook; ``k`` indexes spconv's weight
  ``(out, kx, ky, kz, in)`` as ``weight[:, kx, ky, kz]``.
- ``down[l]`` (``l = 0..L-1``): ``(M_{l+1}, 8)`` int64; column ``k = 4*kx + 2*ky + kz``
  holds the level-``l`` row of the voxel at ``2*coarse + (kx, ky, kz)`` or the sentinel
  ``M_l``: spconv's ``SparseConv3d(kernel_size=2, stride=2)`` rulebook.
- ``up[l]`` (``l = 0..L-1``): ``(M_l,)`` int64, ``8 * parent + k`` for each level-``l``
  voxel, ``parent`` its row at level ``l+1`` and ``k`` its offset in the parent (as in
  ``down``): the transpose of ``down[l]``, which is what spconv's
  ``SparseInverseConv3d(indice_key=...)`` of that down conv uses. A fine voxel has
  exactly one parent, so the inverse conv is a gather from a ``(M_{l+1} * 8, C)`` matrix
  with no scatter and no sentinel.
- :meth:`SparseIndex.names` / :meth:`SparseIndex.arrays` give one stable flat order,
  ``subm_0..subm_L, down_0..down_{L-1}, up_0..up_{L-1}``, used as the input names of
  the exported graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ws3d_ros.geometry.neighbours import fill_neighbour_table

#: Offsets of the 3x3x3 submanifold kernel in spconv's weight order (kx major, kz minor).
SUBM_OFFSETS = np.array(
    [(kx - 1, ky - 1, kz - 1) for kx in range(3) for ky in range(3) for kz in range(3)],
    dtype=np.int64,
)
#: Offsets of the 2x2x2 stride-2 kernel in spconv's weight order.
DOWN_OFFSETS = np.array(
    [(kx, ky, kz) for kx in range(2) for ky in range(2) for kz in range(2)], dtype=np.int64
)
_CENTER = 13


@dataclass
class SparseIndex:
    """Coordinates and neighbour tables of every level (see the module docstring)."""

    coords: list[np.ndarray]  # L+1 arrays (M_l, D) int32
    subm: list[np.ndarray]  # L+1 arrays (M_l, 27) int64
    down: list[np.ndarray]  # L arrays (M_{l+1}, 8) int64
    up: list[np.ndarray]  # L arrays (M_l,) int64, 8 * parent + offset

    @property
    def num_stages(self) -> int:
        """``L``: the number of stride-2 steps."""
        return len(self.down)

    def sizes(self) -> list[int]:
        """Voxels per level, ``[M_0, ..., M_L]``."""
        return [len(c) for c in self.coords]

    @staticmethod
    def input_names(num_stages: int) -> list[str]:
        """The flat input order for ``num_stages`` stages (no instance needed)."""
        return (
            [f"subm_{l}" for l in range(num_stages + 1)]
            + [f"down_{l}" for l in range(num_stages)]
            + [f"up_{l}" for l in range(num_stages)]
        )

    def names(self) -> list[str]:
        """Names of :meth:`arrays`, in the same order."""
        return self.input_names(self.num_stages)

    def arrays(self) -> list[np.ndarray]:
        """``subm_0..subm_L, down_0..down_{L-1}, up_0..up_{L-1}``."""
        return [*self.subm, *self.down, *self.up]

    def to_torch(self, device: Any = None) -> list[Any]:
        """:meth:`arrays` as int64 torch tensors (shares memory on CPU)."""
        import torch

        return [torch.from_numpy(a).to(device) for a in self.arrays()]

    def feeds(self) -> dict[str, np.ndarray]:
        """``{name: array}`` for ONNX Runtime."""
        return dict(zip(self.names(), self.arrays(), strict=True))


def _spatial_cols(coords: np.ndarray) -> slice:
    return slice(coords.shape[1] - 3, coords.shape[1])


def _radix(coords: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixed-radix weights so ``key = (coords + pad) @ weights`` keeps lexicographic order.

    Spatial axes get ``pad`` cells of room on both sides so ``coords + d`` with
    ``|d| <= pad`` never wraps into another row of the key space; the batch axis gets none.
    """
    hi = coords.max(axis=0).astype(np.int64) + 1
    span = hi.copy()
    span[_spatial_cols(coords)] += 2 * pad
    if float(np.prod(span.astype(np.float64))) >= 2.0**62:
        raise ValueError(
            f"coordinate span {span.tolist()} is too large for int64 keys; "
            "crop the cloud or use a coarser voxel size"
        )
    weights = np.ones(len(span), dtype=np.int64)
    for axis in range(len(span) - 2, -1, -1):
        weights[axis] = weights[axis + 1] * span[axis + 1]
    shift = np.zeros(len(span), dtype=np.int64)
    shift[_spatial_cols(coords)] = pad
    return weights, shift


def _keys(coords: np.ndarray, weights: np.ndarray, shift: np.ndarray) -> np.ndarray:
    c = coords.astype(np.int64)
    key = (c[:, 0] + shift[0]) * weights[0]
    for axis in range(1, c.shape[1]):
        key += (c[:, axis] + shift[axis]) * weights[axis]
    return key


def subm_table(coords: np.ndarray) -> np.ndarray:
    """``(M, 27)`` submanifold 3x3x3 neighbour table of sorted unique ``coords``."""
    m = len(coords)
    table = np.full((m, 27), m, dtype=np.int64)
    if m == 0:
        return table
    weights, shift = _radix(coords, pad=1)
    keys = _keys(coords, weights, shift)
    if np.any(keys[1:] <= keys[:-1]):
        raise ValueError("coords must be unique and sorted lexicographically")
    deltas = SUBM_OFFSETS[:_CENTER] @ weights[_spatial_cols(coords)]
    fill_neighbour_table(keys, deltas, table)
    return table


def downsample(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stride-2 step: ``(coarse_coords, down_table, up_index)`` (see module docstring)."""
    m = len(coords)
    dim = coords.shape[1]
    if m == 0:
        return (
            np.zeros((0, dim), np.int32),
            np.zeros((0, 8), np.int64),
            np.zeros(0, np.int64),
        )
    spatial = _spatial_cols(coords)
    c = coords.astype(np.int64)
    coarse_all = c.copy()
    coarse_all[:, spatial] //= 2
    rem = c[:, spatial] - 2 * coarse_all[:, spatial]
    offset = rem[:, 0] * 4 + rem[:, 1] * 2 + rem[:, 2]
    weights, shift = _radix(coarse_all, pad=0)
    key = _keys(coarse_all, weights, shift)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    new = np.empty(m, dtype=bool)
    new[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    parent = np.empty(m, dtype=np.int64)
    parent[order] = np.cumsum(new) - 1
    coarse = coarse_all[order[new]].astype(np.int32)
    table = np.full((len(coarse), 8), m, dtype=np.int64)
    table[parent, offset] = np.arange(m, dtype=np.int64)
    return coarse, table, parent * 8 + offset


def build_sparse_index(coords: np.ndarray, num_stages: int) -> SparseIndex:
    """Tables of a U-Net with ``num_stages`` stride-2 steps over voxel ``coords``."""
    c = np.asarray(coords)
    if c.ndim != 2 or c.shape[1] not in (3, 4):
        raise ValueError(f"coords must have shape (M, 3) or (M, 4), found {c.shape}")
    if not np.issubdtype(c.dtype, np.integer):
        raise ValueError(f"coords must be integer, found {c.dtype}")
    if len(c) and c.min() < 0:
        raise ValueError("coords must be >= 0")
    if num_stages < 0:
        raise ValueError(f"num_stages must be >= 0, found {num_stages}")
    c = c.astype(np.int32, copy=False)
    levels, subm, down, up = [c], [subm_table(c)], [], []
    for _ in range(num_stages):
        coarse, table, parent = downsample(levels[-1])
        levels.append(coarse)
        down.append(table)
        up.append(parent)
        subm.append(subm_table(coarse))
    return SparseIndex(coords=levels, subm=subm, down=down, up=up)
