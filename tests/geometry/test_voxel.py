"""Tests of ws3d_ros.geometry.voxel: grid invariants (hypothesis), CSR layout, pooling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ws3d_ros.geometry.voxel import Voxelization, voxel_reduce, voxelize

coordinate = st.floats(-50, 50, allow_nan=False, width=32)
clouds = hnp.arrays(np.float32, st.tuples(st.integers(0, 200), st.just(3)), elements=coordinate)
sizes = st.one_of(
    st.floats(0.05, 5.0),
    st.tuples(st.floats(0.05, 5.0), st.floats(0.05, 5.0), st.floats(0.05, 5.0)),
)


def check_csr(vox: Voxelization, n: int) -> None:
    m = len(vox.coords)
    assert vox.coords.dtype == np.int32 and vox.coords.shape == (m, 3)
    assert vox.point_to_voxel.dtype == np.int64 and vox.point_to_voxel.shape == (n,)
    assert vox.voxel_offsets.dtype == np.int64 and vox.voxel_offsets.shape == (m + 1,)
    assert vox.voxel_offsets[0] == 0 and vox.voxel_offsets[-1] == len(vox.point_order)
    assert np.all(vox.counts() > 0)
    # Lexicographically sorted, unique.
    if m > 1:
        keys = [tuple(c) for c in vox.coords.tolist()]
        assert keys == sorted(keys) and len(set(keys)) == m
    # point_order is exactly the kept points, grouped by voxel, ascending within a voxel.
    kept = np.flatnonzero(vox.point_to_voxel >= 0)
    np.testing.assert_array_equal(np.sort(vox.point_order), kept)
    for i in range(m):
        members = vox.points_of(i)
        assert np.all(np.diff(members) > 0)
        assert np.all(vox.point_to_voxel[members] == i)


@settings(max_examples=150, deadline=None)
@given(clouds, sizes)
def test_every_finite_point_in_exactly_one_containing_voxel(points, size) -> None:
    vox = voxelize(points, size)
    check_csr(vox, len(points))
    assert np.all(vox.point_to_voxel >= 0)  # all finite, no bounds
    if len(points):
        assert vox.coords.min() >= 0  # origin None puts the grid at the minimum
        c = vox.coords[vox.point_to_voxel]
        p = points.astype(np.float64)
        lo = c * vox.voxel_size + vox.origin
        hi = (c + 1) * vox.voxel_size + vox.origin
        assert np.all(lo <= p) and np.all(p < hi)


@settings(max_examples=100, deadline=None)
@given(clouds, sizes, st.randoms(use_true_random=False))
def test_permuting_points_permutes_the_assignment(points, size, rnd) -> None:
    perm = np.arange(len(points))
    rnd.shuffle(perm)
    a = voxelize(points, size)
    b = voxelize(points[perm], size)
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.origin, b.origin)
    np.testing.assert_array_equal(b.point_to_voxel, a.point_to_voxel[perm])


@settings(max_examples=100, deadline=None)
@given(clouds, st.floats(0.1, 3.0))
def test_non_finite_and_out_of_bounds_points_are_dropped(points, size) -> None:
    pts = points.astype(np.float64)
    if len(pts):
        pts[:: max(1, len(pts) // 5), 1] = np.nan
        pts[1::7, 2] = np.inf
    lo, hi = (-20.0, -30.0, -10.0), (25.0, 30.0, 10.0)
    vox = voxelize(pts, size, origin=(-20.0, -30.0, -10.0), bounds=(lo, hi))
    check_csr(vox, len(pts))
    inside = np.all(np.isfinite(pts), axis=1) & np.all((pts >= lo) & (pts < hi), axis=1)
    np.testing.assert_array_equal(vox.point_to_voxel >= 0, inside)
    c = vox.coords[vox.point_to_voxel[inside]]
    assert np.all(c * size + vox.origin <= pts[inside])
    assert np.all(pts[inside] < (c + 1) * size + vox.origin)


@pytest.mark.parametrize(("size", "origin"), [(0.1, 0.0), (0.3, -0.9), (0.2, -50.0)])
def test_cell_borders_are_exact(size, origin) -> None:
    # Points on (and one ulp beside) cell borders, where floor((p - o) / s) misrounds.
    k = np.arange(-1000.0, 1000.0)
    grid = k * size + origin
    p = np.concatenate([grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf)])
    naive = np.floor((p - origin) / size)
    assert not np.all((naive * size + origin <= p) & (p < (naive + 1) * size + origin))
    pts = np.column_stack([p, p[::-1], np.roll(p, 7)])
    vox = voxelize(pts, size, origin=(origin,) * 3)
    c = vox.coords[vox.point_to_voxel]
    assert np.all(c * size + origin <= pts) and np.all(pts < (c + 1) * size + origin)


def test_known_grid_and_reduce() -> None:
    pts = np.array(
        [
            [0.1, 0.1, 0.1],
            [1.5, 0.2, 0.3],
            [0.2, 0.3, 0.4],
            [1.9, 0.9, 0.1],
            [-0.5, 0.0, 0.0],
            [np.nan, 0.0, 0.0],
        ]
    )
    vox = voxelize(pts, 1.0)
    np.testing.assert_array_equal(vox.origin, [-1.0, 0.0, 0.0])
    np.testing.assert_array_equal(vox.coords, [[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    np.testing.assert_array_equal(vox.point_to_voxel, [1, 2, 1, 2, 0, -1])
    np.testing.assert_array_equal(vox.counts(), [1, 2, 2])
    np.testing.assert_array_equal(vox.points_of(2), [1, 3])
    np.testing.assert_allclose(vox.centers()[0], [-0.5, 0.5, 0.5])
    values = np.array([[1.0, 10], [2, 20], [3, 30], [4, 40], [5, 50], [99, 99]])
    np.testing.assert_allclose(voxel_reduce(values, vox), [[5, 50], [2, 20], [3, 30]])
    np.testing.assert_allclose(voxel_reduce(values, vox, "max"), [[5, 50], [3, 30], [4, 40]])
    np.testing.assert_allclose(voxel_reduce(values, vox, "min"), [[5, 50], [1, 10], [2, 20]])
    np.testing.assert_allclose(voxel_reduce(values, vox, "sum"), [[5, 50], [4, 40], [6, 60]])
    labels = np.array([1, 2, 4, 6, 7, 0], dtype=np.int32)
    mean = voxel_reduce(labels, vox)
    assert mean.dtype == np.float64
    np.testing.assert_allclose(mean, [7, 2.5, 4])
    assert voxel_reduce(labels, vox, "max").dtype == np.int32
    with pytest.raises(ValueError, match="rows"):
        voxel_reduce(values[:3], vox)
    with pytest.raises(ValueError, match="unknown op"):
        voxel_reduce(values, vox, "median")


@settings(max_examples=50, deadline=None)
@given(clouds, st.floats(0.2, 5.0))
def test_reduce_matches_a_python_loop(points, size) -> None:
    vox = voxelize(points, size)
    values = np.arange(len(points) * 2, dtype=np.float64).reshape(-1, 2) % 7
    mean = voxel_reduce(values, vox)
    top = voxel_reduce(values, vox, "max")
    assert mean.shape == top.shape == (len(vox), 2)
    for i in range(len(vox)):
        members = vox.points_of(i)
        np.testing.assert_allclose(mean[i], values[members].mean(axis=0))
        np.testing.assert_array_equal(top[i], values[members].max(axis=0))


def test_empty_huge_and_invalid_inputs() -> None:
    empty = voxelize(np.zeros((0, 3)), 0.5)
    assert len(empty) == 0 and empty.voxel_offsets.tolist() == [0]
    assert voxel_reduce(np.zeros((0, 4)), empty).shape == (0, 4)
    all_nan = voxelize(np.full((3, 3), np.nan), 0.5)
    assert len(all_nan) == 0 and all_nan.point_to_voxel.tolist() == [-1, -1, -1]
    # Coordinates beyond int32 are dropped, the rest stay.
    far = voxelize(np.array([[0.0, 0, 0], [1e12, 0, 0]]), 0.1, origin=(0, 0, 0))
    assert far.point_to_voxel.tolist() == [0, -1]
    # Extra columns (intensity...) are ignored; a huge key span falls back to lexsort.
    spread = np.array([[0.0, 0, 0, 7], [2e8, -2e8, 1e8, 7], [2e8, -2e8, -1e8, 7]])
    vox = voxelize(spread, 1.0)
    check_csr(vox, 3)
    np.testing.assert_array_equal(vox.point_to_voxel, [0, 2, 1])
    with pytest.raises(ValueError, match="voxel_size"):
        voxelize(np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="shape"):
        voxelize(np.zeros((2, 2)), 1.0)


def test_a_full_sweep() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 50, (131072, 3)).astype(np.float32)
    vox = voxelize(pts, 0.2)
    assert vox.point_to_voxel.min() == 0 and vox.counts().sum() == len(pts)
