"""Tests of ws3d_ros.geometry.projection: masks, the wrap-around guard, the z-buffer."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.geometry.projection import (
    Projection,
    pixel_indices,
    project_points,
    project_to_cameras,
    zbuffer_visibility,
)

# LiDAR (x forward, y left, z up) 1 m behind and 0.2 m above the camera's optical centre.
T_LIDAR_FROM_CAM = Transform.from_xyz_rpy((1.0, 0.0, -0.2), (-math.pi / 2, 0.0, -math.pi / 2))
T_CAM_FROM_LIDAR = T_LIDAR_FROM_CAM.inverse()


def kitti_camera(distortion=(-0.05, 0.012, 0.0004, -0.0003, 0.0)) -> CameraModel:
    return CameraModel.from_intrinsics(1242, 375, 721.5, 721.5, 609.6, 172.9, D=distortion)


def sweep(n: int = 20000, seed: int = 0) -> np.ndarray:
    """LiDAR-like points all around, 1-80 m, float32."""
    rng = np.random.default_rng(seed)
    az = rng.uniform(-math.pi, math.pi, n)
    el = rng.uniform(-0.4, 0.1, n)
    r = rng.uniform(1.0, 80.0, n)
    pts = np.column_stack(
        [r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el)]
    )
    return pts.astype(np.float32)


def test_matches_camera_project_and_masks_the_image() -> None:
    cam = kitti_camera()
    pts = sweep()
    proj = project_points(pts, cam, T_CAM_FROM_LIDAR)
    assert isinstance(proj, Projection) and len(proj) == len(pts)
    assert proj.uv.dtype == np.float32 and proj.depth.dtype == np.float32
    ref_uv, ref_z = cam.project(T_CAM_FROM_LIDAR.apply(pts.astype(np.float64)))
    np.testing.assert_allclose(proj.depth, ref_z, rtol=1e-5, atol=1e-4)
    front = ref_z > 0.1
    # The wrap-around guard leaves far off-axis points undefined; all others match.
    cam_pts = T_CAM_FROM_LIDAR.apply(pts.astype(np.float64))
    radius = np.hypot(cam_pts[:, 0], cam_pts[:, 1]) / cam_pts[:, 2]
    guarded = front & (radius > cam.fov_mask_bounds * 1.0001)
    kept = front & (radius < cam.fov_mask_bounds * 0.9999)
    assert guarded.sum() > 100 and kept.sum() > 1000
    np.testing.assert_allclose(proj.uv[kept], ref_uv[kept], atol=2e-3)
    assert np.all(np.isnan(proj.uv[~front | guarded]))
    inside = (
        front
        & (ref_uv[:, 0] >= 0)
        & (ref_uv[:, 0] < cam.width)
        & (ref_uv[:, 1] >= 0)
        & (ref_uv[:, 1] < cam.height)
    )
    # Float32 rounding may flip points within a hair of the border only.
    border = np.minimum.reduce(
        [ref_uv[:, 0], cam.width - ref_uv[:, 0], ref_uv[:, 1], cam.height - ref_uv[:, 1]]
    )
    differ = proj.mask != inside
    assert np.all(np.abs(border[differ]) < 1e-2)
    assert 0.1 < proj.mask.mean() < 0.3
    u, v = proj.uv[proj.mask].T
    assert u.min() >= 0 and u.max() < cam.width and v.min() >= 0 and v.max() < cam.height


def test_points_behind_the_camera_never_land_in_the_image() -> None:
    cam = kitti_camera()
    # Optical-frame points that are in view, mirrored through the optical centre: dividing by
    # their negative z naively gives exactly the in-view pixels.
    rng = np.random.default_rng(1)
    ahead = np.column_stack(
        [rng.uniform(-0.8, 0.8, 500), rng.uniform(-0.2, 0.2, 500), np.ones(500)]
    )
    ahead *= rng.uniform(2, 50, (500, 1))
    behind = -ahead
    naive = behind[:, :2] / behind[:, 2:] * [cam.fx, cam.fy] + [cam.cx, cam.cy]
    assert np.mean((naive[:, 0] >= 0) & (naive[:, 0] < cam.width)) > 0.9
    proj = project_points(behind, cam, Transform.identity())
    assert not proj.mask.any() and np.all(np.isnan(proj.uv))
    np.testing.assert_allclose(proj.depth, behind[:, 2], rtol=1e-6)
    assert project_points(ahead, cam, Transform.identity()).mask.mean() > 0.9


def test_min_depth_and_non_finite_points() -> None:
    cam = kitti_camera()
    pts = np.array(
        [[0, 0, 0.05], [0, 0, 0.2], [np.nan, 0, 5], [0, 0, np.inf], [0, np.inf, 5], [1, 0, 5]]
    )
    proj = project_points(pts, cam, Transform.identity(), min_depth=0.1)
    assert proj.mask.tolist() == [False, True, False, False, False, True]
    assert project_points(pts, cam, Transform.identity(), min_depth=0.5).mask[1] == np.False_


def test_structured_and_float64_input() -> None:
    cam = kitti_camera()
    pts = sweep(3000)
    cloud = np.zeros(len(pts), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("i", "<f4")])
    for k, name in enumerate("xyz"):
        cloud[name] = pts[:, k]
    a = project_points(pts, cam, T_CAM_FROM_LIDAR)
    b = project_points(cloud, cam, T_CAM_FROM_LIDAR)
    c = project_points(pts.astype(np.float64), cam, T_CAM_FROM_LIDAR)
    np.testing.assert_array_equal(a.uv, b.uv)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_allclose(a.uv[a.mask], c.uv[a.mask], atol=2e-3)
    extra = np.column_stack([pts, np.ones(len(pts), np.float32)])  # (N, 4): x, y, z, intensity
    np.testing.assert_array_equal(project_points(extra, cam, T_CAM_FROM_LIDAR).uv, a.uv)
    with pytest.raises(ValueError, match="shape"):
        project_points(np.zeros((5, 2)), cam, T_CAM_FROM_LIDAR)


def test_wrap_around_guard_rejects_aliased_points() -> None:
    # Strong barrel distortion: x_d = x (1 - 0.2 r^2) folds at r = 1.29 and maps r = 2.3
    # (66 deg off-axis) back to x_d = -0.13, i.e. into the image on the wrong side.
    cam = CameraModel.from_intrinsics(640, 480, 500.0, 500.0, 320.0, 240.0, D=(-0.2, 0, 0, 0, 0))
    far = np.array([[2.3, 0.0, 1.0], [2.2, 0.3, 1.0], [-2.4, -0.2, 1.0], [0.3, 2.3, 1.0]]) * 10
    ref, _ = cv2.projectPoints(far.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), cam.K, cam.D)
    ref = ref[:, 0]
    in_image = (ref[:, 0] >= 0) & (ref[:, 0] < 640) & (ref[:, 1] >= 0) & (ref[:, 1] < 480)
    assert in_image.all()  # the polynomial really aliases them
    proj = project_points(far, cam, Transform.identity())
    assert not proj.mask.any() and np.all(np.isnan(proj.uv))
    # Every ray of the image itself passes the guard.
    rays = cam.pixel_rays(stride=3).reshape(-1, 3) * 4.0
    corners = np.array([[0.01, 0.01], [639.99, 479.99], [0.01, 479.99], [639.99, 0.01]])
    border_rays = cam.unproject(corners)
    inside = project_points(np.vstack([rays, border_rays * 2.0]), cam, Transform.identity())
    assert inside.mask.all()


def test_guard_with_a_fisheye() -> None:
    # Equidistant with a polynomial that turns over at ~72 deg: without the guard a point
    # at 85 deg would land inside a 1000 px image.
    cam = CameraModel.from_intrinsics(
        1000, 1000, 350.0, 350.0, 500.0, 500.0, D=(0.0, -0.12, 0.0, 0.0), distortion_model="fisheye"
    )
    far = np.array([[math.tan(math.radians(85)), 0.0, 1.0]])
    assert 0 <= cam.project(far)[0][0, 0] < 1000
    assert not project_points(far, cam, Transform.identity()).mask.any()
    near = np.array([[math.tan(math.radians(40)), 0.0, 1.0]])
    assert project_points(near, cam, Transform.identity()).mask.all()


def test_pixel_indices_and_pixel_ray_convention() -> None:
    cam = kitti_camera()
    rays = cam.pixel_rays(stride=1)
    rows = np.array([0, 10, 200, 374])
    cols = np.array([0, 600, 1241, 5])
    pts = rays[rows, cols] * np.array([[3.0], [10.0], [40.0], [7.0]])
    proj = project_points(pts, cam, Transform.identity(), min_depth=0.0)
    assert proj.mask.all()
    np.testing.assert_array_equal(pixel_indices(proj), np.column_stack([rows, cols]))
    # Only visible points, in flatnonzero order.
    proj.mask[1] = False
    rc = pixel_indices(proj)
    assert rc.dtype == np.int64
    np.testing.assert_array_equal(rc, np.column_stack([rows, cols])[[0, 2, 3]])


# ---------------------------------------------------------------------- z-buffer


def brute_force_zbuffer(uv, depth, mask, width, height, block, tol) -> np.ndarray:
    nearest: dict[tuple[int, int], float] = {}
    cells = {}
    for i in np.flatnonzero(mask):
        cell = (math.floor(uv[i, 1]) // block, math.floor(uv[i, 0]) // block)
        cells[i] = cell
        nearest[cell] = min(nearest.get(cell, math.inf), float(depth[i]))
    out = np.zeros(len(mask), bool)
    for i, cell in cells.items():
        out[i] = depth[i] <= nearest[cell] + tol
    return out


def test_zbuffer_matches_brute_force() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    uv = rng.uniform(0, [64, 48], (n, 2)).astype(np.float32)
    depth = rng.uniform(1, 30, n).astype(np.float32)
    mask = rng.random(n) < 0.9
    for block, tol in ((1, 0.0), (4, 0.5), (8, 2.0)):
        got = zbuffer_visibility(uv, depth, mask, 64, 48, block, tol)
        np.testing.assert_array_equal(got, brute_force_zbuffer(uv, depth, mask, 64, 48, block, tol))
        assert not got[~mask].any()
        np.testing.assert_array_equal(got, zbuffer_visibility(uv, depth, mask, 64, 48, block, tol))


def test_zbuffer_occlusion_cases() -> None:
    uv = np.array([[10.2, 10.2], [11.9, 11.0], [13.5, 10.0], [10.0, 10.0], [100, 1]], np.float32)
    depth = np.array([5.0, 10.0, 10.0, 5.3, 1.0], np.float32)
    mask = np.array([True, True, True, True, True])
    vis = zbuffer_visibility(uv, depth, mask, 50, 50, block=4, tolerance=0.5)
    # Same cell as the 5 m point: the 10 m point is hidden, the 5.3 m one within tolerance;
    # (13.5, 10) is the next cell; (100, 1) lies outside the image.
    assert vis.tolist() == [True, False, True, True, False]
    with pytest.raises(ValueError, match="block"):
        zbuffer_visibility(uv, depth, mask, 50, 50, block=0)


def test_project_points_zbuffer_and_several_cameras() -> None:
    pts = sweep()
    front = kitti_camera()
    back = kitti_camera((0.0, 0.0, 0.0, 0.0, 0.0))
    T_back = Transform.from_xyz_rpy((0, 0, 0), (0, math.pi, 0)) @ T_CAM_FROM_LIDAR
    plain = project_points(pts, front, T_CAM_FROM_LIDAR)
    zb = project_points(pts, front, T_CAM_FROM_LIDAR, zbuffer_block=4, zbuffer_tolerance=0.5)
    expected = zbuffer_visibility(plain.uv, plain.depth, plain.mask, 1242, 375, 4, 0.5)
    np.testing.assert_array_equal(zb.mask, expected)
    assert zb.mask.sum() < plain.mask.sum() and not (zb.mask & ~plain.mask).any()
    both = project_to_cameras(
        pts, [(front, T_CAM_FROM_LIDAR), (back, T_back)], zbuffer_block=4, zbuffer_tolerance=0.5
    )
    np.testing.assert_array_equal(both[0].mask, zb.mask)
    ref_back = project_points(pts, back, T_back, zbuffer_block=4)
    np.testing.assert_array_equal(both[1].mask, ref_back.mask)
    assert not (both[0].mask & both[1].mask).any()  # opposite cameras see disjoint points


@pytest.mark.parametrize(
    ("model", "D", "width", "height", "fx", "cx", "cy"),
    [
        ("plumb_bob", (-0.3691481, 0.1968681, 0.001353473, 0.0005677587, -0.06770705), 1392, 512,
         959.8, 696.0, 224.2),
        ("rational_polynomial", (0.52, -2.6, 0.0007, -0.0003, 1.55, 0.40, -2.43, 1.48), 1280, 720,
         640.2, 651.3, 362.7),
        ("equidistant", (-0.013, 0.021, -0.017, 0.0043), 1024, 768, 300.0, 511.8, 383.2),
    ],
)  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lidar_points_match_cv2_project_points(
    model: str, D: tuple, width: int, height: int, fx: float, cx: float, cy: float, dtype
) -> None:
    """LiDAR-frame points through the extrinsics: equal to OpenCV within 1e-3 px.

    OpenCV gets the same transform as ``rvec``/``tvec``; ``cv2.fisheye.projectPoints``
    is the reference for the equidistant model.
    """
    cam = CameraModel.from_intrinsics(
        width, height, fx, fx * 0.998, cx, cy, D=D, distortion_model=model
    )
    pts = sweep(40000).astype(dtype)
    proj = project_points(pts, cam, T_CAM_FROM_LIDAR)
    assert proj.mask.sum() > 3000
    inside = pts[proj.mask].astype(np.float64).reshape(-1, 1, 3)
    rvec = np.ascontiguousarray(cv2.Rodrigues(T_CAM_FROM_LIDAR.rotation)[0])
    tvec = np.ascontiguousarray(T_CAM_FROM_LIDAR.translation.reshape(3, 1))
    if model == "equidistant":
        ref, _ = cv2.fisheye.projectPoints(inside, rvec, tvec, cam.K, cam.D)
    else:
        ref, _ = cv2.projectPoints(inside, rvec, tvec, cam.K, cam.D)
    err = np.abs(proj.uv[proj.mask].astype(np.float64) - ref[:, 0])
    assert err.max() <= 1e-3, err.max()
