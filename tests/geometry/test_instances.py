"""Tests of ws3d_ros.geometry.instances: grouping rules, id order, permutation
equivariance (hypothesis), dual-set completion, recovery of simulated instances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ws3d_ros.geometry.instances import UNKNOWN_LABEL, connected_cells, group_instances
from ws3d_ros.sim.rig import SimConfig, Simulator

CAR, ROAD = 8, 0


def box(center: tuple[float, float, float], size=(4.0, 1.8, 1.5), n: int = 300, seed: int = 0):
    """``n`` points on the surface-ish volume of a car-sized box."""
    rng = np.random.default_rng(seed)
    return np.asarray(center) + (rng.uniform(-0.5, 0.5, (n, 3)) * np.asarray(size))


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming of the non-zero ids (0 stays 0)."""
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))


def perfect_offsets(xyz: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """Offset of each instance point to its instance's centroid (0 for stuff)."""
    _, inv = np.unique(instances, return_inverse=True)
    count = np.bincount(inv)
    centre = np.stack([np.bincount(inv, weights=xyz[:, a]) for a in range(3)], axis=1)
    off = centre[inv] / count[inv, None] - xyz
    off[instances == 0] = 0.0
    return off


def test_two_separated_cars_get_two_ids_and_stuff_gets_zero() -> None:
    xyz = np.concatenate([box((0, 0, 0.75)), box((10, 0, 0.75), seed=1), box((5, 5, 0), seed=2)])
    labels = np.repeat(np.array([CAR, CAR, ROAD], np.uint16), 300)
    ids = group_instances(xyz, None, labels, {CAR})
    assert ids.dtype == np.uint32 and ids.shape == (900,)
    np.testing.assert_array_equal(ids, np.repeat([1, 2, 0], 300))  # numbered by first point


def test_offsets_split_touching_objects() -> None:
    a, b = box((0, 0, 0.75)), box((4.0, 0, 0.75), seed=1)  # bumper to bumper
    xyz = np.concatenate([a, b])
    labels = np.full(600, CAR, np.uint16)
    assert len(np.unique(group_instances(xyz, None, labels, [CAR]))) == 1
    truth = np.repeat([1, 2], 300)
    ids = group_instances(xyz, perfect_offsets(xyz, truth), labels, [CAR])
    np.testing.assert_array_equal(ids, truth)
    # Noisy offsets (10 cm) still land near distinct centres.
    noise = np.random.default_rng(5).normal(0.0, 0.1, xyz.shape)
    ids = group_instances(xyz, perfect_offsets(xyz, truth) + noise, labels, [CAR])
    np.testing.assert_array_equal(ids, truth)


def test_classes_are_grouped_separately() -> None:
    xyz = box((0, 0, 0.75), n=200)
    labels = np.repeat(np.array([CAR, 10], np.uint16), 100)  # same place, two thing classes
    ids = group_instances(xyz, None, labels, np.array([CAR, 10]))
    np.testing.assert_array_equal(ids, np.repeat([1, 2], 100))


def test_small_groups_unknown_and_non_finite_get_zero() -> None:
    xyz = np.concatenate([box((0, 0, 0)), box((20, 0, 0), n=5)])
    labels = np.full(305, CAR, np.uint16)
    labels[:10] = UNKNOWN_LABEL
    xyz[10] = np.nan
    offsets = np.zeros_like(xyz)
    offsets[11] = [np.inf, 0, 0]
    ids = group_instances(xyz, offsets, labels, [CAR, UNKNOWN_LABEL], min_points=8)
    assert np.all(ids[:12] == 0)  # unknown (even listed as a thing), NaN point, inf offset
    assert np.all(ids[12:300] == 1)
    assert np.all(ids[300:] == 0)  # 5 points < min_points
    assert np.all(group_instances(xyz, None, labels, []) == 0)
    assert len(group_instances(np.zeros((0, 3)), None, np.zeros(0, np.uint16), [CAR])) == 0


def test_radius_links_close_points_only() -> None:
    line = np.zeros((40, 3))
    line[:, 0] = np.arange(40) * 0.3
    line[20:, 0] += 2.0  # a 2.3 m gap in the middle
    labels = np.full(40, CAR, np.uint16)
    ids = group_instances(line, None, labels, [CAR], radius=0.5)
    np.testing.assert_array_equal(ids, np.repeat([1, 2], 20))
    assert np.all(group_instances(line, None, labels, [CAR], radius=3.0) == 1)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 120))
    xyz = draw(hnp.arrays(np.float32, (n, 3), elements=st.floats(-5, 5, width=32)))
    off = draw(hnp.arrays(np.float32, (n, 3), elements=st.floats(-1, 1, width=32)))
    labels = draw(hnp.arrays(np.uint16, n, elements=st.sampled_from([0, 1, 2, UNKNOWN_LABEL])))
    return xyz, off, labels


