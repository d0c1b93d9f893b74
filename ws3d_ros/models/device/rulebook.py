"""The sparse U-Net's neighbour tables in torch: twin of
:func:`ws3d_ros.models.sparse.rulebook.build_sparse_index`.

Contract: :func:`sparse_index_t` takes level-0 voxel coordinates ``(M, 3)`` (int, ``>= 0``,
unique, sorted lexicographically: what :func:`.voxel.voxelize_t` gives; not re-checked, to
keep the device free of host round trips) and returns the tables in
:meth:`SparseIndex.names` order (``subm_0..subm_L, down_0..down_{L-1}, up_0..up_{L-1}``),
int64 on the input's device, identical to the numpy builder's. Neighbours are found by a
binary search of mixed-radix keys (``torch.searchsorted``), 13 offsets at once; the other
13 columns are their mirrors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ws3d_ros.models.sparse.rulebook import SUBM_OFFSETS

_CENTER = 13


def _weights(span: Tensor) -> Tensor:
    w = torch.ones_like(span)
    for axis in range(len(span) - 2, -1, -1):
        w[axis] = w[axis + 1] * span[axis + 1]
    return w


def subm_table_t(coords: Tensor) -> Tensor:
    """``(M, 27)`` submanifold 3x3x3 table of sorted unique ``coords`` (sentinel ``M``).

    No boolean indexing (each is a device sync): misses are written as the sentinel, and
    the mirrored columns are scattered into one spare row ``M`` that is dropped.
    """
    m = int(coords.shape[0])
    dev = coords.device
    if m == 0:
        return torch.zeros((0, 27), dtype=torch.int64, device=dev)
    c = coords.long() + 1  # one cell of room each side: an offset never wraps a row
    w = _weights(c.max(dim=0).values + 2)
    keys = (c * w).sum(dim=1)
    deltas = (torch.as_tensor(SUBM_OFFSETS[:_CENTER], device=dev) * w).sum(
        1
    )  # no int matmul on CUDA
    query = (deltas[:, None] + keys[None, :]).reshape(-1)  # 13 sorted runs
    pos = torch.searchsorted(keys, query).clamp_(max=m - 1)
    # (13, M): the row of each voxel's neighbour at +d_k, or the sentinel M.
    nb = torch.where(keys[pos] == query, pos, m).reshape(_CENTER, m)
    table = torch.empty((m + 1, 27), dtype=torch.int64, device=dev)
    table[:m, :_CENTER] = nb.T
    table[:m, _CENTER] = torch.arange(m, device=dev)
    table[:m, _CENTER + 1 :] = m
    # "o sees i at +d" is "i sees o at -d": row nb[k, o] gets o in column 26 - k (misses
    # land in the spare row M).
    mirror = 26 - torch.arange(_CENTER, device=dev)[:, None]
    rows = torch.arange(m, device=dev).expand(_CENTER, m)
    table.view(-1).scatter_(0, (nb * 27 + mirror).reshape(-1), rows.reshape(-1))
    return table[:m]


def downsample_t(coords: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One stride-2 step: ``(coarse_coords, down_table (M_c, 8), up_index (M,))``."""
    m = int(coords.shape[0])
    dev = coords.device
    if m == 0:
        empty = torch.zeros(0, dtype=torch.int64, device=dev)
        return coords.new_zeros((0, 3)), empty.reshape(0, 8), empty
    c = coords.long()
    coarse_all = torch.div(c, 2, rounding_mode="floor")
    rem = c - 2 * coarse_all
    offset = rem[:, 0] * 4 + rem[:, 1] * 2 + rem[:, 2]
    span = coarse_all.max(dim=0).values + 1
    w = _weights(span)
    key = (coarse_all * w).sum(dim=1)
    # sort + run starts, not torch.unique(return_inverse=True): that is ~10x slower on CPU.
    sorted_key, order = torch.sort(key)
    new = torch.ones_like(sorted_key, dtype=torch.bool)
    new[1:] = sorted_key[1:] != sorted_key[:-1]
    uniq = sorted_key[new]
    parent = torch.empty_like(order)
    parent[order] = torch.cumsum(new, 0) - 1
    coarse = torch.stack([uniq // w[0], (uniq // w[1]) % span[1], uniq % span[2]], dim=1)
    table = torch.full((len(uniq), 8), m, dtype=torch.int64, device=dev)
    table[parent, offset] = torch.arange(m, device=dev)
    return coarse, table, parent * 8 + offset


def sparse_index_t(coords: Tensor, num_stages: int) -> tuple[list[Tensor], list[Tensor]]:
    """``(tables, level_coords)``: the tables in input-name order and each level's coords."""
    levels = [coords.long()]
    subm = [subm_table_t(levels[0])]
    down: list[Tensor] = []
    up: list[Tensor] = []
    for _ in range(num_stages):
        coarse, table, parent = downsample_t(levels[-1])
        levels.append(coarse)
        down.append(table)
        up.append(parent)
        subm.append(subm_table_t(coarse))
    return [*subm, *down, *up], levels
