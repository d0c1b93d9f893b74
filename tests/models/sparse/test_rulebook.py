"""The numpy rulebook equals spconv's ``get_indice_pairs``, tap order included."""

from __future__ import annotations

import numpy as np
import pytest
from spconv.core import ConvAlgo
from spconv.pytorch import ops

from ws3d_ros.geometry.voxel import voxelize
from ws3d_ros.models.sparse.rulebook import (
    DOWN_OFFSETS,
    SUBM_OFFSETS,
    SparseIndex,
    build_sparse_index,
)

from .spconv_ref import (
    batch_size,
    one_thread,
    random_coords,
    rows_of,
    spatial_shape,
    spconv_pairs_to_table,
    surface_coords,
    with_batch_column,
)


def _spconv_subm_table(coords: np.ndarray) -> np.ndarray:
    with one_thread():
        _, pairs, counts = ops.get_indice_pairs(
            with_batch_column(coords), batch_size(coords), spatial_shape(coords), ConvAlgo.Native,
            [3, 3, 3], [1, 1, 1], [1, 1, 1], [1, 1, 1], [0, 0, 0], subm=True,
        )  # fmt: skip
    return spconv_pairs_to_table(pairs, counts, len(coords), len(coords), subm=True)


def _spconv_down(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with one_thread():
        shape = spatial_shape(coords, 2)
        out, pairs, counts = ops.get_indice_pairs(
            with_batch_column(coords), batch_size(coords), shape, ConvAlgo.Native,
            [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], [0, 0, 0], subm=False,
        )  # fmt: skip
    table = spconv_pairs_to_table(pairs, counts, len(out), len(coords), subm=False)
    return out.numpy()[:, 1:], table


def _brute_subm(coords: np.ndarray) -> np.ndarray:
    row = {tuple(c): i for i, c in enumerate(coords.tolist())}
    m = len(coords)
    return np.array(
        [[row.get(tuple(c + d), m) for d in SUBM_OFFSETS] for c in coords.astype(np.int64)],
        dtype=np.int64,
    ).reshape(m, 27)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subm_table_equals_spconv(seed: int) -> None:
    coords = random_coords(600, 12, seed)
    ours = build_sparse_index(coords, 0).subm[0]
    np.testing.assert_array_equal(ours, _spconv_subm_table(coords))
    np.testing.assert_array_equal(ours, _brute_subm(coords))


@pytest.mark.parametrize("seed", [0, 3])
def test_down_table_equals_spconv_at_every_level(seed: int) -> None:
    coords = surface_coords(3000, seed)
    index = build_sparse_index(coords, 3)
    for level in range(3):
        fine = index.coords[level]
        sp_coarse, sp_table = _spconv_down(fine)
        coarse = index.coords[level + 1]
        # spconv lists coarse voxels in hash order; ours are sorted. Compare by coordinate.
        assert len(sp_coarse) == len(coarse)
        order = rows_of(coarse, sp_coarse)
        np.testing.assert_array_equal(index.down[level][order], sp_table)
        np.testing.assert_array_equal(index.subm[level + 1], _spconv_subm_table(coarse))


def test_down_and_up_are_transposes() -> None:
    coords = surface_coords(2000, 5)
    index = build_sparse_index(coords, 2)
    for level in range(2):
        fine, coarse = index.coords[level], index.coords[level + 1]
        parent, tap = np.divmod(index.up[level], 8)
        np.testing.assert_array_equal(fine // 2, coarse[parent])
        np.testing.assert_array_equal(fine - 2 * coarse[parent], DOWN_OFFSETS[tap])
        np.testing.assert_array_equal(index.down[level][parent, tap], np.arange(len(fine)))
        # Every fine voxel appears exactly once in the down table.
        valid = index.down[level][index.down[level] < len(fine)]
        np.testing.assert_array_equal(np.sort(valid), np.arange(len(fine)))
        # Coarse coords: sorted and unique.
        assert len(np.unique(coarse, axis=0)) == len(coarse)
        np.testing.assert_array_equal(np.unique(coarse, axis=0), coarse)


def test_batch_column_keeps_clouds_apart() -> None:
    a, b = random_coords(300, 8, 7), random_coords(250, 8, 8)
    both = np.concatenate(
        [
            np.column_stack([np.zeros(len(a), np.int32), a]),
            np.column_stack([np.ones(len(b), np.int32), b]),
        ]
    )
    joint = build_sparse_index(both, 2)
    ia, ib = build_sparse_index(a, 2), build_sparse_index(b, 2)
    for level in range(3):
        ma = ia.sizes()[level]
        sub = joint.subm[level]
        expect_b = np.where(
            ib.subm[level] == ib.sizes()[level], joint.sizes()[level], ib.subm[level] + ma
        )
        np.testing.assert_array_equal(
            sub[:ma], np.where(ia.subm[level] == ma, joint.sizes()[level], ia.subm[level])
        )
        np.testing.assert_array_equal(sub[ma:], expect_b)
    np.testing.assert_array_equal(joint.subm[1], _spconv_subm_table(joint.coords[1]))


def test_deterministic_and_flat_order() -> None:
    coords = surface_coords(2000, 9)
    x, y = build_sparse_index(coords, 3), build_sparse_index(coords.copy(), 3)
    assert x.names() == SparseIndex.input_names(3)
    expect = ["subm_0", "subm_1", "subm_2", "subm_3", "down_0", "down_1", "down_2"]
    assert x.names() == [*expect, "up_0", "up_1", "up_2"]
    for p, q in zip(x.arrays(), y.arrays(), strict=True):
        assert p.dtype == np.int64
        np.testing.assert_array_equal(p, q)
    tensors = x.to_torch()
    assert [tuple(t.shape) for t in tensors] == [a.shape for a in x.arrays()]
    assert set(x.feeds()) == set(x.names())


def test_from_voxelization_of_a_cloud() -> None:
    rng = np.random.default_rng(0)
    vox = voxelize(rng.uniform(-5, 5, (5000, 3)), 0.5)
    index = build_sparse_index(vox.coords, 2)
    np.testing.assert_array_equal(index.subm[0], _spconv_subm_table(vox.coords))


def test_rejects_bad_coords() -> None:
    with pytest.raises(ValueError, match="sorted"):
        build_sparse_index(np.array([[1, 0, 0], [0, 0, 0]], np.int32), 1)
    with pytest.raises(ValueError, match=">= 0"):
        build_sparse_index(np.array([[-1, 0, 0]], np.int32), 1)
    with pytest.raises(ValueError, match="shape"):
        build_sparse_index(np.zeros((4, 2), np.int32), 1)
    with pytest.raises(ValueError, match="integer"):
        build_sparse_index(np.zeros((4, 3), np.float32), 1)


def test_empty_cloud() -> None:
    index = build_sparse_index(np.zeros((0, 3), np.int32), 2)
    assert index.sizes() == [0, 0, 0]
    assert [a.shape for a in index.arrays()] == [(0, 27)] * 3 + [(0, 8)] * 2 + [(0,)] * 2