@settings(max_examples=80, deadline=None)
@given(scenes(), st.booleans(), st.randoms(use_true_random=False))
def test_deterministic_and_permutation_equivariant(scene, dual, rnd) -> None:
    xyz, off, labels = scene
    kw = {"radius": 0.7, "min_points": 3, "dual_set": dual}
    ids = group_instances(xyz, off, labels, [1, 2], **kw)
    np.testing.assert_array_equal(ids, group_instances(xyz, off, labels, [1, 2], **kw))
    assert np.all(ids[~np.isin(labels, [1, 2])] == 0)
    # Ids are 1..K in order of first point.
    nz = ids[ids > 0]
    _, first = np.unique(nz, return_index=True)
    np.testing.assert_array_equal(nz[np.sort(first)], np.arange(1, len(first) + 1))
    perm = np.arange(len(xyz))
    rnd.shuffle(perm)
    moved = group_instances(xyz[perm], off[perm], labels[perm], [1, 2], **kw)
    assert same_partition(moved, ids[perm])


def test_connected_cells_never_links_groups() -> None:
    pts = np.zeros((6, 3))
    comp, first = connected_cells(pts, np.array([0, 0, 1, 1, 2, 2]), 1.0)
    np.testing.assert_array_equal(comp, [0, 0, 1, 1, 2, 2])
    assert len(first) == 3


def test_dual_set_recovers_objects_the_offsets_missed() -> None:
    a, b = box((0, 0, 0.75)), box((12, 0, 0.75), seed=1)
    xyz = np.concatenate([a, b])
    labels = np.full(600, CAR, np.uint16)
    truth = np.repeat([1, 2], 300)
    off = perfect_offsets(xyz, truth)
    # Car b's offsets are garbage (scattered 30 m): no shifted cluster reaches min_points.
    off[300:] = np.random.default_rng(2).uniform(-30, 30, (300, 3))
    single = group_instances(xyz, off, labels, [CAR])
    assert np.all(single[:300] == 1) and np.count_nonzero(single[300:]) < 300
    np.testing.assert_array_equal(group_instances(xyz, off, labels, [CAR], dual_set=True), truth)
    # A few stray offsets inside car a: single set drops them, dual set gives them back.
    off = perfect_offsets(xyz, truth)
    off[:10] += np.random.default_rng(3).uniform(-20, 20, (10, 3))
    single = group_instances(xyz, off, labels, [CAR])
    assert np.all(single[:10] == 0)
    np.testing.assert_array_equal(group_instances(xyz, off, labels, [CAR], dual_set=True), truth)


@pytest.fixture(scope="module")
def street_sweep():
    return Simulator(SimConfig(preset="street", frames=1, lidar_beams=32)).frame(0)


def recovered_fraction(pred: np.ndarray, truth: np.ndarray, min_points: int) -> float:
    """Fraction of GT instances (>= min_points) matched by a prediction with IoU > 0.5."""
    ok = total = 0
    pred_size = np.bincount(pred.astype(np.int64))
    for g in np.unique(truth[truth > 0]):
        m = truth == g
        if m.sum() < min_points:
            continue
        total += 1
        ids, inter = np.unique(pred[m], return_counts=True)
        inter, ids = inter[ids > 0], ids[ids > 0]
        iou = inter / (m.sum() + pred_size[ids] - inter) if len(ids) else np.zeros(1)
        ok += bool(iou.max() > 0.5)
    assert total > 10
    return ok / total


@pytest.mark.parametrize("dual", [False, True])
def test_perfect_offsets_recover_simulated_instances(street_sweep, dual: bool) -> None:
    f = street_sweep
    xyz = f.xyz.astype(np.float64)
    things = [c.id for c in f.classes if c.thing]
    offsets = perfect_offsets(xyz, f.instances.astype(np.int64))
    pred = group_instances(xyz, offsets, f.labels, things, dual_set=dual)
    assert recovered_fraction(pred, f.instances, 8) >= 0.9
    assert np.all(pred[~np.isin(f.labels, things)] == 0)
