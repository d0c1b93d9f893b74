"""Voxelisation in torch: the device twin of :func:`ws3d_ros.geometry.voxel.voxelize`.

Contract: :func:`voxelize_t` takes ``(N, 3)`` finite float points (a caller drops
non-finite ones first; the runtime's range filter does) and returns a :class:`VoxelsT`
with the same ``coords`` (lexicographically sorted, unique), ``point_to_voxel`` and CSR
grouping as the numpy function: cell ``floor((p - origin) / size)`` computed in float64 with
the same border correction, the same origin rule when ``origin`` is ``None``, and a
stable sort so each voxel's points stay in ascending index order.
:func:`voxel_mean_t` is :func:`~ws3d_ros.geometry.voxel.voxel_reduce` ``(op="mean")``:
on CPU the sums run in the same order as numpy's ``reduceat`` (``index_add_`` over the
points grouped by voxel), on CUDA in atomic order (float rounding only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


@dataclass
class VoxelsT:
    """Occupied voxels of a cloud (see :class:`ws3d_ros.geometry.voxel.Voxelization`)."""

    coords: Tensor  # (M, 3) int64, sorted lexicographically, unique
    point_to_voxel: Tensor  # (N,) int64, -1 for points whose cell does not fit int32
    voxel_offsets: Tensor  # (M+1,) int64 CSR offsets into point_order
    point_order: Tensor  # (N_valid,) int64 point indices grouped by voxel
    voxel_size: Tensor  # (3,) float64
    origin: Tensor  # (3,) float64

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def counts(self) -> Tensor:
        return self.voxel_offsets[1:] - self.voxel_offsets[:-1]

    def centers(self) -> Tensor:
        """``(M, 3)`` float64 voxel centres."""
        return (self.coords.double() + 0.5) * self.voxel_size + self.origin


def _triple(value: float | Sequence[float], device: torch.device, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float64).reshape(-1).expand(3).clone()
    if name == "voxel_size" and bool((t <= 0).any()):  # checked on the host: no device sync
        raise ValueError(f"voxel_size must be > 0, found {t.tolist()}")
    return t.to(device)


def radix_keys(k: Tensor) -> Tensor:
    """One int64 key per row of ``k`` (``(N, D)`` int64, ``>= 0``) in lexicographic order."""
    span = k.max(dim=0).values + 1
    weights = torch.ones_like(span)
    for axis in range(k.shape[1] - 2, -1, -1):
        weights[axis] = weights[axis + 1] * span[axis + 1]
    return (k * weights).sum(dim=1)


def voxelize_t(
    xyz: Tensor, voxel_size: float | Sequence[float], origin: Sequence[float] | None = None
) -> VoxelsT:
    """Group finite ``(N, 3)`` points into voxels (see the module docstring)."""
    dev = xyz.device
    n = int(xyz.shape[0])
    size = _triple(voxel_size, dev, "voxel_size")
    p = xyz[:, :3].double()
    if origin is None:
        lowest = p.min(dim=0).values if n else torch.zeros(3, dtype=torch.float64, device=dev)
        org = torch.floor(lowest / size) * size
        # floor(min / size) can round up past min; step back so every coordinate is >= 0.
        org = torch.where(org > lowest, org - size, org)
    else:
        org = _triple(origin, dev, "origin")
    k = torch.floor((p - org) / size)
    # The same border correction as the numpy reference, so the cells agree exactly.
    k -= (k * size + org > p).double()
    k += ((k + 1) * size + org <= p).double()
    fits = ((k >= _I32_MIN) & (k <= _I32_MAX)).all(dim=1)
    idx = torch.arange(n, device=dev)
    if not bool(fits.all()):
        idx, k = idx[fits], k[fits]
    k = k.long()
    p2v = torch.full((n,), -1, dtype=torch.int64, device=dev)
    if idx.numel() == 0:
        return VoxelsT(
            coords=torch.zeros((0, 3), dtype=torch.int64, device=dev),
            point_to_voxel=p2v,
            voxel_offsets=torch.zeros(1, dtype=torch.int64, device=dev),
            point_order=torch.zeros(0, dtype=torch.int64, device=dev),
            voxel_size=size,
            origin=org,
        )
    key = radix_keys(k - k.min(dim=0).values)
    sorted_key, order = torch.sort(key, stable=True)
    new = torch.ones_like(sorted_key, dtype=torch.bool)
    new[1:] = sorted_key[1:] != sorted_key[:-1]
    starts = torch.nonzero(new).reshape(-1)
    voxel_of_sorted = torch.cumsum(new, 0) - 1
    point_order = idx[order]
    p2v[point_order] = voxel_of_sorted
    offsets = torch.cat([starts, starts.new_tensor([len(order)])])
    return VoxelsT(
        coords=k[order[starts]],
        point_to_voxel=p2v,
        voxel_offsets=offsets,
        point_order=point_order,
        voxel_size=size,
        origin=org,
    )


def voxel_mean_t(values: Tensor, vox: VoxelsT) -> Tensor:
    """``(M, C)`` per-voxel mean of ``(N, C)`` float point values (module docstring)."""
    order = vox.point_order
    total = values.new_zeros((len(vox), values.shape[1]))
    total.index_add_(0, vox.point_to_voxel[order], values[order])
    return total / vox.counts().to(values.dtype).unsqueeze(1)
