"""Tests of ws3d_ros.geometry.camera: OpenCV parity, unprojection, CameraInfo round trips."""

from __future__ import annotations

import array
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ws3d_ros.errors import CalibrationError, MessageFormatError
from ws3d_ros.geometry.camera import DISTORTION_MODELS, CameraModel
from ws3d_ros.msg.kit import rclpy_kit, rosbags_kit

# Realistic non-trivial calibrations. PLUMB_BOB is KITTI raw camera 02 (2011_09_26).
PLUMB_BOB = (-0.3691481, 0.1968681, 0.001353473, 0.0005677587, -0.06770705)
RATIONAL = (0.52, -2.6, 0.0007, -0.0003, 1.55, 0.40, -2.43, 1.48)  # Azure-Kinect-like
EQUIDISTANT = (-0.013, 0.021, -0.017, 0.0043)


def cam_plumb_bob() -> CameraModel:
    return CameraModel.from_intrinsics(
        1392, 512, 959.791, 956.9251, 696.0217, 224.1806, D=PLUMB_BOB
    )


def cam_rational() -> CameraModel:
    return CameraModel.from_intrinsics(
        1280, 720, 640.2, 639.1, 651.3, 362.7, D=RATIONAL, distortion_model="rational_polynomial"
    )


def cam_equidistant() -> CameraModel:
    return CameraModel.from_intrinsics(
        1024, 768, 500.0, 499.5, 511.8, 383.2, D=EQUIDISTANT, distortion_model="equidistant"
    )


def points_in_front(n: int, half_angle_deg: float, seed: int = 0) -> np.ndarray:
    """Random optical-frame points within ``half_angle_deg`` of the axis, 0.5-80 m away."""
    rng = np.random.default_rng(seed)
    t = math.tan(math.radians(half_angle_deg))
    xy = rng.uniform(-t, t, (n, 2))
    z = rng.uniform(0.5, 80.0, n)
    return np.column_stack([xy * z[:, None], z])


def image_grid(cam: CameraModel, step: int = 7) -> np.ndarray:
    u = np.arange(0.0, cam.width, step) + 0.25
    v = np.arange(0.0, cam.height, step) + 0.25
    uu, vv = np.meshgrid(np.append(u, cam.width - 1e-3), np.append(v, cam.height - 1e-3))
    return np.stack([uu.ravel(), vv.ravel()], axis=1)


# ---------------------------------------------------------------------- OpenCV parity


@pytest.mark.parametrize(
    ("make", "half_angle"), [(cam_plumb_bob, 45.0), (cam_rational, 60.0)], ids=["plumb", "rat"]
)
def test_project_matches_cv2_project_points(make, half_angle) -> None:
    cam = make()
    pts = points_in_front(5000, half_angle)
    uv, depth = cam.project(pts)
    ref, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), cam.K, cam.D)
    assert uv.dtype == np.float64 and uv.shape == (5000, 2)
    np.testing.assert_allclose(uv, ref[:, 0], atol=1e-3, rtol=0)
    np.testing.assert_array_equal(depth, pts[:, 2])
    # The distortion is far from negligible: it moves points by many pixels.
    pinhole = pts[:, :2] / pts[:, 2:] * [cam.fx, cam.fy] + [cam.cx, cam.cy]
    assert np.max(np.abs(uv - pinhole)) > 20


def test_project_matches_cv2_fisheye() -> None:
    cam = cam_equidistant()
    pts = points_in_front(5000, 80.0)
    uv, _ = cam.project(pts)
    ref, _ = cv2.fisheye.projectPoints(
        pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), cam.K, cam.D
    )
    np.testing.assert_allclose(uv, ref[:, 0], atol=1e-3, rtol=0)


def test_fisheye_alias_and_known_names() -> None:
    assert DISTORTION_MODELS == ("none", "plumb_bob", "rational_polynomial", "equidistant")
    cam = CameraModel.from_intrinsics(
        640, 480, 300, 300, 320, 240, D=EQUIDISTANT, distortion_model="fisheye"
    )
    assert cam.distortion_model == "equidistant"
    pts = points_in_front(50, 60.0)
    np.testing.assert_array_equal(cam.project(pts)[0], cam_like(cam).project(pts)[0])


def cam_like(cam: CameraModel) -> CameraModel:
    return CameraModel(cam.width, cam.height, cam.K, cam.D, cam.distortion_model)


def test_points_behind_the_camera_give_nan() -> None:
    cam = cam_plumb_bob()
    # Mirror images of in-view points: naive x/z, y/z would put them inside the image.
    pts = -points_in_front(100, 20.0)
    pts = np.vstack([pts, [[1.0, 1.0, 0.0]]])
    uv, depth = cam.project(pts)
    assert np.all(np.isnan(uv))
    assert np.all(depth <= 0)


