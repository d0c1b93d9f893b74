"""Point -> pixel projection with z-buffer visibility in torch: the device twin of
:func:`ws3d_ros.models.lifting.camera_hits` (:func:`ws3d_ros.geometry.projection.project_points`
with ``zbuffer_block``).

Contract: :class:`CameraT` holds one camera's intrinsics, distortion (none, plumb_bob,
rational_polynomial, equidistant), wrap-around guard radius and ``T_cam_from_lidar`` as
device tensors (built once per calibration and cached by the caller).
:func:`camera_hits_t` returns ``(index (V,) int64 ascending, uv (V, 2) float32)`` of the
visible points: in front of ``min_depth``, inside the guard, inside the image, and within
``zbuffer_tolerance`` m of the nearest depth of their ``block x block`` pixel cell. Same
maths and precision as the numpy function (float32 camera frame, float64 z-buffer
comparison); the rigid transform's dot products may round differently from numpy's BLAS,
so a point exactly on a border can differ (tests bound it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform


@dataclass
class CameraT:
    """One calibrated camera on a device."""

    width: int
    height: int
    K: tuple[float, float, float, float, float]  # fx, skew, cx, fy, cy
    model: str
    D: tuple[float, ...]
    r_max: float  # wrap-around guard (inf: none)
    R: Tensor  # (3, 3) float32
    t: Tensor  # (3,) float32

    @classmethod
    def from_model(cls, camera: CameraModel, T: Transform, device: torch.device) -> CameraT:
        K = camera.K
        return cls(
            width=camera.width,
            height=camera.height,
            K=(float(K[0, 0]), float(K[0, 1]), float(K[0, 2]), float(K[1, 1]), float(K[1, 2])),
            model=camera.distortion_model if camera.is_distorted else "none",
            D=tuple(float(c) for c in camera.D),
            r_max=float(camera.fov_mask_bounds),
            R=torch.from_numpy(np.array(T.rotation, np.float32)).to(device),
            t=torch.from_numpy(np.array(T.translation, np.float32)).to(device),
        )


def _distort(cam: CameraT, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """:meth:`CameraModel.distort_normalized` in torch (same operation order)."""
    if cam.model == "none":
        return x, y
    d = cam.D
    r2 = x * x + y * y
    if cam.model == "equidistant":
        k1, k2, k3, k4 = d
        r = torch.sqrt(r2)
        theta = torch.atan(r)
        t2 = theta * theta
        theta_d = theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        scale = torch.where(r > 0, theta_d / torch.where(r > 0, r, 1.0), 1.0)
        return x * scale, y * scale
    k1, k2, p1, p2, k3 = d[0], d[1], d[2], d[3], d[4]
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if cam.model == "rational_polynomial":
        k4, k5, k6 = d[5], d[6], d[7]
        if k4 or k5 or k6:
            radial = radial / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial
    yd = y * radial
    if p1 or p2:
        xy2 = 2.0 * x * y
        xd = xd + (p1 * xy2 + p2 * (r2 + 2.0 * x * x))
        yd = yd + (p1 * (r2 + 2.0 * y * y) + p2 * xy2)
    return xd, yd


def camera_hits_t(
    xyz: Tensor,
    cam: CameraT,
    *,
    min_depth: float = 0.1,
    zbuffer_block: int = 4,
    zbuffer_tolerance: float = 0.5,
) -> tuple[Tensor, Tensor]:
    """Visible points of ``(N, 3)`` float32 ``xyz`` in ``cam`` (see the module docstring)."""
    dev = xyz.device
    depth = xyz @ cam.R[2] + cam.t[2]
    front = torch.nonzero(depth > min_depth).reshape(-1)
    empty = (torch.zeros(0, dtype=torch.int64, device=dev), xyz.new_zeros((0, 2)))
    if front.numel() == 0:
        return empty
    xy = xyz[front] @ cam.R[:2].T + cam.t[:2]
    z = depth[front]
    x, y = xy[:, 0] / z, xy[:, 1] / z
    if math.isfinite(cam.r_max):
        keep = x * x + y * y <= torch.tensor(cam.r_max * cam.r_max, dtype=torch.float32)
        front, x, y, z = front[keep], x[keep], y[keep], z[keep]
    xd, yd = _distort(cam, x, y)
    fx, skew, cx, fy, cy = cam.K
    u = fx * xd + cx
    if skew:
        u = u + skew * yd
    v = fy * yd + cy
    inside = (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    idx, u, v, d = front[inside], u[inside], v[inside], z[inside].double()
    if idx.numel() == 0:
        return empty
    # z-buffer: nearest depth per block x block cell (amin is order-independent).
    b = int(zbuffer_block)
    cols = -(-cam.width // b)
    cell = torch.div(v.floor().long(), b, rounding_mode="floor") * cols + torch.div(
        u.floor().long(), b, rounding_mode="floor"
    )
    nearest = torch.full((cols * -(-cam.height // b),), math.inf, dtype=torch.float64, device=dev)
    nearest.scatter_reduce_(0, cell, d, "amin")
    vis = d <= nearest[cell] + zbuffer_tolerance
    return idx[vis], torch.stack([u[vis], v[vis]], dim=1)
