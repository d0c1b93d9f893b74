"""Tests of ws3d_ros.sim.scene: seeded, varied, labelled, moving, long enough."""

from __future__ import annotations

import numpy as np
import pytest

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sim.raycast import FIELDS
from ws3d_ros.sim.scene import build_scene


def prims_equal(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


@pytest.mark.parametrize("preset", ["street", "indoor"])
def test_same_seed_same_scene_different_seed_different(preset: str) -> None:
    a = build_scene(preset, 3, 2.0)
    b = build_scene(preset, 3, 2.0)
    c = build_scene(preset, 4, 2.0)
    assert prims_equal(a.primitives_at(0.7), b.primitives_at(0.7))
    assert a.ego_speed == b.ego_speed
    assert not prims_equal(a.static, c.static) or len(a.static) != len(c.static)
    assert a.ego_speed != c.ego_speed


@pytest.mark.parametrize("preset", ["street", "indoor"])
def test_every_class_present_and_instance_contract(preset: str) -> None:
    scene = build_scene(preset, 0, 5.0)
    prims = scene.primitives_at(0.0)
    present = set(prims.label.tolist()) | set(scene.ground.label.tolist())
    assert present == {c.id for c in scene.classes}
    thing = np.array([c.thing for c in scene.classes])
    assert np.all((prims.instance > 0) == thing[prims.label])
    # One instance id never spans two classes (ids are unique per object).
    for inst in np.unique(prims.instance[prims.instance > 0]):
        assert len(np.unique(prims.label[prims.instance == inst])) == 1
    assert scene.instance_count > 20


def test_moving_things_move_and_keep_their_ids() -> None:
    scene = build_scene("street", 1, 3.0)
    a, b = scene.primitives_at(0.0), scene.primitives_at(1.0)
    n_static = len(scene.static)
    np.testing.assert_array_equal(a.geom[:n_static], b.geom[:n_static])
    np.testing.assert_array_equal(a.instance, b.instance)
    shift = np.linalg.norm(b.geom[n_static:, :2] - a.geom[n_static:, :2], axis=1)
    # Every moving part moves at its owner's speed (1 s): pedestrians ~1-1.6 m, cars more.
    assert shift.min() > 0.9 and shift.max() < 14.0
    labels = {scene.classes[i].name for i in np.unique(scene.dynamic_parts.label)}
    assert {"car", "pedestrian", "cyclist"} <= labels


def test_ego_motion_and_street_length() -> None:
    for seed in range(5):
        scene = build_scene("street", seed, 10.0)
        assert 5.0 <= scene.ego_speed <= 10.0
        T = scene.ego_pose(2.0)
        np.testing.assert_allclose(T[:3, 3], [2.0 * scene.ego_speed, 0.0, 0.0], atol=1e-9)
        np.testing.assert_allclose(scene.ego_pose(0.0), np.eye(4), atol=1e-12)
        end = scene.ego_world(10.0)[0]
        # Content reaches max range beyond both ends of the drive.
        assert scene.extent[0] <= scene.ego_world(0.0)[0] - scene.max_range
        assert scene.extent[1] >= end + scene.max_range
        xs = scene.static.geom[:, 0]
        assert xs.min() < -scene.max_range + 30 and xs.max() > end + scene.max_range - 30
    indoor = build_scene("indoor", 0, 10.0)
    assert indoor.ego_speed < 1.0 and indoor.max_range <= 40.0


def test_heights_overlap_between_classes() -> None:
    """Not separable by height alone: tops of things and stuff interleave."""
    scene = build_scene("street", 2, 5.0)
    prims = scene.primitives_at(0.0)
    top = prims.geom[:, 2] + prims.geom[:, 5]
    by = {c.name: top[prims.label == c.id] for c in scene.classes}
    for a, b in [
        ("car", "pedestrian"),
        ("pedestrian", "fence"),
        ("truck", "vegetation"),
        ("traffic cone", "vegetation"),
    ]:
        lo = max(by[a].min(), by[b].min())
        hi = min(by[a].max(), by[b].max())
        assert hi > lo, f"{a} and {b} tops do not overlap"
    # Sizes vary per instance.
    cars = prims.instance[prims.label == 8]
    sizes = {round(float(top[(prims.instance == i)].max()), 3) for i in np.unique(cars)}
    assert len(sizes) > 10


def test_bad_arguments() -> None:
    with pytest.raises(Ws3dError, match="unknown preset 'moon'"):
        build_scene("moon", 0, 1.0)
    with pytest.raises(Ws3dError, match="duration"):
        build_scene("street", 0, -1.0)