def test_no_distortion_is_pinhole() -> None:
    cam = CameraModel.from_intrinsics(640, 480, 500.0, 510.0, 320.0, 240.0)
    assert not cam.is_distorted and cam.D.tolist() == [0.0] * 5
    pts = points_in_front(100, 30.0)
    uv, _ = cam.project(pts)
    np.testing.assert_allclose(uv[:, 0], 500.0 * pts[:, 0] / pts[:, 2] + 320.0)
    np.testing.assert_allclose(uv[:, 1], 510.0 * pts[:, 1] / pts[:, 2] + 240.0)
    assert cam.fov_mask_bounds == math.inf


def test_inputs_are_copied_not_frozen_in_place() -> None:
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    cam = CameraModel(640, 480, K, np.zeros(5))
    K[0, 0] = 1.0  # the caller's array stays writable and the model keeps its copy
    assert cam.fx == 500.0 and not cam.K.flags.writeable
    with pytest.raises(CalibrationError, match="width"):
        CameraModel(None, 480, K, np.zeros(5))  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="height"):
        CameraModel(640, 480.5, K, np.zeros(5))  # type: ignore[arg-type]


def test_skew_is_applied() -> None:
    K = np.array([[500.0, 3.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    cam = CameraModel(640, 480, K, np.zeros(5), "plumb_bob")
    uv, _ = cam.project(np.array([[0.1, 0.2, 1.0]]))
    np.testing.assert_allclose(uv[0], [500 * 0.1 + 3 * 0.2 + 320, 500 * 0.2 + 240])
    np.testing.assert_allclose(cam.unproject(uv)[0], [0.1, 0.2, 1.0], atol=1e-12)


# ---------------------------------------------------------------------- unprojection


@pytest.mark.parametrize("make", [cam_plumb_bob, cam_rational, cam_equidistant])
def test_unproject_inverts_project_inside_the_image(make) -> None:
    cam = make()
    uv = image_grid(cam)
    rays = cam.unproject(uv)
    assert rays.shape == (len(uv), 3)
    assert np.all(np.isfinite(rays)) and np.all(rays[:, 2] == 1.0)
    back, _ = cam.project(rays * 7.5)
    assert np.max(np.abs(back - uv)) < 1e-6


def test_unproject_agrees_with_cv2_undistort_points() -> None:
    cam = cam_plumb_bob()
    uv = image_grid(cam, step=31)
    ours = cam.unproject(uv)[:, :2]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    ref = cv2.undistortPoints(uv.reshape(-1, 1, 2), cam.K, cam.D, None, None, None, criteria)
    np.testing.assert_allclose(ours, ref[:, 0], atol=1e-6)
    # OpenCV's default 5 fixed-point iterations are far from the 1e-6 px round trip needed.
    default = cv2.undistortPoints(uv.reshape(-1, 1, 2), cam.K, cam.D)[:, 0]
    back, _ = cam.project(np.column_stack([default, np.ones(len(default))]))
    assert np.max(np.abs(back - uv)) > 1e-3


def test_unproject_returns_nan_past_the_fold() -> None:
    # x_d = x (1 - 0.3 r^2) peaks at r_d = 0.703: pixels beyond have no physical ray.
    cam = CameraModel.from_intrinsics(640, 480, 250.0, 250.0, 320.0, 240.0, D=(-0.3, 0, 0, 0, 0))
    assert cam.fold_radius == pytest.approx(1 / math.sqrt(0.9), abs=1e-3)
    rays = cam.unproject(np.array([[320.0 + 250.0 * 0.6, 240.0], [639.0, 479.0]]))
    assert np.all(np.isfinite(rays[0])) and np.all(np.isnan(rays[1, :2]))
    # The guard then falls back to the fold radius.
    assert cam.fov_mask_bounds == pytest.approx(cam.fold_radius)


def test_pixel_rays_go_through_pixel_centres_and_are_cached() -> None:
    cam = cam_plumb_bob()
    rays = cam.pixel_rays()
    assert rays.shape == (512, 1392, 3)
    assert cam.pixel_rays() is rays and not rays.flags.writeable
    uv, _ = cam.project(rays[::40, ::40].reshape(-1, 3) * 3.0)
    rows, cols = np.meshgrid(np.arange(0, 512, 40), np.arange(0, 1392, 40), indexing="ij")
    expected = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    np.testing.assert_allclose(uv, expected, atol=1e-6)
    coarse = cam.pixel_rays(stride=4)
    assert coarse.shape == (512 // 4, 1392 // 4, 3)
    uv4, _ = cam.project(coarse[1:2, 2:3].reshape(-1, 3))
    np.testing.assert_allclose(uv4[0], [2 * 4 + 2.0, 1 * 4 + 2.0], atol=1e-6)
    with pytest.raises(ValueError, match="stride"):
        cam.pixel_rays(0)


def test_fov_mask_bounds_cover_the_image() -> None:
    cam = cam_plumb_bob()
    bound = cam.fov_mask_bounds
    rays = cam.unproject(image_grid(cam, step=5))
    radius = np.hypot(rays[:, 0], rays[:, 1])
    assert radius.max() < bound < 1.2 * radius.max()
    assert bound <= cam.fold_radius


# ---------------------------------------------------------------------- CameraInfo


def test_camera_info_round_trip_both_flavours() -> None:
    for cam in (cam_plumb_bob(), cam_rational(), cam_equidistant()):
        for kit in (rosbags_kit(), rclpy_kit()):
            msg = cam.to_camera_info(stamp_ns=1_500_000_123, kit=kit)
            assert msg.header.stamp.sec == 1 and msg.header.stamp.nanosec == 500_000_123
            back = CameraModel.from_camera_info(msg)
            assert (back.width, back.height) == (cam.width, cam.height)
            assert back.distortion_model == cam.distortion_model
            np.testing.assert_array_equal(back.K, cam.K)
            np.testing.assert_array_equal(back.D, cam.D)
            np.testing.assert_array_equal(back.P, cam.P)
            np.testing.assert_array_equal(back.R, cam.R)


def test_default_kit_is_rosbags_and_none_is_written_as_zero_plumb_bob() -> None:
    cam = CameraModel.from_intrinsics(
        64, 48, 50, 50, 32, 24, distortion_model="none", frame_id="cam"
    )
    msg = cam.to_camera_info(stamp_ns=0)
    assert type(msg).__module__.startswith("rosbags")
    assert msg.distortion_model == "plumb_bob" and list(msg.d) == [0.0] * 5
    assert msg.header.frame_id == "cam"
    assert not CameraModel.from_camera_info(msg).is_distorted


def _info(**over) -> SimpleNamespace:
    fields = dict(
        width=640,
        height=480,
        k=array.array("d", [500, 0, 320, 0, 500, 240, 0, 0, 1]),
        d=(0.1, -0.05, 0.001, 0.002, 0.0),
        r=[0.0] * 9,
        p=np.zeros(12),
        distortion_model="plumb_bob",
        header=SimpleNamespace(frame_id="cam_optical"),
    )
    fields.update(over)
    return SimpleNamespace(**fields)


def test_from_camera_info_duck_typed_containers() -> None:
    cam = CameraModel.from_camera_info(_info())
    assert cam.frame_id == "cam_optical" and cam.K.shape == (3, 3)
    np.testing.assert_array_equal(cam.R, np.eye(3))  # unset R -> identity
    np.testing.assert_array_equal(cam.P, np.hstack([cam.K, np.zeros((3, 1))]))  # unset P
    assert not cam.K.flags.writeable and not cam.D.flags.writeable
    # Empty D: no distortion, whatever the model.
    assert not CameraModel.from_camera_info(_info(d=[])).is_distorted
    rat = CameraModel.from_camera_info(
        _info(distortion_model="rational_polynomial", d=list(RATIONAL) + [0.0] * 6)
    )
    assert rat.D.tolist() == list(RATIONAL)


def test_binning_and_roi_adjust_k_and_size() -> None:
    full = CameraModel.from_camera_info(_info())
    roi = SimpleNamespace(x_offset=100, y_offset=40, width=320, height=240, do_rectify=False)
    cam = CameraModel.from_camera_info(_info(binning_x=2, binning_y=2, roi=roi))
    assert (cam.width, cam.height) == (160, 120)
    pts = points_in_front(20, 10.0)
    np.testing.assert_allclose(cam.project(pts)[0], (full.project(pts)[0] - [100, 40]) / 2)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (dict(k=[0.0] * 9), "all zeros"),
        (dict(k=[500, 0, 320, 0, math.nan, 240, 0, 0, 1]), "non-finite"),
        (dict(k=[-500, 0, 320, 0, 500, 240, 0, 0, 1]), "focal"),
        (dict(k=[500, 0, 320, 0, 0, 240, 0, 0, 1]), "focal"),
        (dict(k=[500, 0, 320, 0, 500, 240, 0, 0, 2]), "last row"),
        (dict(k=[500, 0, 320, 0, 500, 240]), "9 values"),
        (dict(width=0), "width"),
        (dict(height=0), "height"),
        (dict(d=[0.1, 0.2, 0.0]), "needs 5"),
        (dict(distortion_model="equidistant"), "needs 4"),
        (dict(distortion_model="kannala"), "unknown distortion_model"),
        (dict(distortion_model="rational_polynomial", d=[0.1] * 14), "D\\[8:\\]"),
        (dict(distortion_model="none"), "non-zero D"),
        (dict(d=[0.1, math.inf, 0, 0, 0]), "non-finite"),
    ],
)
def test_bad_calibrations_raise(over, message) -> None:
    with pytest.raises(CalibrationError, match=message):
        CameraModel.from_camera_info(_info(**over))


def test_not_a_camera_info_is_a_message_error() -> None:
    with pytest.raises(MessageFormatError, match="CameraInfo"):
        CameraModel.from_camera_info(SimpleNamespace(width=1, height=1))
