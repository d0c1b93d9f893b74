"""2D -> 3D feature lifting: sample dense image features at the pixels LiDAR points hit.

Contract (numpy, no torch; the runtime, offline inference and the training cache share it):
- :func:`camera_hits` projects the points into one camera with the project's projection
  (z-buffer visibility on by default, so occluded points do not take the occluder's
  feature) and returns the visible point indices and their pixel coordinates.
- :func:`sample_bilinear` samples an ``(h, w, D)`` feature map at pixel coordinates of the
  ``(H, W)`` source image. Feature cell ``(i, j)`` covers the source pixels
  ``[j*W/w, (j+1)*W/w) x [i*H/h, (i+1)*H/h)`` and its value sits at the cell centre
  (``align_corners=False`` convention); borders clamp.
- :func:`lift` averages the samples over every camera that sees a point and returns
  ``(features (V, D) float32, index (N,) int64)`` with ``index[p] == V`` for points no
  camera sees. That sentinel layout lets the exported network gather (scatter-free) from
  ``concat(features, zero_row)``. With ``normalize`` (default) the averaged features are
  L2-normalised again, as CLIP's joint space is compared by cosine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.geometry.projection import project_points


@dataclass
class CameraHits:
    """Visible points of one camera: indices into the cloud and source-image pixels."""

    index: np.ndarray  # (V,) int64
    uv: np.ndarray  # (V, 2) float32 pixel coordinates in the camera image


def camera_hits(
    xyz: np.ndarray,
    camera: CameraModel,
    T_cam_from_lidar: Transform,
    *,
    zbuffer_block: int | None = 4,
    zbuffer_tolerance: float = 0.5,
) -> CameraHits:
    proj = project_points(
        xyz,
        camera,
        T_cam_from_lidar,
        zbuffer_block=zbuffer_block,
        zbuffer_tolerance=zbuffer_tolerance,
    )
    idx = np.flatnonzero(proj.mask)
    return CameraHits(index=idx, uv=proj.uv[idx])


def sample_bilinear(
    features: np.ndarray, uv: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    """Sample ``features (h, w, D)`` at ``uv (V, 2)`` pixels of an image of ``(H, W)``."""
    h, w, d = features.shape
    H, W = image_size
    if len(uv) == 0:
        return np.zeros((0, d), dtype=np.float32)
    # Continuous feature-grid coordinates with cell centres at integers.
    fx = uv[:, 0].astype(np.float32) * (w / W) - 0.5
    fy = uv[:, 1].astype(np.float32) * (h / H) - 0.5
    fx = np.clip(fx, 0.0, w - 1)
    fy = np.clip(fy, 0.0, h - 1)
    x0 = np.minimum(np.floor(fx).astype(np.int64), w - 1)
    y0 = np.minimum(np.floor(fy).astype(np.int64), h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    # float32 weights (fx - int64 would promote the whole sample to float64: 2x slower).
    ax = (fx - x0.astype(np.float32))[:, None]
    ay = (fy - y0.astype(np.float32))[:, None]
    flat = features.reshape(h * w, d)
    top = flat[y0 * w + x0] * (1 - ax) + flat[y0 * w + x1] * ax
    bottom = flat[y1 * w + x0] * (1 - ax) + flat[y1 * w + x1] * ax
    return (top * (1 - ay) + bottom * ay).astype(np.float32, copy=False)


def lift(
    num_points: int,
    hits: Sequence[CameraHits],
    feature_maps: Sequence[np.ndarray],
    image_sizes: Sequence[tuple[int, int]],
    *,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Average sampled features over the cameras that see each point (see module doc)."""
    if len(hits) != len(feature_maps) or len(hits) != len(image_sizes):
        raise ValueError("hits, feature_maps and image_sizes must have one entry per camera")
    dim = feature_maps[0].shape[-1] if feature_maps else 0
    index = np.full(num_points, -1, dtype=np.int64)
    if not hits:
        return np.zeros((0, dim), np.float32), np.zeros(num_points, np.int64)
    all_idx = np.concatenate([h.index for h in hits])
    seen = np.unique(all_idx)
    v = len(seen)
    index[seen] = np.arange(v)
    total = np.zeros((v, dim), dtype=np.float32)
    count = np.zeros(v, dtype=np.float32)
    for h, fmap, size in zip(hits, feature_maps, image_sizes, strict=True):
        if len(h.index) == 0:
            continue
        rows = index[h.index]
        # Each camera sees a point at most once, so plain fancy-index += is exact here.
        total[rows] += sample_bilinear(fmap, h.uv, size)
        count[rows] += 1.0
    index[index < 0] = v
    mean = total / np.maximum(count, 1.0)[:, None]
    if normalize:
        mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-6)
    return mean, index
