"""2D -> 3D lifting: bilinear sampling convention, multi-camera averaging, sentinel."""

from __future__ import annotations

import numpy as np

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.models.lifting import CameraHits, camera_hits, lift, sample_bilinear


def test_sample_bilinear_hits_cell_centres_and_interpolates() -> None:
    h, w, d = 3, 4, 2
    feats = np.arange(h * w * d, dtype=np.float32).reshape(h, w, d)
    size = (30, 40)  # 10 px per cell
    centres = np.array([[5.0, 5.0], [35.0, 25.0], [15.0, 15.0]], np.float32)
    out = sample_bilinear(feats, centres, size)
    np.testing.assert_allclose(out[0], feats[0, 0])
    np.testing.assert_allclose(out[1], feats[2, 3])
    np.testing.assert_allclose(out[2], feats[1, 1])
    mid = sample_bilinear(feats, np.array([[10.0, 5.0]], np.float32), size)
    np.testing.assert_allclose(mid[0], (feats[0, 0] + feats[0, 1]) / 2)
    corner = sample_bilinear(feats, np.array([[0.0, 0.0], [39.9, 29.9]], np.float32), size)
    np.testing.assert_allclose(corner[0], feats[0, 0])  # clamps at the border
    np.testing.assert_allclose(corner[1], feats[2, 3])


def test_lift_averages_cameras_and_marks_unseen() -> None:
    maps = [np.ones((2, 2, 3), np.float32), -np.ones((2, 2, 3), np.float32)]
    maps[1][..., 0] = 3.0
    hits = [
        CameraHits(np.array([0, 2]), np.array([[1, 1], [2, 2]], np.float32)),
        CameraHits(np.array([2, 3]), np.array([[1, 1], [3, 3]], np.float32)),
    ]
    feats, index = lift(5, hits, maps, [(4, 4), (4, 4)], normalize=False)
    assert len(feats) == 3 and list(index) == [0, 3, 1, 2, 3]
    np.testing.assert_allclose(feats[0], [1, 1, 1])
    np.testing.assert_allclose(feats[1], [2, 0, 0])  # mean of both cameras
    np.testing.assert_allclose(feats[2], [3, -1, -1])
    unit, _ = lift(5, hits, maps, [(4, 4), (4, 4)])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)


def test_camera_hits_keeps_only_visible_points() -> None:
    cam = CameraModel.from_intrinsics(100, 80, 100.0, 100.0, 50.0, 40.0)
    # Camera looks along +x of the LiDAR: optical z = x, optical x = -y, optical y = -z.
    T = Transform.from_matrix(
        np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    )
    xyz = np.array([[10, 0, 0], [-10, 0, 0], [10, 100, 0], [20, 0, 0]], np.float32)
    hits = camera_hits(xyz, cam, T)
    # Point 3 is hidden behind point 0 in the same pixel block (z-buffer).
    assert list(hits.index) == [0]
    np.testing.assert_allclose(hits.uv[0], [50, 40], atol=1e-4)
    no_z = camera_hits(xyz, cam, T, zbuffer_block=None)
    assert list(no_z.index) == [0, 3]
