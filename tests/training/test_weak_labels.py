"""Weak labels from dense ground truth: fraction, clicks per object, scribbles."""

from __future__ import annotations

import numpy as np
import pytest

from training.weak_labels import UNKNOWN, frame_rng, weak_labels


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 3000
    xyz = rng.uniform(-20, 20, (n, 3))
    labels = (np.arange(n) % 5).astype(np.uint16)  # classes 0..4; 3 and 4 are things
    instances = np.where(labels >= 3, 1 + (np.arange(n) // 500), 0).astype(np.uint32)
    labels[::97] = UNKNOWN
    return xyz, labels, instances


def _objects(labels: np.ndarray, instances: np.ndarray) -> set[tuple[int, int]]:
    ok = labels != UNKNOWN
    return set(zip(labels[ok].tolist(), instances[ok].tolist(), strict=True))


@pytest.mark.parametrize("n_clicks", [1, 3])
def test_clicks_per_object(n_clicks: int) -> None:
    xyz, labels, instances = _scene()
    # stuff_cell 0: one region per stuff class (the scene's stuff is scattered noise).
    kw = {"clicks": n_clicks, "stuff_cell": 0.0}
    out = weak_labels("clicks", labels, instances, xyz, frame_rng(0, "k"), **kw)
    lab = out != UNKNOWN
    assert (out[lab] == labels[lab]).all()
    objs = _objects(labels, instances)
    got = list(zip(labels[lab].tolist(), instances[lab].tolist(), strict=True))
    assert set(got) == objs  # every object clicked
    assert len(got) == n_clicks * len(objs)  # n per object
    again = weak_labels("clicks", labels, instances, xyz, frame_rng(0, "k"), **kw)
    np.testing.assert_array_equal(out, again)  # deterministic by seed + frame
    other = weak_labels("clicks", labels, instances, xyz, frame_rng(1, "k"), **kw)
    assert not np.array_equal(out, other)


def test_label_fraction_and_modes() -> None:
    xyz, labels, instances = _scene()
    out = weak_labels("fraction", labels, instances, xyz, frame_rng(0, "k"), fraction=0.02)
    n_lab = int((labels != UNKNOWN).sum())
    assert int((out != UNKNOWN).sum()) == round(0.02 * n_lab)
    assert (out[out != UNKNOWN] == labels[out != UNKNOWN]).all()
    np.testing.assert_array_equal(weak_labels("full", labels, instances, xyz, None), labels)
    assert (weak_labels("none", labels, instances, xyz, None) == UNKNOWN).all()
    assert (weak_labels("full", None, None, xyz, None) == UNKNOWN).all()


def test_scribbles_are_thin_strokes_per_object() -> None:
    xyz, labels, instances = _scene()
    out = weak_labels("scribbles", labels, instances, xyz, frame_rng(0, "k"), scribble_width=0.5)
    lab = out != UNKNOWN
    assert (out[lab] == labels[lab]).all()
    assert 0 < lab.sum() < 0.2 * (labels != UNKNOWN).sum()
    got = set(zip(labels[lab].tolist(), instances[lab].tolist(), strict=True))
    assert got == _objects(labels, instances)


def test_clicks_one_per_connected_stuff_region() -> None:
    """OTOC's stuff regions are connected components: two separate road patches and one
    building get three clicks; a speck under min_region_points gets none; a car one."""
    from training.weak_labels import clicks_per_object, connected_components

    g = np.mgrid[0:20, 0:20].reshape(2, -1).T * 0.25  # 5 m x 5 m patch, 0.25 m spacing
    road_a = np.c_[g, np.zeros(len(g))]
    road_b = road_a + np.array([20.0, 0.0, 0.0])  # 15 m gap: another component
    building = np.c_[g[:, 0] + 40.0, np.full(len(g), 3.0), g[:, 1]]
    speck = np.array([[60.0, 60.0, 0.0], [60.2, 60.0, 0.0]])  # 2 road points, far away
    car = np.c_[g[:50] * 0.2 + np.array([10.0, 10.0]), np.full(50, 0.5)]
    xyz = np.concatenate([road_a, road_b, building, speck, car])
    labels = np.r_[np.zeros(2 * len(g) + len(g) + 2, np.uint16), np.full(50, 8, np.uint16)]
    labels[2 * len(g) : 3 * len(g)] = 3
    instances = np.r_[np.zeros(3 * len(g) + 2, np.uint32), np.full(50, 7, np.uint32)]
    comp = connected_components(road_a.tolist() + road_b.tolist(), 1.0)
    assert len(np.unique(comp)) == 2
    out = clicks_per_object(labels, instances, 1, frame_rng(0, "k"), xyz, min_region_points=20)
    got = np.flatnonzero(out != UNKNOWN)
    assert sorted(out[got].tolist()) == [0, 0, 3, 8]
    road_clicks = got[out[got] == 0]
    assert (road_clicks < len(g)).sum() == 1 and (
        (road_clicks >= len(g)) & (road_clicks < 2 * len(g))
    ).sum() == 1
    # Without positions (or stuff_cell 0): one region per stuff class.
    flat = clicks_per_object(labels, instances, 1, frame_rng(0, "k"))
    assert sorted(flat[flat != UNKNOWN].tolist()) == [0, 3, 8]
    # A class present only as a speck still gets its click (its largest component).
    only = clicks_per_object(labels[-52:-50], instances[-52:-50], 1, frame_rng(0, "k"),
                             xyz[-52:-50])  # fmt: skip
    assert (only != UNKNOWN).sum() == 1


def test_expand_to_segments_spreads_agreeing_clicks() -> None:
    """OTOC's initial labels: a click labels its whole supervoxel; a supervoxel with
    clicks of two classes keeps only the clicked points; unclicked ones stay unknown."""
    from training.weak_labels import expand_to_segments

    seg = np.array([0, 0, 0, 1, 1, 1, 2, 2, -1], np.int32)
    lab = np.full(9, UNKNOWN, np.uint16)
    lab[1] = 4  # segment 0: one click
    lab[3], lab[5] = 2, 3  # segment 1: two classes disagree
    out = expand_to_segments(lab, seg)
    assert out[:3].tolist() == [4, 4, 4]
    assert out[3:6].tolist() == [2, UNKNOWN, 3]
    assert out[6:].tolist() == [UNKNOWN] * 3
    assert lab[0] == UNKNOWN  # the input is not modified
    with pytest.raises(ValueError, match="segment ids"):
        expand_to_segments(lab, seg[:-1])


def test_expand_to_segments_in_the_trainer_labels() -> None:
    """`labels.expand_to_segments` applies to the frame's training labels (cache segments)
    before OTOC pseudo labels fill the rest."""
    from types import SimpleNamespace

    from training.labels import apply_label_config

    f = SimpleNamespace(
        train_labels=np.array([UNKNOWN, 1, UNKNOWN, UNKNOWN], np.uint16),
        segments=np.array([0, 0, 1, 1], np.int32),
    )
    apply_label_config(f, {"expand_to_segments": True}, ["a", "b"])
    assert f.train_labels.tolist() == [1, 1, UNKNOWN, UNKNOWN]
    f.train_labels = np.array([UNKNOWN, 1, UNKNOWN, UNKNOWN], np.uint16)
    apply_label_config(f, {"expand_to_segments": False}, ["a", "b"])
    assert f.train_labels.tolist() == [UNKNOWN, 1, UNKNOWN, UNKNOWN]
