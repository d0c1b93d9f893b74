"""Click-region consistency (training.otoc.click_regions): a propagated region of a class
must hold a click of that class; otherwise the next-best class, else no label."""

from __future__ import annotations

import numpy as np
import pytest

from training.otoc.click_regions import enforce_click_regions, supported_supervoxels


def _blob(center: float, n: int = 20) -> np.ndarray:
    """``n`` points on a 0.2 m line along x starting at ``center`` (one connected run)."""
    return np.stack([center + 0.2 * np.arange(n) / n, np.zeros(n), np.zeros(n)], 1)


def _scene(gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Supervoxels 0, 1 touch (a region near x=0); supervoxel 2 sits ``gap`` metres on."""
    xyz = np.concatenate([_blob(0.0), _blob(0.5), _blob(0.7 + gap)])
    return xyz, np.repeat([0, 1, 2], 20)


def test_a_region_without_a_click_of_its_class_falls_to_the_next_best_class() -> None:
    xyz, p2s = _scene(gap=10.0)
    probs = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.3, 0.6, 0.1]], np.float32)
    clicks = np.full(60, -1)
    clicks[3] = 1  # class 1 clicked in supervoxel 0
    clicks[45] = 0  # class 0 clicked in supervoxel 2
    out = enforce_click_regions(probs, p2s, xyz, clicks, cell=1.0)
    # Supervoxel 1 is connected to the class-1 click through supervoxel 0: kept as is.
    np.testing.assert_allclose(out[:2], probs[:2])
    # Supervoxel 2's class 1 has no click in its region: it falls to class 0 (clicked).
    assert out[2].argmax() == 0 and out[2, 1] == 0.0
    np.testing.assert_allclose(out[2].sum(), 1.0, rtol=1e-6)
    assert probs[2, 1] == pytest.approx(0.6)  # the input is untouched


def test_a_region_with_no_supported_class_gets_no_label() -> None:
    xyz, p2s = _scene(gap=10.0)
    probs = np.array([[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.3, 0.6, 0.1]], np.float32)
    clicks = np.full(60, -1)
    clicks[3] = 1
    out = enforce_click_regions(probs, p2s, xyz, clicks, cell=1.0)
    assert out[2].tolist() == [0.0, 0.0, 0.0]
    assert out[0].argmax() == 1 and out[1].argmax() == 1


def test_regions_are_connected_at_the_protocol_cell() -> None:
    """The same labelling, supervoxel 2 close by (0.3 m) or far (3 m): close, it shares the
    clicked region; far, it does not."""
    probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]], np.float32)
    for gap, kept in ((0.3, True), (3.0, False)):
        xyz, p2s = _scene(gap)
        clicks = np.full(60, -1)
        clicks[3] = 1
        out = enforce_click_regions(probs, p2s, xyz, clicks, cell=1.0)
        assert bool(out[2].argmax() == 1 and out[2].max() > 0) is kept, gap
    # A coarser cell joins what a finer one separates.
    xyz, p2s = _scene(3.0)
    out = enforce_click_regions(probs, p2s, xyz, clicks, cell=4.0)
    assert out[2].argmax() == 1 and out[2].max() > 0


def test_regions_are_per_class() -> None:
    """Supervoxels 0 and 2 are class 1 but joined only through supervoxel 1 (class 0):
    supervoxel 2's class-1 region holds no class-1 click."""
    xyz = np.concatenate([_blob(0.0), _blob(0.9), _blob(1.8)])
    p2s = np.repeat([0, 1, 2], 20)
    probs = np.array([[0.0, 1.0], [0.9, 0.1], [0.2, 0.8]], np.float32)
    clicks = np.full(60, -1)
    clicks[3], clicks[25] = 1, 0
    sup = supported_supervoxels(probs.argmax(1), np.ones(3, bool), p2s, xyz, clicks, 0.5)
    assert sup.tolist() == [True, True, False]
    out = enforce_click_regions(probs, p2s, xyz, clicks, cell=0.5)
    assert out.argmax(1).tolist() == [1, 0, 0]  # 2 falls to class 0, clicked next door


def test_clicked_supervoxels_and_points_outside_the_graph() -> None:
    xyz, p2s = _scene(gap=10.0)
    p2s = p2s.copy()
    p2s[40:] = -1  # supervoxel 2's points are outside the graph (cropped)
    probs = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], np.float32)
    clicks = np.full(60, -1)
    clicks[3], clicks[25] = 1, 0
    out = enforce_click_regions(probs, p2s, xyz, clicks)
    assert out[0].tolist() == [0.0, 1.0] and out[1].tolist() == [1.0, 0.0]
    assert out[2].tolist() == [0.0, 0.0]  # no points in the graph: nothing supports it


