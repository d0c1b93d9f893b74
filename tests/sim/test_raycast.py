"""Tests of ws3d_ros.sim.raycast: exact hits per shape, index == brute force, shadows."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ws3d_ros.sim.raycast import (
    BOX,
    CONE,
    CYLINDER,
    ELLIPSOID,
    HIT_GROUND,
    HIT_NONE,
    Primitives,
    _hit,
    cast,
    shadow_mask,
)


def prims_of(rows: list[tuple[int, tuple, tuple, float]]) -> Primitives:
    """rows: (kind, center, half, yaw)."""
    n = len(rows)
    geom = np.array(
        [(*c, *h, math.cos(yaw), math.sin(yaw)) for _, c, h, yaw in rows], np.float64
    ).reshape(-1, 8)
    return Primitives(
        np.array([r[0] for r in rows], np.int8),
        geom,
        np.ones((n, 3), np.float32),
        np.zeros((n, 3), np.float32),
        np.ones(n, np.float32),
        np.zeros(n, np.int8),
        np.arange(n, dtype=np.int32),
        np.zeros(n, np.int32),
    )


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_each_shape_hit_distance_and_normal() -> None:
    prims = prims_of(
        [
            (BOX, (10.0, 0.0, 1.0), (1.0, 2.0, 1.0), 0.0),
            (CYLINDER, (0.0, 10.0, 1.0), (0.5, 0.5, 1.0), 0.0),
            (ELLIPSOID, (-10.0, 0.0, 2.0), (1.0, 2.0, 3.0), 0.0),
            (CONE, (0.0, -10.0, 1.0), (1.0, 1.0, 1.0), 0.0),
        ]
    )
    origin = np.array([0.0, 0.0, 1.0])
    dirs = unit([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
    res = cast(prims, origin, dirs, max_range=100.0, ground_z=None)
    np.testing.assert_array_equal(res.hit, [0, 1, 2, 3])
    # Box face x = 9; cylinder side y = 9.5; ellipsoid (x+10)^2 + (1/3)^2 = 1; cone r(z=1) = 0.5.
    expected = [9.0, 9.5, 10.0 - math.sqrt(1.0 - 1.0 / 9.0), 9.5]
    np.testing.assert_allclose(res.t, expected, atol=1e-6)
    np.testing.assert_allclose(res.normal[0], [-1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(res.normal[1], [0, -1, 0], atol=1e-6)
    # Cone side normal: outward and up (slope of r / (2h) = 0.5).
    np.testing.assert_allclose(res.normal[3], unit([0, 1, 0.5]), atol=1e-6)


def test_rotated_box_and_caps() -> None:
    # A 45 deg box: the ray along +x meets its corner edge at x = 10 - sqrt(2).
    prims = prims_of(
        [
            (BOX, (10.0, 0.0, 0.0), (1.0, 1.0, 1.0), math.pi / 4),
            (CYLINDER, (0.0, 0.0, 10.0), (1.0, 1.0, 1.0), 0.0),
            (CONE, (0.0, 0.0, -10.0), (1.0, 1.0, 1.0), 0.0),
        ]
    )
    res = cast(
        prims, np.zeros(3), unit([[1, 0, 0], [0, 0, 1], [0, 0, -1]]), max_range=50.0, ground_z=None
    )
    np.testing.assert_allclose(res.t, [10.0 - math.sqrt(2.0), 9.0, 9.0], atol=1e-6)
    np.testing.assert_allclose(res.normal[1], [0, 0, -1], atol=1e-6)  # cylinder bottom cap
    np.testing.assert_allclose(res.normal[2], [0, 0, 1], atol=1e-6)  # the cone's apex: up


def test_ground_and_range() -> None:
    prims = prims_of([(BOX, (50.0, 0.0, 1.0), (1.0, 1.0, 1.0), 0.0)])
    origin = np.array([0.0, 0.0, 2.0])
    dirs = unit([[1, 0, -1], [1, 0, 0.01], [1, 0, 0.0], [0, 1, 0]])
    res = cast(prims, origin, dirs, max_range=40.0, ground_z=0.0)
    assert res.hit[0] == HIT_GROUND
    assert res.t[0] == pytest.approx(2.0 * math.sqrt(2.0))
    np.testing.assert_allclose(res.normal[0], [0, 0, 1])
    # The box is at 49 m, beyond max_range: nothing.
    assert list(res.hit[1:]) == [HIT_NONE] * 3
    assert np.all(np.isinf(res.t[1:]))
    res = cast(prims, origin, dirs, max_range=100.0, ground_z=0.0)
    assert res.hit[2] == 0 and res.t[2] == pytest.approx(49.0)


def brute_force(prims: Primitives, origin: np.ndarray, dirs: np.ndarray, max_range: float):
    t_best = np.full(len(dirs), np.inf)
    hit = np.full(len(dirs), HIT_NONE)
    for i, d in enumerate(dirs):
        best = max_range
        for p in range(len(prims)):
            t, *_ = _hit(int(prims.kind[p]), prims.geom[p], *origin, *d)
            if t < best:
                best, hit[i] = t, p
        if hit[i] != HIT_NONE:
            t_best[i] = best
    return t_best, hit


prim_rows = st.lists(
    st.tuples(
        st.sampled_from([BOX, CYLINDER, ELLIPSOID, CONE]),
        st.tuples(*[st.floats(-20, 20)] * 2, st.floats(-3, 6)),
        st.tuples(*[st.floats(0.1, 4.0)] * 3),
        st.floats(-math.pi, math.pi),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=prim_rows, seed=st.integers(0, 2**31 - 1))
def test_index_matches_brute_force(rows, seed) -> None:
    prims = prims_of(
        [(k, c, (h[0], h[0] if k in (CYLINDER, CONE) else h[1], h[2]), y) for k, c, h, y in rows]
    )
    rng = np.random.default_rng(seed)
    origin = rng.uniform([-5, -5, 0], [5, 5, 3])
    dirs = unit(rng.normal(size=(300, 3)))
    res = cast(prims, origin, dirs, max_range=60.0, ground_z=None)
    t_ref, hit_ref = brute_force(prims, origin, dirs.astype(np.float32).astype(np.float64), 60.0)
    np.testing.assert_allclose(res.t, t_ref, rtol=1e-5, atol=1e-5)
    # Where two surfaces tie (touching shapes) either may win; distances already agree.
    same = np.isclose(res.t, t_ref) | (res.hit == hit_ref)
    assert same.all()


def test_deterministic_across_thread_counts() -> None:
    rng = np.random.default_rng(0)
    rows = [
        (
            int(rng.integers(4)),
            tuple(rng.uniform([-30, -30, 0], [30, 30, 5])),
            (1.0, 1.0, 1.5),
            float(rng.uniform(-3, 3)),
        )
        for _ in range(200)
    ]
    prims = prims_of(rows)
    dirs = unit(rng.normal(size=(20000, 3)))
    a = cast(prims, np.array([0.0, 0.0, 1.5]), dirs, max_range=80.0)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = cast(prims, np.array([0.0, 0.0, 1.5]), dirs, max_range=80.0)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.hit, b.hit)
    np.testing.assert_array_equal(a.normal, b.normal)


def test_shadow_mask_under_a_box() -> None:
    # A roof 3 m above the ground; the sun straight up: ground under it is shadowed.
    prims = prims_of([(BOX, (10.0, 0.0, 3.0), (2.0, 2.0, 0.1), 0.0)])
    origin = np.array([0.0, 0.0, 1.0])
    targets = np.array([[10.0, 0.0, 0.0], [10.0, 5.0, 0.0], [10.0, 0.0, 2.9]])
    dirs = unit(targets - origin)
    res = cast(prims, origin, dirs, max_range=100.0, ground_z=0.0)
    assert list(res.hit) == [HIT_GROUND, HIT_GROUND, 0]
    lit = shadow_mask(prims, origin, dirs, res, np.array([0.0, 0.0, 1.0]))
    # Under the roof: dark; beside it: lit; the roof's underside faces away from the sun.
    assert list(lit) == [False, True, False]
    # A low sun from +y throws the shadow towards -y.
    lit = shadow_mask(prims, origin, dirs, res, unit([0.0, 1.0, 0.5]))
    assert lit[1]
