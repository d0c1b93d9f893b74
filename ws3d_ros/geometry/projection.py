"""LiDAR point -> camera pixel projection: the one implementation the node, CLI, sim and
training share.

Contract:
- :func:`project_points` maps ``(N,3)`` points (or a structured array with ``x, y, z``)
  through ``T_cam_from_lidar`` into a :class:`~ws3d_ros.geometry.camera.CameraModel` and
  returns a :class:`Projection` aligned with the input order:
  ``uv`` (float32 distorted pixels; NaN for points behind ``min_depth``, non-finite, or
  rejected by the wrap-around guard; points in front but outside the image keep their
  pixel coordinates), ``depth`` (float32 optical-axis z, for every point) and ``mask``
  (in front AND inside ``0 <= u < W, 0 <= v < H`` AND within the guard AND, with
  ``zbuffer_block``, visible).
- Wrap-around guard: a point whose undistorted normalised radius exceeds
  :attr:`CameraModel.fov_mask_bounds` is rejected before distortion, so a polynomial that
  folds back cannot put far off-axis points into the image.
- Points behind the camera never reach the division, so they never alias into the image.
- :func:`zbuffer_visibility` keeps a point when its depth is within ``tolerance`` metres
  of the nearest depth in its ``block x block`` pixel cell (occlusion by nearer points);
  vectorised and deterministic.
- Pixels follow the convention of :mod:`ws3d_ros.geometry.camera`: ``floor`` gives the
  (row, column) of a point (:func:`pixel_indices`).
- The camera-frame coordinates and the distortion are computed in float32 (points near a
  camera need no more); the rigid transform runs in the input precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform


@dataclass
class Projection:
    """Per-point projection into one camera, aligned with the input points."""

    uv: np.ndarray  # (N,2) float32 distorted pixel coordinates; NaN where undefined
    depth: np.ndarray  # (N,) float32 optical-axis depth (camera z)
    mask: np.ndarray  # (N,) bool: valid and inside the image (and visible with a z-buffer)

    def __len__(self) -> int:
        return len(self.mask)


def _as_xyz(points: Any) -> np.ndarray:
    """``(N,3)`` float32/float64 coordinates of an array or a structured ``x, y, z`` array."""
    arr = np.asarray(points)
    if arr.dtype.names is not None:
        missing = {"x", "y", "z"} - set(arr.dtype.names)
        if missing:
            raise ValueError(f"structured points need fields x, y, z; missing {sorted(missing)}")
        flat = arr.reshape(-1)
        dtype = np.result_type(*(flat.dtype.fields[n][0] for n in "xyz"), np.float32)
        xyz = np.empty((len(flat), 3), dtype=np.float64 if dtype == np.float64 else np.float32)
        for k, name in enumerate("xyz"):
            xyz[:, k] = flat[name]
        return xyz
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f"points must have shape (N, >=3), found {arr.shape}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr[:, :3]


def project_points(
    points: Any,
    camera: CameraModel,
    T_cam_from_lidar: Transform,
    *,
    min_depth: float = 0.1,
    zbuffer_block: int | None = None,
    zbuffer_tolerance: float = 0.5,
) -> Projection:
    """Project LiDAR points into ``camera`` (see the module docstring)."""
    return _project(
        _as_xyz(points), camera, T_cam_from_lidar, min_depth, zbuffer_block, zbuffer_tolerance
    )


def _project(
    xyz: np.ndarray,
    camera: CameraModel,
    T: Transform,
    min_depth: float,
    zbuffer_block: int | None,
    zbuffer_tolerance: float,
) -> Projection:
    n = len(xyz)
    # The transform runs in the input precision; only rows in front are rotated in full.
    dtype = xyz.dtype
    R = T.rotation.astype(dtype)
    t = T.translation.astype(dtype)
    # Non-finite points produce NaN on the way and fail every comparison: no warnings.
    with np.errstate(invalid="ignore", over="ignore"):
        z_all = xyz @ R[2]
        z_all += t[2]
        depth = z_all.astype(np.float32, copy=False)
        uv = np.full((n, 2), np.nan, dtype=np.float32)
        mask = np.zeros(n, dtype=bool)
        front = np.flatnonzero(depth > min_depth)  # NaN compares False: non-finite points drop
        if front.size:
            # np.take is several times faster than fancy indexing on (N,3) rows.
            xy = np.take(xyz, front, axis=0) @ R[:2].T
            xy += t[:2]
            xy = xy.astype(np.float32, copy=False)
            z = depth[front]
            x = xy[:, 0] / z
            y = xy[:, 1] / z
            r_max = camera.fov_mask_bounds
            if np.isfinite(r_max):
                keep = np.flatnonzero(x * x + y * y <= np.float32(r_max * r_max))
                front, x, y = front[keep], x[keep], y[keep]
            pix = camera.to_pixels(*camera.distort_normalized(x, y))
            u, v = pix[:, 0], pix[:, 1]
            uv[:, 0][front] = u
            uv[:, 1][front] = v
            inside = (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
            mask[front[inside]] = True
    if zbuffer_block:
        mask = zbuffer_visibility(
            uv, depth, mask, camera.width, camera.height, zbuffer_block, zbuffer_tolerance
        )
    return Projection(uv=uv, depth=depth, mask=mask)


def project_to_cameras(
    points: Any, cameras: Sequence[tuple[CameraModel, Transform]], **kw: Any
) -> list[Projection]:
    """:func:`project_points` into each ``(camera, T_cam_from_lidar)``, one per camera."""
    xyz = _as_xyz(points)
    return [
        _project(
            xyz,
            camera,
            T,
            kw.get("min_depth", 0.1),
            kw.get("zbuffer_block"),
            kw.get("zbuffer_tolerance", 0.5),
        )
        for camera, T in cameras
    ]


def zbuffer_visibility(
    uv: np.ndarray,
    depth: np.ndarray,
    mask: np.ndarray,
    width: int,
    height: int,
    block: int = 4,
    tolerance: float = 0.5,
) -> np.ndarray:
    """Points of ``mask`` within ``tolerance`` m of the nearest depth in their pixel cell."""
    block = int(block)
    if block < 1:
        raise ValueError(f"zbuffer block must be >= 1, found {block}")
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(len(mask), dtype=bool)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    u = np.floor(uv[idx, 0]).astype(np.int64)
    v = np.floor(uv[idx, 1]).astype(np.int64)
    d = np.asarray(depth, dtype=np.float64)[idx]
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height) & np.isfinite(d)
    idx, u, v, d = idx[inside], u[inside], v[inside], d[inside]
    cols = -(-int(width) // block)
    cell = (v // block) * cols + (u // block)
    nearest = np.full(cols * -(-int(height) // block), np.inf)
    np.minimum.at(nearest, cell, d)
    out[idx[d <= nearest[cell] + tolerance]] = True
    return out


def pixel_indices(proj: Projection) -> np.ndarray:
    """``(n_visible, 2)`` int64 ``(row, col)`` of the points of ``proj.mask``, in the order
    of ``np.flatnonzero(proj.mask)``."""
    idx = np.flatnonzero(proj.mask)
    rc = np.empty((idx.size, 2), dtype=np.int64)
    rc[:, 0] = np.floor(proj.uv[idx, 1])
    rc[:, 1] = np.floor(proj.uv[idx, 0])
    return rc
