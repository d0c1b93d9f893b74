"""Tests of ws3d_ros.sim.lidar: beam tables, point count, fields, noise, ground, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sim.lidar import POINT_DTYPE, LidarModel, elevation_table, scan
from ws3d_ros.sim.scene import build_scene

MOUNT_Z = 1.73


@pytest.fixture(scope="module")
def street():
    return build_scene("street", 0, 2.0)


def sweep_of(scene, model: LidarModel, seed: int = 0, t: float = 0.0):
    T = scene.T_world_from_base(t)
    T[2, 3] += MOUNT_Z
    return scan(model, scene.primitives_at(t), scene.ground, T, np.random.default_rng(seed))


@pytest.mark.parametrize(
    ("beams", "lo", "hi"), [(32, -30.67, 10.67), (64, -24.9, 2.0), (128, -25.0, 15.0)]
)
def test_elevation_tables(beams: int, lo: float, hi: float) -> None:
    table = elevation_table(beams)
    assert len(table) == beams
    assert table[0] == pytest.approx(lo) and table[-1] == pytest.approx(hi)
    assert np.all(np.diff(table) > 0)
    with pytest.raises(Ws3dError, match="32, 64 or 128"):
        elevation_table(16)


def test_64_beam_sweep_count_fields_and_coverage(street) -> None:
    model = LidarModel.for_beams(64)
    sweep = sweep_of(street, model)
    n = len(sweep.points)
    assert 100_000 <= n <= 130_000
    assert sweep.points.dtype == POINT_DTYPE
    assert sweep.labels.dtype == np.uint16 and sweep.instances.dtype == np.uint32
    assert len(sweep.labels) == len(sweep.instances) == n
    assert sweep.points["ring"].min() == 0 and sweep.points["ring"].max() == 63
    t = sweep.points["time"]
    assert t.min() >= 0.0 and t.max() < 0.1 and np.all(np.diff(t) >= 0)  # firing order
    xyz = np.stack([sweep.points[f] for f in "xyz"], axis=1).astype(np.float64)
    r = np.linalg.norm(xyz, axis=1)
    assert r.max() <= model.max_range + 0.1 and r.min() >= model.min_range - 0.1
    az = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    counts = np.histogram(az, bins=72, range=(-180, 180))[0]
    assert counts.min() > 0.3 * counts.mean()  # full 360 deg coverage
    # The sensor spins clockwise from the rear: azimuth decreases with time.
    first = sweep.points["ring"] == 40
    assert np.all(np.diff(np.unwrap(np.radians(az[first]))) <= 1e-3)
    i = sweep.points["intensity"]
    assert i.min() >= 0.0 and i.max() <= 1.0


def test_ground_points_lie_on_the_ground_plane(street) -> None:
    model = LidarModel.for_beams(64)
    sweep = sweep_of(street, model)
    road = sweep.labels == 0
    z = sweep.points["z"][road].astype(np.float64)
    assert road.sum() > 20_000
    # Range noise (1.5 cm along the ray) projects to even less in z for these beams.
    assert abs(z.mean() + MOUNT_Z) < 0.005
    assert z.std() < 0.02
    assert np.all(np.abs(z + MOUNT_Z) < 0.1)


def test_noise_dropout_and_intensity_physics(street) -> None:
    model = LidarModel.for_beams(32)
    ideal = LidarModel(model.elevations_deg, range_noise=1e-9, dropout=0.0, intensity_noise=0.0)
    a = sweep_of(street, ideal)
    b = sweep_of(street, model)
    assert 0.02 < 1.0 - len(b.points) / len(a.points) < 0.04  # ~3 % dropout
    _, ia, ib = np.intersect1d(a.ray_index, b.ray_index, return_indices=True)
    ra = np.linalg.norm(np.stack([a.points[f][ia] for f in "xyz"], 1), axis=1)
    rb = np.linalg.norm(np.stack([b.points[f][ib] for f in "xyz"], 1), axis=1)
    assert 0.01 < np.std(rb - ra) < 0.02
    # Retro-reflective signs return more than asphalt.
    sign = a.points["intensity"][a.labels == 6]
    road = a.points["intensity"][a.labels == 0]
    assert len(sign) > 0 and sign.mean() > 2 * road.mean()


def test_deterministic_and_seed_dependent(street) -> None:
    model = LidarModel.for_beams(32)
    a, b, c = sweep_of(street, model, 5), sweep_of(street, model, 5), sweep_of(street, model, 6)
    assert a.points.tobytes() == b.points.tobytes()
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.instances, b.instances)
    assert a.points.tobytes() != c.points.tobytes()


def test_instances_follow_objects_between_sweeps(street) -> None:
    model = LidarModel.for_beams(32)
    a, b = sweep_of(street, model, 0, 0.0), sweep_of(street, model, 1, 0.5)
    shared = np.intersect1d(
        np.unique(a.instances[a.instances > 0]), np.unique(b.instances[b.instances > 0])
    )
    assert len(shared) > 5
    for inst in shared[:10]:
        la = np.unique(a.labels[a.instances == inst])
        lb = np.unique(b.labels[b.instances == inst])
        assert len(la) == 1 and np.array_equal(la, lb)
    assert np.all(a.instances[np.isin(a.labels, [0, 1, 2, 3, 4, 5, 6, 7])] == 0)


def test_indoor_shorter_range() -> None:
    scene = build_scene("indoor", 0, 2.0)
    model = LidarModel.for_beams(32, max_range=scene.max_range)
    T = scene.T_world_from_base(0.0)
    T[2, 3] += 0.9
    sweep = scan(model, scene.primitives_at(0.0), scene.ground, T, np.random.default_rng(0))
    r = np.linalg.norm(np.stack([sweep.points[f] for f in "xyz"], 1), axis=1)
    assert r.max() <= scene.max_range + 0.1
    names = {scene.classes[i].name for i in np.unique(sweep.labels)}
    assert {"floor", "wall", "ceiling", "table", "chair"} <= names
    assert math.isclose(model.max_range, 30.0)


def test_bad_model() -> None:
    with pytest.raises(Ws3dError, match="min_range"):
        LidarModel((0.0,), min_range=5.0, max_range=1.0)
