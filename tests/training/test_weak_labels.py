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
    out = weak_labels("clicks", labels, instances, xyz, frame_rng(0, "k"), clicks=n_clicks)
    lab = out != UNKNOWN
    assert (out[lab] == labels[lab]).all()
    objs = _objects(labels, instances)
    got = list(zip(labels[lab].tolist(), instances[lab].tolist(), strict=True))
    assert set(got) == objs  # every object clicked
    assert len(got) == n_clicks * len(objs)  # n per object
    again = weak_labels("clicks", labels, instances, xyz, frame_rng(0, "k"), clicks=n_clicks)
    np.testing.assert_array_equal(out, again)  # deterministic by seed + frame
    other = weak_labels("clicks", labels, instances, xyz, frame_rng(1, "k"), clicks=n_clicks)
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
