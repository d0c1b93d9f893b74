"""Height above the local ground (ws3d_ros.geometry.ground): lowest point of the
surrounding xy columns."""

from __future__ import annotations

import numpy as np
import pytest

from ws3d_ros.geometry.ground import height_above_ground


def _street(rng: np.random.Generator, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A 20 x 20 m ground plane at z = -1.7 with a 2 x 4 x 1.5 m box (a car body 0.3 m
    above the road) in the middle; returns points and a 'box' mask."""
    ground = np.c_[rng.uniform(-10, 10, (4000, 2)), np.full(4000, -1.7)]
    box = np.c_[rng.uniform(-1, 1, 800), rng.uniform(-2, 2, 800), rng.uniform(-1.4, 0.1, 800)]
    xyz = np.concatenate([ground, box]) + np.array([offset, offset, 0.0])
    return xyz, np.r_[np.zeros(4000, bool), np.ones(800, bool)]


def test_ground_is_at_zero_and_objects_stand_above_it() -> None:
    xyz, box = _street(np.random.default_rng(0))
    h = height_above_ground(xyz, cell=2.0)
    assert h.dtype == np.float32 and h.shape == (len(xyz),)
    np.testing.assert_allclose(h[~box], 0.0, atol=1e-6)
    # The box's points sit 0.3-1.8 m over the road seen around and under it.
    np.testing.assert_allclose(h[box], xyz[box, 2] + 1.7, atol=1e-5)
    assert h[box].min() >= 0.3 - 1e-5


def test_the_window_is_local() -> None:
    """A raised platform 0.15 m high, 20 m wide: its inner points only see the platform
    (height 0), its points next to the road see the road (0.15)."""
    x = np.arange(-20.0, 20.0, 0.25)
    xyz = np.c_[x, np.zeros_like(x), np.where(x > 0, 0.15, 0.0)]
    h = height_above_ground(xyz, cell=2.0, reach=1)
    assert h[(x > 6)].max() == pytest.approx(0.0)
    assert h[(x > 0) & (x < 1)].min() == pytest.approx(0.15)
    # A wider window reaches the road from further in.
    h3 = height_above_ground(xyz, cell=2.0, reach=3)
    assert h3[(x > 4) & (x < 5)].min() == pytest.approx(0.15)


def test_far_coordinates_non_finite_points_and_determinism() -> None:
    xyz, box = _street(np.random.default_rng(1), offset=1e6)
    xyz[5] = np.nan
    h = height_above_ground(xyz)
    assert np.isnan(h[5]) and np.isfinite(np.delete(h, 5)).all()
    np.testing.assert_allclose(np.delete(h, 5)[~np.delete(box, 5)], 0.0, atol=1e-6)
    np.testing.assert_array_equal(h, height_above_ground(xyz.copy()))
    assert height_above_ground(np.zeros((0, 3))).shape == (0,)


@pytest.mark.parametrize("kwargs", [{"cell": 0.0}, {"reach": -1}])
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        height_above_ground(np.zeros((3, 3)), **kwargs)
