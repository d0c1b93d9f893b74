"""Hand-made views for the parts tests: each point owns one pixel per view it is seen in."""

from __future__ import annotations

import numpy as np

from ws3d_ros.parts.correspondence import ViewCorrespondence

H, W = 8, 16


def grid_view(visible: list[int], n_points: int) -> ViewCorrespondence:
    """Points ``visible`` laid out row-major on an ``H x W`` grid, in that order."""
    idx = np.asarray(sorted(visible), np.int64)
    k = np.arange(len(idx))
    rc = np.stack([k // W, k % W], axis=1).astype(np.int64)
    return ViewCorrespondence(idx, rc, H, W, n_points)


def segment_map(corr: ViewCorrespondence, segment_of_point: np.ndarray) -> np.ndarray:
    """The ``(H, W)`` map that paints each visible point's pixel with its segment id."""
    seg = np.zeros((corr.height, corr.width), np.int32)
    seg[corr.rc[:, 0], corr.rc[:, 1]] = segment_of_point[corr.index]
    return seg


def blank_images(n: int) -> list[np.ndarray]:
    return [np.zeros((H, W, 3), np.uint8) for _ in range(n)]
