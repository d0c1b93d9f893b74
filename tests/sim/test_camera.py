"""Tests of ws3d_ros.sim.camera: the renderer's images and per-pixel ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.sim.camera import CameraRenderer
from ws3d_ros.sim.classes import UNKNOWN_LABEL
from ws3d_ros.sim.rig import _mount
from ws3d_ros.sim.scene import build_scene


@pytest.fixture(scope="module")
def view():
    scene = build_scene("street", 0, 1.0)
    cam = CameraModel.from_intrinsics(320, 120, 180.0, 180.0, 160.0, 60.0, D=(-0.05, 0.01, 0, 0, 0))
    T = scene.T_world_from_base(0.0) @ _mount((1.0, 0.0, 1.6), 0.0, 0.0).matrix
    renderer = CameraRenderer(cam)
    prims = scene.primitives_at(0.0)
    a = renderer.render(scene, prims, T, np.random.default_rng(0))
    b = renderer.render(scene, prims, T, np.random.default_rng(0))
    return scene, a, b


def test_shapes_and_determinism(view) -> None:
    _, a, b = view
    assert a.rgb.shape == (120, 320, 3) and a.rgb.dtype == np.uint8
    assert a.label.shape == a.instance.shape == a.depth.shape == (120, 320)
    assert np.array_equal(a.rgb, b.rgb)


def test_sky_road_and_depth(view) -> None:
    scene, a, _ = view
    sky = a.label == UNKNOWN_LABEL
    assert sky[0].mean() > 0.1 and sky[-1].mean() == 0.0  # sky at the top, ground at the bottom
    assert np.all(np.isinf(a.depth[sky])) and np.all(np.isfinite(a.depth[~sky]))
    top = a.rgb[0][sky[0]].astype(int)
    assert (top[:, 2] > top[:, 0]).mean() > 0.95  # blue sky
    # The bottom centre of a forward camera on the road sees road.
    road = 0
    assert np.all(a.label[-5:, 150:170] == road)
    # Depth grows towards the horizon on the road.
    col = a.depth[60:, 160]
    ok = a.label[60:, 160] == road
    assert np.all(np.diff(col[ok]) < 0)
    # Things carry instance ids, stuff does not.
    thing = np.array([c.thing for c in scene.classes] + [False])
    lab = np.where(a.label == UNKNOWN_LABEL, len(scene.classes), a.label)
    assert np.all((a.instance > 0) == thing[lab])


def test_classes_have_distinct_looks(view) -> None:
    """Per-class colours differ (vegetation greener than road, which is grey)."""
    _, a, _ = view
    img = a.rgb.astype(float)
    road = img[a.label == 0].mean(0)
    veg = img[a.label == 4]
    assert abs(road[0] - road[2]) < 20
    if len(veg):
        assert veg[:, 1].mean() > veg[:, 2].mean()
