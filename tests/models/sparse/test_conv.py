"""Gather-form convs equal spconv's forward and a dense Conv3d (values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import spconv.pytorch as spc
import torch
import torch.nn.functional as F

from ws3d_ros.models.sparse.conv import SparseConv3dDown, SparseInverseConv3dUp, SubMConv3d
from ws3d_ros.models.sparse.rulebook import build_sparse_index

from .spconv_ref import one_thread, spatial_shape, surface_coords, with_batch_column

torch.manual_seed(0)


def _sparse_tensor(feats: torch.Tensor, coords: np.ndarray, multiple: int) -> spc.SparseConvTensor:
    return spc.SparseConvTensor(
        feats, with_batch_column(coords), spatial_shape(coords, multiple), 1
    )


@pytest.mark.parametrize(("group", "bias"), [(27, False), (9, True), (3, False), (1, True)])
def test_subm_matches_spconv(group: int, bias: bool) -> None:
    coords = surface_coords(2500, 1)
    index = build_sparse_index(coords, 0)
    ref = spc.SubMConv3d(16, 8, 3, bias=bias)
    ours = SubMConv3d(16, 8, 3, bias=bias, offsets_per_matmul=group)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(len(coords), 16)
    with one_thread():
        expect = ref(_sparse_tensor(x, coords, 1)).features
    got = ours(x, torch.from_numpy(index.subm[0]))
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
    # And back: spconv loads ours unchanged.
    ref2 = spc.SubMConv3d(16, 8, 3, bias=bias)
    ref2.load_state_dict(ours.state_dict())
    assert set(ref2.state_dict()) == set(ours.state_dict())


def test_subm_kernel1_matches_spconv() -> None:
    coords = surface_coords(500, 2)
    ref, ours = spc.SubMConv3d(6, 5, 1, bias=True), SubMConv3d(6, 5, 1, bias=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(len(coords), 6)
    with one_thread():
        expect = ref(_sparse_tensor(x, coords, 1)).features
    torch.testing.assert_close(ours(x), expect, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [False, True])
def test_down_and_inverse_match_spconv(bias: bool) -> None:
    coords = surface_coords(2500, 3)
    index = build_sparse_index(coords, 1)
    down_ref = spc.SparseConv3d(8, 12, 2, stride=2, bias=bias, indice_key="d0")
    up_ref = spc.SparseInverseConv3d(12, 6, 2, bias=bias, indice_key="d0")
    down, up = SparseConv3dDown(8, 12, bias=bias), SparseInverseConv3dUp(12, 6, bias=bias)
    down.load_state_dict(down_ref.state_dict())
    up.load_state_dict(up_ref.state_dict())
    x = torch.randn(len(coords), 8)
    with one_thread():
        coarse_sp = down_ref(_sparse_tensor(x, coords, 2))
        fine_sp = up_ref(coarse_sp)
    coarse = down(x, torch.from_numpy(index.down[0]))
    # spconv's coarse rows come in hash order: compare by coordinate.
    key = {tuple(c): i for i, c in enumerate(index.coords[1].tolist())}
    order = [key[tuple(c)] for c in coarse_sp.indices[:, 1:].tolist()]
    torch.testing.assert_close(coarse[order], coarse_sp.features, atol=1e-5, rtol=1e-5)
    # The inverse conv fed spconv's coarse features (reordered to ours) gives spconv's output.
    coarse_ours_order = torch.empty_like(coarse_sp.features)
    coarse_ours_order[order] = coarse_sp.features
    fine = up(coarse_ours_order, torch.from_numpy(index.up[0]))
    torch.testing.assert_close(fine, fine_sp.features, atol=1e-5, rtol=1e-5)


def _dense(feats: torch.Tensor, coords: np.ndarray, shape: list[int]) -> torch.Tensor:
    """``(1, C, X, Y, Z)`` grid with ``feats`` at ``coords`` and zeros elsewhere."""
    grid = feats.new_zeros(*shape, feats.shape[1])
    c = torch.from_numpy(coords.astype(np.int64))
    grid = grid.index_put((c[:, 0], c[:, 1], c[:, 2]), feats)
    return grid.permute(3, 0, 1, 2).unsqueeze(0)


def _at(grid: torch.Tensor, coords: np.ndarray) -> torch.Tensor:
    c = torch.from_numpy(coords.astype(np.int64))
    return grid[0][:, c[:, 0], c[:, 1], c[:, 2]].t()


def _torch_weight(weight: torch.Tensor) -> torch.Tensor:
    """spconv ``(out, kx, ky, kz, in)`` -> ``F.conv3d``'s ``(out, in, kx, ky, kz)``."""
    return weight.permute(0, 4, 1, 2, 3)