def test_deterministic_and_rejects_a_bad_cell() -> None:
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 20, (400, 3))
    p2s = rng.integers(0, 50, 400)
    probs = rng.dirichlet(np.ones(4), 50).astype(np.float32)
    clicks = np.where(rng.random(400) < 0.05, rng.integers(0, 4, 400), -1)
    a = enforce_click_regions(probs, p2s, xyz, clicks)
    b = enforce_click_regions(probs.copy(), p2s.copy(), xyz.copy(), clicks.copy())
    np.testing.assert_array_equal(a, b)
    live = a.max(1) > 0
    # Every supervoxel left with a label is supported by a click of it.
    assert supported_supervoxels(a.argmax(1), live, p2s, xyz, clicks, 1.0)[live].all()
    with pytest.raises(ValueError, match="cell"):
        enforce_click_regions(probs, p2s, xyz, clicks, cell=0.0)


def _split_by_a_thing() -> tuple[np.ndarray, np.ndarray]:
    """Three supervoxels in a row, 0.8 m apart: 0 | 1 | 2 (each touches the next only)."""
    xyz = np.concatenate([_blob(0.0), _blob(0.9), _blob(1.8)])
    return xyz, np.repeat([0, 1, 2], 20)


def test_a_stuff_region_continues_through_thing_labelled_points() -> None:
    """Road (0) | car (1) | road: the far road patch reaches the road click through the
    car (things stand on stuff and hide it); without thing ids it is cut off."""
    xyz, p2s = _split_by_a_thing()
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.1, 0.2]], np.float32)
    clicks = np.full(60, -1)
    clicks[3] = 0  # road clicked in supervoxel 0
    clicks[25] = 1  # car clicked in supervoxel 1
    bridged = enforce_click_regions(probs, p2s, xyz, clicks, cell=0.5, thing_ids=[1])
    np.testing.assert_allclose(bridged, probs)
    cut = enforce_click_regions(probs, p2s, xyz, clicks, cell=0.5)
    # Road dropped; class 2 has no click either; the car touching it has: car.
    assert cut[2].tolist() == [0.0, 1.0, 0.0]


def test_things_do_not_bridge_each_other_and_bridges_give_no_support() -> None:
    """Pedestrian (2) | car (1) | pedestrian: the second pedestrian region is not joined to
    the first's click through the car. The car itself is a bridge for stuff, never
    supported by a stuff click."""
    xyz, p2s = _split_by_a_thing()
    probs = np.array([[0.1, 0.0, 0.9], [0.2, 0.8, 0.0], [0.3, 0.0, 0.7]], np.float32)
    clicks = np.full(60, -1)
    clicks[3] = 2
    clicks[25] = 1
    out = enforce_click_regions(probs, p2s, xyz, clicks, cell=0.5, thing_ids=[1, 2])
    assert out[2].argmax() == 0 and out[2, 2] == 0.0
    alive = np.ones(3, bool)
    labels = np.array([0, 1, 0])
    no_car_click = np.full(60, -1)
    no_car_click[3] = 0
    sup = supported_supervoxels(labels, alive, p2s, xyz, no_car_click, 0.5, thing_ids=[1])
    assert sup.tolist() == [True, False, True]


def test_a_strip_of_wrong_label_cuts_the_road_only_at_the_annotation_cell() -> None:
    """Road (0, clicked) | 1.6 m of points wrongly labelled terrain (1, clicked) | road: at
    the annotation's 1 m connectivity the far road patch has lost its click and falls,
    whole, to its next-best class (sidewalk, 2, clicked beside it); checked at 1.5 m
    (``otoc.click_region_cell``) the cells bridge the strip."""
    strip = np.stack([np.linspace(0.3, 1.9, 60), np.zeros(60), np.zeros(60)], 1)
    road_a, road_b = _blob(0.0), _blob(2.1)
    walk = road_b + np.array([0.0, 0.5, 0.0])
    xyz = np.concatenate([road_a, strip, road_b, walk])
    p2s = np.repeat([0, 1, 2, 3], [20, 60, 20, 20])
    probs = np.array(
        [[0.9, 0.1, 0.0], [0.3, 0.7, 0.0], [0.6, 0.1, 0.3], [0.1, 0.0, 0.9]], np.float32
    )
    clicks = np.full(len(xyz), -1)
    clicks[3], clicks[50], clicks[110] = 0, 1, 2
    cut = enforce_click_regions(probs, p2s, xyz, clicks, cell=1.0)
    assert cut.argmax(1).tolist() == [0, 1, 2, 2]
    bridged = enforce_click_regions(probs, p2s, xyz, clicks, cell=1.5)
    assert bridged.argmax(1).tolist() == [0, 1, 0, 2]
    np.testing.assert_allclose(bridged, probs, rtol=1e-6)
