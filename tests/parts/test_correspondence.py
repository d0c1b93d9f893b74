"""Point <-> pixel correspondences go through the project's projection and z-buffer."""

from __future__ import annotations

import numpy as np

from ws3d_ros.data.frame import CameraView
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.parts.correspondence import correspondences


def _camera() -> CameraModel:
    return CameraModel(64, 48, np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]]), np.zeros(5))


def test_hidden_points_are_not_seen_and_lift_round_trips() -> None:
    # Optical frame = point frame: a near square at z=2 hides part of a far one at z=4.
    g = np.linspace(-0.5, 0.5, 21)
    xx, yy = np.meshgrid(g, g)
    near = np.stack([xx.ravel() * 0.5, yy.ravel() * 0.5, np.full(xx.size, 2.0)], axis=1)
    far = np.stack([xx.ravel() * 3, yy.ravel() * 3, np.full(xx.size, 4.0)], axis=1)
    xyz = np.concatenate([near, far])
    view = CameraView("cam", _camera(), Transform.identity(), np.zeros((48, 64, 3), np.uint8))
    (corr,) = correspondences(xyz, [view], zbuffer_block=2, zbuffer_tolerance=0.1)
    vis = corr.visible
    assert vis[: len(near)].all()
    # Far points that project onto the near square are hidden; those around it are seen.
    far_vis = vis[len(near) :]
    behind = (np.abs(far[:, 0] / 4) < 0.12) & (np.abs(far[:, 1] / 4) < 0.12)
    assert not far_vis[behind].any() and far_vis[~behind].any()
    # A mask covering the image centre lifts to near points only; pixels_of inverts it.
    mask = np.zeros((48, 64), bool)
    mask[20:28, 28:36] = True
    lifted = corr.lift(mask)
    assert lifted.any() and not lifted[len(near) :].any()
    rc = corr.pixels_of(lifted)
    assert mask[rc[:, 0], rc[:, 1]].all()
