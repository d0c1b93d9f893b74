"""Instance grouping in torch: the device twin of
:func:`ws3d_ros.geometry.instances.group_instances` (``dual_set=False``).

Contract: same inputs and result as the numpy function: thing points are shifted by their
offsets (float64), binned into cells of size ``radius`` on the grid of
:func:`.voxel.voxelize_t`, and the cells of one class joined by 26-neighbourhood; clusters
under ``min_points`` get 0, the others ``1..K`` in order of their smallest point index.
Connected components come from min-label propagation (hooking roots) with pointer
jumping over the cell graph (edges found by a binary search of mixed-radix keys), which
converges to each component's first cell: the numpy union-find's root, so the partition
and the ids are identical, not just equivalent.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ws3d_ros.labels import UNKNOWN_LABEL
from ws3d_ros.models.device.voxel import voxelize_t
from ws3d_ros.models.sparse.rulebook import SUBM_OFFSETS


def _compress_axes(coords: Tensor) -> Tensor:
    """Per-axis monotone renumbering keeping 'equal / differ by 1 / more' (keys cannot
    overflow whatever the offsets' extent)."""
    out = torch.empty_like(coords)
    for a in range(coords.shape[1]):
        values, inverse = torch.sort(coords[:, a])
        steps = (values[1:] - values[:-1]).clamp(max=2)
        ranks = torch.cat([steps.new_zeros(1), torch.cumsum(steps, 0)])
        out[inverse, a] = ranks
    return out


def components_t(cells: Tensor) -> Tensor:
    """``(M,)`` id per cell of ``(M, 4)`` unique sorted ``(group, x, y, z)`` int64 rows: the
    index of the first cell of its 26-connected component within its group."""
    m = int(cells.shape[0])
    dev = cells.device
    label = torch.arange(m, device=dev)
    if m < 2:
        return label
    c = cells.clone()
    c[:, 1:] = _compress_axes(cells[:, 1:]) + 1  # room for -1 on each side
    span = c.max(dim=0).values + 1
    span[1:] += 1
    w = torch.ones_like(span)
    for axis in range(2, -1, -1):
        w[axis] = w[axis + 1] * span[axis + 1]
    keys = (c * w).sum(dim=1)
    deltas = (torch.as_tensor(SUBM_OFFSETS[:13], device=dev) * w[1:]).sum(1)
    query = (deltas[:, None] + keys[None, :]).reshape(-1)
    pos = torch.searchsorted(keys, query).clamp_(max=m - 1)
    # A miss becomes a self-edge (no effect on the labels): no boolean indexing, which
    # would be a device sync.
    src = torch.arange(m, device=dev).repeat(13)
    dst = torch.where(keys[pos] == query, pos, src)
    for _ in range(m):
        ls, ld = label[src], label[dst]
        lo = torch.minimum(ls, ld)
        # Hook the current roots as well as the endpoints, so whole trees merge per round
        # (endpoints alone took ~36 rounds on a street sweep, each a device sync), then
        # shortcut. Labels stay members of their component and only decrease, so the
        # fixed point is each component's first cell.
        new = label.clone()
        for target in (ls, ld, src, dst):
            new.scatter_reduce_(0, target, lo, "amin")
        for _ in range(3):
            new = new[new]
        if torch.equal(new, label):
            break
        label = new
    return label


def group_instances_t(
    xyz: Tensor,
    offsets: Tensor | None,
    labels: Tensor,
    thing_ids: Tensor,
    *,
    radius: float = 0.5,
    min_points: int = 8,
) -> Tensor:
    """``(N,)`` int64 instance ids (0 = none) of ``(N, 3)`` points (module docstring)."""
    n = int(xyz.shape[0])
    dev = xyz.device
    out = torch.zeros(n, dtype=torch.int64, device=dev)
    if not radius > 0:
        raise ValueError(f"radius must be > 0, found {radius}")
    things = torch.unique(thing_ids.to(device=dev, dtype=torch.int64).reshape(-1))
    things = things[things != UNKNOWN_LABEL]
    if n == 0 or things.numel() == 0:
        return out
    p = xyz.double()
    shifted = p if offsets is None else p + offsets.double()
    lab = labels.long()
    sel = torch.isin(lab, things) & torch.isfinite(shifted).all(1) & torch.isfinite(p).all(1)
    sel = torch.nonzero(sel).reshape(-1)
    if sel.numel() == 0:
        return out
    group = torch.searchsorted(things, lab[sel])
    vox = voxelize_t(shifted[sel], radius)
    # One cell per (group, voxel), ordered group-major then by grid position.
    key = group * len(vox) + vox.point_to_voxel
    sorted_key, order = torch.sort(key)
    new = torch.ones_like(sorted_key, dtype=torch.bool)
    new[1:] = sorted_key[1:] != sorted_key[:-1]
    cell_of_point = torch.empty_like(order)
    cell_of_point[order] = torch.cumsum(new, 0) - 1
    first = sorted_key[new]
    cells = torch.cat(
        [torch.div(first, len(vox), rounding_mode="floor")[:, None], vox.coords[first % len(vox)]],
        dim=1,
    )
    root = components_t(cells)
    comp = root[cell_of_point]
    ncell, npts = len(cells), sel.numel()
    size = torch.zeros(ncell, dtype=torch.int64, device=dev)
    size.index_add_(0, comp, torch.ones_like(comp))  # bincount would sync for its length
    kept = size[comp] >= min_points
    # Ids 1..K by each kept component's smallest point index (sel is ascending), without
    # boolean indexing (each a device sync): kept components' first points are distinct
    # and below npts, so they sort first, in that order; every other cell gets 0.
    pos = torch.arange(npts, device=dev)
    first_pos = torch.full((ncell,), npts, dtype=torch.int64, device=dev)
    first_pos.scatter_reduce_(0, comp, torch.where(kept, pos, npts), "amin")
    rank = torch.empty(ncell, dtype=torch.int64, device=dev)
    rank[torch.argsort(first_pos)] = torch.arange(1, ncell + 1, device=dev)
    rank = torch.where(first_pos < npts, rank, 0)
    out[sel] = torch.where(kept, rank[comp], 0)
    return out
