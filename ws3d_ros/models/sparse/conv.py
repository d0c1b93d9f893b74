"""Sparse 3D convolutions as gather -> matmul, driven by :mod:`.rulebook` tables.

Contract:
- Features are ``(M, C)`` rows in the order of the level's coordinates; the tables are
  the int64 tensors of :class:`~ws3d_ros.models.sparse.rulebook.SparseIndex`.
- Parameters are laid out exactly like spconv's: ``weight`` ``(out, k, k, k, in)`` with
  ``weight[:, kx, ky, kz]`` the tap at offset ``(kx, ky, kz)`` as the rulebook orders
  it, optional ``bias`` ``(out,)``. A state dict moves between these modules and
  ``spconv.pytorch.SubMConv3d`` / ``SparseConv3d`` / ``SparseInverseConv3d`` unchanged
  and gives the same output (tests check 1e-5).
- The forward uses only ``cat``, ``index_select``, ``reshape``, ``matmul`` and ``add``:
  autograd works on any device, and the ONNX graph has no Scatter* node (ONNX Runtime's
  ScatterND-add races with more than one thread) and keeps the voxel counts dynamic.

Why this form (measured on the shared 2-core CPU, 76k-voxel simulated sweep, level-0
3x3x3 conv, 2 threads; ``bench/bench_sparse.py``): one ``index_select`` of many taps and
one matmul beats many small matmuls plus accumulating adds (32->32 ch: 27 taps per
matmul 230 ms, 9 taps 326 ms, 3 taps 452 ms; 96->96: 805 / 969 / 1301 ms). Gathering all
27 taps holds ``M * 27 * C_in`` floats, though (1.1 GB at 76k x 128 ch), so the taps are
gathered ``offsets_per_matmul`` at a time (27, 9, 3 or 1; default: the most that keeps
``taps * C_in <= 864``, i.e. 27 up to 32 channels, 9 up to 96, 3 up to 288; ~260 MB at
level 0) and the partial products summed. ``offsets_per_matmul`` is fixed per module, so
the exported graph is a fixed unrolled chain with dynamic ``M``.

Cost: the tables are dense (27 columns), and on LiDAR sweeps only ~20% of the level-0
taps hit a voxel, so this form multiplies ~5x more zero rows than spconv's pair lists
(the whole default U-Net: ~3.5 s vs spconv's ~0.9 s at 1 thread on that sweep). It is
the portable form (ONNX/TensorRT without scatter, CPU backward); train with the spconv
twin on a GPU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

_GROUPS = (27, 9, 3, 1)
_TAP_BUDGET = 864  # gathered columns (taps * C_in) per matmul


def _default_group(in_channels: int) -> int:
    for g in _GROUPS:
        if g * in_channels <= _TAP_BUDGET:
            return g
    return 1


def _with_zero_row(x: Tensor) -> Tensor:
    # The tables point missing neighbours at row M: one appended zero row.
    return torch.cat([x, x.new_zeros(1, x.shape[1])], dim=0)


class _SparseConvBase(nn.Module):
    """Parameters shared by the three convolutions (spconv's names, shapes and init)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"channels must be >= 1, found {in_channels} -> {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        k = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, k, k, k, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # spconv's init: kaiming-uniform(a=sqrt(5)) with fan_in = in * k^3.
        fan_in = self.in_channels * self.kernel_size**3
        bound = math.sqrt(6.0 / ((1 + 5.0) * fan_in))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    def _taps_by_in(self) -> Tensor:
        """``(k^3 * in, out)``: row ``tap * in + c`` is ``weight[:, tap, c]``."""
        w = self.weight.reshape(self.out_channels, -1, self.in_channels)
        return w.permute(1, 2, 0).reshape(-1, self.out_channels)

    def _add_bias(self, y: Tensor) -> Tensor:
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}"
        )


class SubMConv3d(_SparseConvBase):
    """Submanifold conv (spconv ``SubMConv3d``): output at the input voxels.

    ``kernel_size`` 3 takes the level's ``(M, 27)`` table; ``kernel_size`` 1 is a
    per-voxel linear map and takes no table (its weight buffer is read as ``(in, out)``,
    spconv's convention for 1x1 convs).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        bias: bool = False,
        offsets_per_matmul: int | None = None,
    ) -> None:
        if kernel_size not in (1, 3):
            raise ValueError(f"kernel_size must be 1 or 3, found {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, bias)
        group = _default_group(in_channels) if offsets_per_matmul is None else offsets_per_matmul
        if group not in _GROUPS:
            raise ValueError(f"offsets_per_matmul must be one of {_GROUPS}, found {group}")
        self.offsets_per_matmul = group

    def forward(self, x: Tensor, table: Tensor | None = None) -> Tensor:
        if self.kernel_size == 1:
            # spconv's 1x1 path reads the (out, 1, 1, 1, in) buffer as (in, out) (its
            # torch.mm with weight.view(in, out)); do the same so weights carry over.
            return self._add_bias(x @ self.weight.reshape(self.in_channels, self.out_channels))
        if table is None:
            raise ValueError("a 3x3x3 SubMConv3d needs the level's (M, 27) table")
        m, c = table.shape[0], self.in_channels
        xp = _with_zero_row(x)
        w = self._taps_by_in()
        g = self.offsets_per_matmul
        out: Tensor | None = None
        for start in range(0, 27, g):
            cols = table[:, start : start + g].reshape(-1)
            y = torch.index_select(xp, 0, cols).reshape(m, g * c) @ w[start * c : (start + g) * c]
            out = y if out is None else out + y
        assert out is not None
        return self._add_bias(out)


class SparseConv3dDown(_SparseConvBase):
    """Stride-2 conv, kernel 2 (spconv ``SparseConv3d(k=2, stride=2)``): level l -> l+1.

    Takes the ``(M_{l+1}, 8)`` ``down`` table; one gather and one matmul (the gathered
    block is ``M_{l+1} * 8 * C_in``, about ``4 * M_l * C_in`` on LiDAR sweeps).
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, 2, bias)

    def forward(self, x: Tensor, table: Tensor) -> Tensor:
        xp = _with_zero_row(x)
        g = torch.index_select(xp, 0, table.reshape(-1)).reshape(table.shape[0], -1)
        return self._add_bias(g @ self._taps_by_in())


class SparseInverseConv3dUp(_SparseConvBase):
    """Inverse of a down conv (spconv ``SparseInverseConv3d(k=2)``): level l+1 -> l.

    Takes the ``(M_l,)`` ``up`` index ``8 * parent + offset``: every coarse row is
    mapped through all 8 taps (``(M_{l+1}, 8 * out)``, one matmul), then each fine voxel
    picks its row. This costs ``8 * M_{l+1} / M_l`` (~4x on sweeps) of the minimal
    multiply count, and beat gathering parents and masking 8 products by 4x.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, 2, bias)

    def forward(self, x: Tensor, up: Tensor) -> Tensor:
        # weight (out, 8, in) -> (in, 8 * out): column tap * out + o.
        w = self.weight.reshape(self.out_channels, 8, self.in_channels).permute(2, 1, 0)
        y = (x @ w.reshape(self.in_channels, 8 * self.out_channels)).reshape(-1, self.out_channels)
        return self._add_bias(torch.index_select(y, 0, up))