def _grads(out: torch.Tensor, probe: torch.Tensor, *leaves: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad((out * probe).sum(), leaves))


def test_backward_matches_dense_conv3d() -> None:
    coords = np.unique(np.random.default_rng(4).integers(0, 8, (150, 3)), axis=0).astype(np.int32)
    index = build_sparse_index(coords, 1)
    tables = [torch.from_numpy(a) for a in (index.subm[0], index.down[0], index.up[0])]
    subm, down = SubMConv3d(5, 4, bias=True).double(), SparseConv3dDown(4, 6, bias=True).double()
    up = SparseInverseConv3dUp(6, 3, bias=True).double()
    x = torch.randn(len(coords), 5, dtype=torch.float64, requires_grad=True)
    shape = [8, 8, 8]

    # Submanifold: dense conv (padding 1) read at the active voxels only.
    y = subm(x, tables[0])
    y_ref = _at(
        F.conv3d(_dense(x, coords, shape), _torch_weight(subm.weight), subm.bias, padding=1), coords
    )
    torch.testing.assert_close(y, y_ref)
    probe = torch.randn_like(y)
    g = _grads(y, probe, x, subm.weight, subm.bias)
    g_ref = _grads(y_ref, probe, x, subm.weight, subm.bias)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b)

    # Down: dense stride-2 conv read at the active coarse voxels.
    h = torch.randn(len(coords), 4, dtype=torch.float64, requires_grad=True)
    z = down(h, tables[1])
    z_ref = _at(
        F.conv3d(_dense(h, coords, shape), _torch_weight(down.weight), down.bias, stride=2),
        index.coords[1],
    )
    torch.testing.assert_close(z, z_ref)
    probe = torch.randn_like(z)
    for a, b in zip(
        _grads(z, probe, h, down.weight, down.bias),
        _grads(z_ref, probe, h, down.weight, down.bias),
        strict=True,
    ):
        torch.testing.assert_close(a, b)

    # Up: dense transposed conv read at the fine voxels.
    q = torch.randn(len(index.coords[1]), 6, dtype=torch.float64, requires_grad=True)
    u = up(q, tables[2])
    u_ref = _at(
        F.conv_transpose3d(
            _dense(q, index.coords[1], [4, 4, 4]),
            up.weight.permute(4, 0, 1, 2, 3),
            up.bias,
            stride=2,
        ),
        coords,
    )
    torch.testing.assert_close(u, u_ref)
    probe = torch.randn_like(u)
    for a, b in zip(
        _grads(u, probe, q, up.weight, up.bias),
        _grads(u_ref, probe, q, up.weight, up.bias),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


def test_gradcheck_subm_small() -> None:
    coords = np.unique(np.random.default_rng(6).integers(0, 5, (40, 3)), axis=0).astype(np.int32)
    table = torch.from_numpy(build_sparse_index(coords, 0).subm[0])
    conv = SubMConv3d(3, 2, offsets_per_matmul=9).double()
    x = torch.randn(len(coords), 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: conv(f, table), (x,))


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kernel_size"):
        SubMConv3d(4, 4, kernel_size=5)
    with pytest.raises(ValueError, match="offsets_per_matmul"):
        SubMConv3d(4, 4, offsets_per_matmul=4)
    with pytest.raises(ValueError, match="table"):
        SubMConv3d(4, 4)(torch.zeros(3, 4))
