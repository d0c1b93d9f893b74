"""Tests of ws3d_ros.sim.rig: config, timing, calibration, and LiDAR-camera agreement."""

from __future__ import annotations

import numpy as np
import pytest

from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.projection import project_points
from ws3d_ros.sim.classes import UNKNOWN_LABEL
from ws3d_ros.sim.rig import RING_NAMES, SimConfig, Simulator


@pytest.fixture(scope="module")
def street_sim() -> Simulator:
    return Simulator(SimConfig(frames=5, seed=7))


@pytest.fixture(scope="module")
def street_frame(street_sim):
    return street_sim.frame(2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "moon"}, "preset"),
        ({"frames": 0}, "frames"),
        ({"rate_hz": 0.0}, "rate_hz"),
        ({"cameras": 2}, "cameras"),
        ({"lidar_beams": 16}, "lidar_beams"),
        ({"storage": "zip"}, "storage"),
        ({"seed": -1}, "seed"),
    ],
)
def test_config_validation(kwargs, match) -> None:
    with pytest.raises(Ws3dError, match=match):
        SimConfig(**kwargs)


def test_frame_contents_and_timing(street_sim, street_frame) -> None:
    f = street_frame
    assert f.stamp_ns == street_sim.config.start_ns + 200_000_000
    assert len(f) == len(f.labels) == len(f.instances)
    assert list(f.images) == ["camera"]
    img = f.images["camera"]
    assert img.shape == (375, 1242, 3) and img.dtype == np.uint8
    assert f.class_images["camera"].shape == (375, 1242)
    shot = f.cameras["camera"]
    # Exposure a few ms after the sweep: 4 ms offset +- 0.5 ms jitter.
    assert 3_500_000 <= shot.stamp_ns - f.stamp_ns <= 4_500_000
    assert shot.camera.width == 1242 and shot.camera.height == 375
    # Ego drives forward at the scene's speed.
    speed = street_sim.scene.ego_speed
    np.testing.assert_allclose(f.T_odom_from_base.translation, [0.2 * speed, 0, 0], atol=1e-9)


def test_random_access_is_reproducible(street_sim) -> None:
    again = Simulator(SimConfig(frames=5, seed=7))
    a, b = street_sim.frame(3), again.frame(3)
    assert a.points.tobytes() == b.points.tobytes()
    assert np.array_equal(a.images["camera"], b.images["camera"])
    assert a.cameras["camera"].stamp_ns == b.cameras["camera"].stamp_ns
    other = Simulator(SimConfig(frames=5, seed=8)).frame(3)
    assert not np.array_equal(a.images["camera"], other.images["camera"])
    with pytest.raises(Ws3dError, match="outside"):
        street_sim.frame(5)


def test_camera_looks_forward_from_the_lidar(street_frame) -> None:
    T = street_frame.cameras["camera"].T_cam_from_lidar
    T_lidar_from_cam = T.inverse().matrix
    optical_axis = T_lidar_from_cam[:3, :3] @ np.array([0.0, 0.0, 1.0])
    assert optical_axis[0] > 0.99  # z of the optical frame ~ +x of the LiDAR
    np.testing.assert_allclose(T_lidar_from_cam[:3, :3] @ [0, 1, 0], [0, 0, -1], atol=0.02)
    assert abs(T_lidar_from_cam[2, 3] - (1.65 - 1.73)) < 1e-9


def test_front_camera_fov_fraction(street_frame) -> None:
    shot = street_frame.cameras["camera"]
    proj = project_points(street_frame.xyz, shot.camera, shot.T_cam_from_lidar)
    frac = proj.mask.mean()
    assert 0.10 <= frac <= 0.30, frac


def test_points_land_on_pixels_of_their_class(street_frame) -> None:
    """LiDAR and camera agree: z-buffer-visible points hit pixels of their own class."""
    f = street_frame
    shot = f.cameras["camera"]
    proj = project_points(
        f.xyz, shot.camera, shot.T_cam_from_lidar, zbuffer_block=4, zbuffer_tolerance=0.5
    )
    idx = np.flatnonzero(proj.mask)
    assert len(idx) > 10_000
    u = np.floor(proj.uv[idx, 0]).astype(int)
    v = np.floor(proj.uv[idx, 1]).astype(int)
    pixel_class = f.class_images["camera"][v, u]
    agree = (pixel_class == f.labels[idx]).mean()
    assert agree >= 0.95, agree
    assert (pixel_class != UNKNOWN_LABEL).mean() > 0.99
    # Depth agrees too (range noise, sub-pixel offsets and the exposure delay aside).
    depth_img = f.depth_images["camera"][v, u]
    same = pixel_class == f.labels[idx]
    rel = np.abs(depth_img[same] - proj.depth[idx][same]) / proj.depth[idx][same]
    assert np.median(rel) < 0.01


def test_six_camera_ring() -> None:
    sim = Simulator(SimConfig(frames=2, cameras=6, lidar_beams=32, seed=1))
    assert [c.name for c in sim.rig.cameras] == list(RING_NAMES)
    frame = sim.frame(1)
    offsets = [frame.cameras[n].stamp_ns - frame.stamp_ns for n in RING_NAMES]
    assert all(1_000_000 <= o <= 12_000_000 for o in offsets)
    assert len(set(offsets)) == 6
    assert {c.frame_id for c in sim.rig.cameras} == {f"camera_{n}" for n in RING_NAMES}
    for name in RING_NAMES:
        assert frame.images[name].shape == (450, 800, 3)
    # Together the ring sees most of the sweep.
    seen = np.zeros(len(frame), bool)
    for shot in frame.cameras.values():
        seen |= project_points(frame.xyz, shot.camera, shot.T_cam_from_lidar).mask
    assert seen.mean() > 0.5
    back = frame.cameras["back"].T_cam_from_lidar.inverse().matrix[:3, :3] @ [0, 0, 1]
    assert back[0] < -0.99


def test_indoor_rig_and_to_frame() -> None:
    sim = Simulator(SimConfig(preset="indoor", frames=2, lidar_beams=32))
    frame = sim.frame(0)
    assert frame.images["camera"].shape == (480, 640, 3)
    assert sim.scene.ego_speed < 1.0
    out = frame.to_frame()
    assert len(out) == len(frame) and out.labels is frame.labels
    assert out.frame_id == "lidar"
    assert out.view("camera").image is frame.images["camera"]
    assert out.view("camera").stamp_ns == frame.cameras["camera"].stamp_ns
