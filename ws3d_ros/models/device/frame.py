"""One sweep's network inputs on a device: the twin of :mod:`ws3d_ros.models.inputs`.

Contract:
- :func:`pack_points` (host, numpy) lays a cloud out as ``(N, 3 + F)`` float32 columns
  ``x, y, z, *config.point_features`` (a missing field is zeros, as in
  :func:`~ws3d_ros.models.inputs.point_columns`); :class:`Staging` copies it (and images)
  to the device through reused pinned buffers when the device is CUDA: one copy each.
- :func:`prepare_geometry_t` does on the device what
  :func:`~ws3d_ros.models.inputs.prepare_geometry` does on the host: range filter, the
  voxel grid anchored at the range minimum, the U-Net tables, the per-point and
  per-voxel inputs. Integer outputs equal the numpy ones; float inputs agree to
  float32 rounding (per-voxel means sum in another order on CUDA).
- Stage timings (``voxelise``, ``rulebook``) come from the caller's :class:`StageClock`,
  which synchronises CUDA at each stage boundary so the numbers are the stage's own.
- On CPU the rulebook runs the numba merge of
  :func:`~ws3d_ros.models.sparse.rulebook.build_sparse_index` (2-3x faster there than
  13 binary searches in torch; identical tables, memory shared with the tensors).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ws3d_ros.models.config import ModelConfig
from ws3d_ros.models.device.rulebook import sparse_index_t
from ws3d_ros.models.device.voxel import voxel_mean_t, voxelize_t
from ws3d_ros.models.inputs import point_columns
from ws3d_ros.models.sparse.rulebook import build_sparse_index


class StageClock:
    """Milliseconds per named stage; synchronises CUDA at each boundary."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.timings: dict[str, float] = {}
        self._t = self._now()

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def restart(self) -> None:
        self._t = self._now()

    def stop(self, stage: str) -> None:
        """Add the time since the last stop/restart to ``stage``."""
        now = self._now()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self._t) * 1e3
        self._t = now


class Staging:
    """Reused pinned host buffers for host->device copies (plain copies on CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._buffers: dict[str, Tensor] = {}

    def upload(self, array: np.ndarray, slot: str) -> Tensor:
        """``array`` as a tensor on the device (shares memory on CPU)."""
        if self.device.type != "cuda":
            # Bag messages are read-only views; torch wants a writable buffer.
            writable = array.flags.writeable and array.flags.c_contiguous
            return torch.from_numpy(array if writable else np.array(array, order="C"))
        dtype = torch.from_numpy(np.empty(0, array.dtype)).dtype
        n = array.size
        buf = self._buffers.get(slot)
        if buf is None or buf.numel() < n or buf.dtype != dtype:
            buf = torch.empty(max(n, 1), dtype=dtype, pin_memory=True)
            self._buffers[slot] = buf
        # The previous copy from this buffer must be done before it is overwritten.
        torch.cuda.current_stream(self.device).synchronize()
        staged = buf[:n]
        staged.numpy().reshape(array.shape)[...] = array
        return staged.view(array.shape).to(self.device, non_blocking=True)


def pack_points(points: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """``(N, 3 + F)`` float32 ``x, y, z, *features`` of a structured (or plain) cloud."""
    if points.dtype.names:
        return point_columns(points, ["x", "y", "z", *features])
    out = np.zeros((len(points), 3 + len(features)), np.float32)
    out[:, :3] = np.asarray(points, np.float32)[:, :3]
    return out


@dataclass
class GeometryT:
    """Voxel and point inputs of one sweep on a device."""

    num_input_points: int
    kept: Tensor  # (N,) int64 indices into the input cloud
    xyz: Tensor  # (N, 3) float32
    point_to_voxel: Tensor  # (N,) int64
    sparse: list[Tensor]  # SparseIndex.names() order
    voxel_feats: Tensor  # (M, Cv) float32
    point_feats: Tensor  # (N, Cp) float32
    coords: Tensor = field(repr=False, default=None)  # type: ignore[assignment]


def prepare_geometry_t(cols: Tensor, config: ModelConfig, clock: StageClock) -> GeometryT:
    """Network inputs of ``(N, 3 + F)`` packed columns on their device (module docstring)."""
    dev = cols.device
    lo, hi = config.point_range
    lo_t = torch.tensor(lo, dtype=torch.float32, device=dev)
    hi_t = torch.tensor(hi, dtype=torch.float32, device=dev)
    xyz_all = cols[:, :3]
    ok = torch.isfinite(xyz_all).all(1) & ((xyz_all >= lo_t) & (xyz_all < hi_t)).all(1)
    kept = torch.nonzero(ok).reshape(-1)
    sel = cols[kept]
    xyz = sel[:, :3].contiguous()
    vox = voxelize_t(xyz, config.voxel_size, origin=lo)
    clock.stop("voxelise")
    num_stages = len(config.lidar_encoder["encoder_channels"])
    if dev.type == "cpu":
        index = build_sparse_index(vox.coords.numpy(), num_stages)
        sparse = [torch.from_numpy(a) for a in index.arrays()]
    else:
        sparse, _ = sparse_index_t(vox.coords, num_stages)
    clock.stop("rulebook")
    centers = vox.centers().float()
    p2v = vox.point_to_voxel
    point_feats = torch.cat([xyz - centers[p2v], sel[:, 3:]], dim=1)
    voxel_mean = voxel_mean_t(point_feats, vox)
    voxel_feats = torch.cat([voxel_mean, centers[:, 2:3] * 0.5], dim=1).contiguous()
    clock.stop("voxelise")
    return GeometryT(
        num_input_points=int(cols.shape[0]),
        kept=kept,
        xyz=xyz,
        point_to_voxel=p2v,
        sparse=sparse,
        voxel_feats=voxel_feats,
        point_feats=point_feats,
        coords=vox.coords,
    )
