"""Ground prior of the OTOC propagation (training.otoc.ground_prior): supervoxels lying at
ground level take only ground classes; clicks and rows without ground mass are kept;
thing-labelled points at ground level are found point by point."""

from __future__ import annotations

import numpy as np
import pytest

from training.otoc.ground_prior import (
    ground_level_thing_points,
    ground_supervoxels,
    restrict_to_ground_classes,
)
from training.otoc.self_training import resolve_ground_classes


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Supervoxel 0: road patch; 1: car body 0.4-1.5 m up; 2: half road, half wheel."""
    rng = np.random.default_rng(0)
    road = np.c_[rng.uniform(0, 4, (200, 2)), np.zeros(200)]
    car = np.c_[rng.uniform(1, 3, (200, 2)), rng.uniform(0.4, 1.5, 200)]
    mixed = np.c_[rng.uniform(1, 2, (100, 2)), np.r_[np.zeros(50), rng.uniform(0.2, 0.5, 50)]]
    return np.concatenate([road, car, mixed]), np.repeat([0, 1, 2], [200, 200, 100])


def test_supervoxels_at_ground_level() -> None:
    xyz, p2s = _scene()
    assert ground_supervoxels(xyz, p2s, 4).tolist() == [True, False, False, False]
    # Half of supervoxel 2 is on the ground: a lower share admits it.
    assert ground_supervoxels(xyz, p2s, 3, share=0.5).tolist() == [True, False, True]
    # A taller band admits the car body's lowest points, not the whole body.
    assert not ground_supervoxels(xyz, p2s, 3, height=0.5)[1]


def test_ground_rows_lose_the_other_classes() -> None:
    probs = np.array([[0.3, 0.1, 0.6], [0.3, 0.1, 0.6], [0.0, 0.0, 1.0], [0.2, 0.2, 0.6]])
    on_ground = np.array([True, False, True, True])
    clamp = np.array([-1, -1, -1, 2])
    out = restrict_to_ground_classes(probs, on_ground, [0, 1], clamp)
    np.testing.assert_allclose(out[0], [0.75, 0.25, 0.0])  # car removed, renormalised
    np.testing.assert_allclose(out[1], probs[1])  # not on the ground
    np.testing.assert_allclose(out[2], probs[2])  # no ground mass: the prior erases nothing
    np.testing.assert_allclose(out[3], probs[3])  # clicked: a click outranks geometry
    assert probs[0, 2] == pytest.approx(0.6)  # input untouched
    np.testing.assert_allclose(restrict_to_ground_classes(probs, on_ground, []), probs)


def test_ground_class_names_resolve_against_the_vocabulary() -> None:
    classes = ["road", "sidewalk", "car"]
    assert resolve_ground_classes(["sidewalk", "road"], classes) == [1, 0]
    assert resolve_ground_classes(None, classes) == []
    with pytest.raises(ValueError, match="terrain"):
        resolve_ground_classes(["road", "terrain"], classes)


def test_ground_level_thing_points() -> None:
    """Supervoxel 2 (half road, half wheel) labelled car: its road half is at ground level;
    the car body and a road-labelled point at ground level are not thing points there."""
    xyz, p2s = _scene()
    labels = np.array([0, 3, 3])[p2s]  # road, car, car
    low = ground_level_thing_points(xyz, labels, [3], height=0.05)
    assert low[400:450].all() and not low[450:].any()  # the mixed supervoxel's road half
    assert not low[:400].any()  # road is not a thing; the body is 0.4 m up
    # A taller band takes the wheel's points up to it too; height 0 / no things: none.
    assert ground_level_thing_points(xyz, labels, [3], height=0.3)[450:].any()
    assert not ground_level_thing_points(xyz, labels, [3], height=0.0).any()
    assert not ground_level_thing_points(xyz, labels, [], height=0.05).any()
    assert not ground_level_thing_points(xyz, np.full(len(xyz), 65535), [3], height=0.05).any()
