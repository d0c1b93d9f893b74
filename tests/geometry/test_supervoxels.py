"""Tests of ws3d_ros.geometry.supervoxels: partition invariants (hypothesis), adjacency,
purity on a simulated sweep, non-finite points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ws3d_ros.geometry.supervoxels import Supervoxels, neighbour_table, supervoxels
from ws3d_ros.sim.rig import SimConfig, Simulator

coordinate = st.floats(-4, 4, allow_nan=False, width=32)


@st.composite
def clouds(draw: st.DrawFn) -> dict:
    """Small clouds with optional intensity and (partly valid) colours."""
    n = draw(st.integers(0, 150))
    xyz = draw(hnp.arrays(np.float32, (n, 3), elements=coordinate))
    kw: dict = {"xyz": xyz}
    if draw(st.booleans()):
        kw["intensity"] = draw(hnp.arrays(np.float32, n, elements=st.floats(0, 1, width=32)))
    if draw(st.booleans()):
        kw["colors"] = draw(hnp.arrays(np.uint8, (n, 3)))
        kw["color_valid"] = draw(hnp.arrays(np.bool_, n))
    kw["voxel_size"] = draw(st.sampled_from([0.1, 0.3, 0.7]))
    kw["seed_resolution"] = kw["voxel_size"] * draw(st.sampled_from([1.0, 3.0, 5.0]))
    return kw


def check_partition(sv: Supervoxels, finite: np.ndarray) -> None:
    n = len(finite)
    assert sv.labels.dtype == np.int64 and sv.labels.shape == (n,)
    assert np.all(sv.labels[~finite] == -1)
    assert np.all((sv.labels[finite] >= 0) & (sv.labels[finite] < sv.num))
    # CSR lists every finite point exactly once, ascending within a supervoxel, none empty.
    assert sv.offsets[0] == 0 and sv.offsets[-1] == len(sv.point_order)
    np.testing.assert_array_equal(np.sort(sv.point_order), np.flatnonzero(finite))
    assert np.all(sv.counts() > 0)
    for s in range(sv.num):
        members = sv.points_of(s)
        assert np.all(np.diff(members) > 0) and np.all(sv.labels[members] == s)
    # All points of a voxel share its supervoxel.
    kept = sv.voxels.point_to_voxel >= 0
    np.testing.assert_array_equal(sv.labels[kept], sv.voxel_labels[sv.voxels.point_to_voxel[kept]])
    assert sv.centroids.shape == (sv.num, 3) and sv.normals.shape == (sv.num, 3)
    if sv.num:
        np.testing.assert_allclose(np.linalg.norm(sv.normals, axis=1), 1.0, atol=1e-9)


def permuted(kw: dict, perm: np.ndarray) -> dict:
    out = dict(kw)
    for key in ("xyz", "intensity", "colors", "color_valid"):
        if key in kw:
            out[key] = kw[key][perm]
    return out


@settings(max_examples=60, deadline=None)
@given(clouds())
def test_partition_covers_every_point_exactly_once(kw: dict) -> None:
    sv = supervoxels(**kw)
    check_partition(sv, np.ones(len(kw["xyz"]), bool))


@settings(max_examples=60, deadline=None)
@given(clouds(), st.randoms(use_true_random=False))
def test_deterministic_and_permutation_invariant(kw: dict, rnd) -> None:
    a = supervoxels(**kw)
    b = supervoxels(**kw)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    perm = np.arange(len(kw["xyz"]))
    rnd.shuffle(perm)
    c = supervoxels(**permuted(kw, perm))
    # Ids follow the voxel grid, so the permuted result is the same ids, permuted.
    np.testing.assert_array_equal(c.labels, a.labels[perm])
    assert c.num == a.num
    np.testing.assert_array_equal(c.adjacency(), a.adjacency())


@settings(max_examples=40, deadline=None)
@given(clouds())
def test_adjacency_is_symmetric_and_exactly_the_touching_pairs(kw: dict) -> None:
    sv = supervoxels(**kw)
    edges = sv.adjacency()
    assert edges.dtype == np.int64 and edges.shape[1] == 2
    assert np.all(edges[:, 0] < edges[:, 1])
    both = sv.adjacency(both_directions=True)
    pairs = {tuple(e) for e in both.tolist()}
    assert pairs == {(j, i) for i, j in pairs} and len(pairs) == 2 * len(edges)
    # Brute force: supervoxels touch when two of their voxels are 26-neighbours.
    coords = sv.voxels.coords.astype(np.int64)
    cheb = np.abs(coords[:, None, :] - coords[None, :, :]).max(axis=2)
    vi, vj = np.nonzero(cheb <= 1)
    li, lj = sv.voxel_labels[vi], sv.voxel_labels[vj]
    expected = {(int(a), int(b)) for a, b in zip(li, lj, strict=True) if a < b}
    assert {tuple(e) for e in edges.tolist()} == expected


def test_neighbour_table_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 6, (300, 3))
    raw[:20] += 1_000_000_000  # far cells: the key packing must not overflow or wrap
    coords = np.unique(raw, axis=0)
    table = neighbour_table(coords)
    lookup = {tuple(c): i for i, c in enumerate(coords.tolist())}
    offsets = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]
    for i, c in enumerate(coords.tolist()):
        for k, (dx, dy, dz) in enumerate(offsets):
            assert table[i, k] == lookup.get((c[0] + dx, c[1] + dy, c[2] + dz), -1)


def test_non_finite_points_get_minus_one_and_leave_the_rest_unchanged() -> None:
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-3, 3, (400, 3))
    intensity = rng.uniform(0, 1, 400)
    bad = np.zeros(400, bool)
    bad[::7] = True
    dirty = xyz.copy()
    dirty[bad, rng.integers(0, 3, bad.sum())] = np.nan
    dirty[3] = [np.inf, 0.0, 0.0]
    bad[3] = True
    sv = supervoxels(dirty, intensity=intensity)
    check_partition(sv, ~bad)
    clean = supervoxels(xyz[~bad], intensity=intensity[~bad])
    np.testing.assert_array_equal(sv.labels[~bad], clean.labels)


def test_all_non_finite_and_empty() -> None:
    sv = supervoxels(np.full((5, 3), np.nan))
    assert sv.num == 0 and np.all(sv.labels == -1) and len(sv.adjacency()) == 0
    assert supervoxels(np.zeros((0, 3))).num == 0


def test_planes_meeting_at_a_corner_are_not_mixed() -> None:
    # A floor and a wall meeting at x = 0: the normal term keeps supervoxels on one side;
    # only the voxels holding both planes' points at the corner line can be mixed.
    g = np.arange(0.0, 3.0, 0.05)
    u, v = np.meshgrid(g, g)
    floor = np.column_stack([u.ravel() + 0.05, v.ravel(), np.zeros(u.size)])
    wall = np.column_stack([np.zeros(u.size), v.ravel(), u.ravel() + 0.05])
    sv = supervoxels(np.concatenate([floor, wall]), voxel_size=0.1, seed_resolution=0.6)
    assert 30 <= sv.num <= 120
    assert purity(sv.labels, np.repeat([0, 1], u.size)) >= 0.98


@pytest.fixture(scope="module")
def street_sweep():
    return Simulator(SimConfig(preset="street", frames=1, lidar_beams=32)).frame(0)


def purity(labels: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of points whose supervoxel's majority class is their own."""
    s, c = int(labels.max()) + 1, int(gt.max()) + 1
    hist = np.bincount(labels * c + gt, minlength=s * c).reshape(s, c)
    return float(np.mean(hist.argmax(axis=1)[labels] == gt))


def test_supervoxels_follow_class_boundaries_on_a_simulated_sweep(street_sweep) -> None:
    f = street_sweep
    sv = supervoxels(f.xyz, intensity=f.points["intensity"])
    check_partition(sv, np.ones(len(f), bool))
    assert purity(sv.labels, f.labels.astype(np.int64)) >= 0.9
    assert 500 <= sv.num <= len(f) // 10  # a real over-segmentation, not points or blobs
    assert len(sv.adjacency()) > 0


def test_bad_arguments_raise() -> None:
    xyz = np.zeros((4, 3))
    with pytest.raises(ValueError, match="shape"):
        supervoxels(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="intensity"):
        supervoxels(xyz, intensity=np.zeros(3))
    with pytest.raises(ValueError, match="colors"):
        supervoxels(xyz, colors=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="seed_resolution"):
        supervoxels(xyz, voxel_size=1.0, seed_resolution=0.5)
    with pytest.raises(ValueError, match="int32 voxel grid"):
        supervoxels(np.array([[0.0, 0.0, 0.0], [1e12, 0.0, 0.0]]))
