"""Point <-> pixel correspondences of one point set over several views, with visibility.

Contract:
- :func:`correspondences` projects the ``(N, 3)`` points (the frame of every view's
  ``T_cam_from_lidar``) into each :class:`~ws3d_ros.data.frame.CameraView` through the
  project's one projection, :func:`ws3d_ros.geometry.projection.project_points`, with its
  z-buffer (``zbuffer_block`` pixels, ``zbuffer_tolerance`` metres), so a point counts as
  seen only where no nearer point hides it.
- :class:`ViewCorrespondence` holds, for one view, the indices of the visible points
  (ascending) and their ``(row, col)`` pixels in the same order; :meth:`lift` turns a 2D
  mask into the visible points that fall in it (2D -> 3D), :meth:`pixels_of` gives the
  pixels of the visible members of a point set (3D -> 2D).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ws3d_ros.data.frame import CameraView
from ws3d_ros.geometry.projection import pixel_indices, project_points


@dataclass
class ViewCorrespondence:
    """Visible points of one view and their pixels (see the module docstring)."""

    index: np.ndarray  # (V,) int64 ascending point indices visible in this view
    rc: np.ndarray  # (V, 2) int64 (row, col) of each visible point
    height: int
    width: int
    n_points: int

    @property
    def visible(self) -> np.ndarray:
        """``(N,)`` bool: the point is visible in this view."""
        out = np.zeros(self.n_points, bool)
        out[self.index] = True
        return out

    def lift(self, mask: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: visible points whose pixel lies in the ``(H, W)`` bool ``mask``."""
        if mask.shape != (self.height, self.width):
            raise ValueError(f"mask shape {mask.shape} != view ({self.height}, {self.width})")
        out = np.zeros(self.n_points, bool)
        out[self.index[mask[self.rc[:, 0], self.rc[:, 1]]]] = True
        return out

    def pixels_of(self, members: np.ndarray) -> np.ndarray:
        """``(K, 2)`` ``(row, col)`` of the visible points of the ``(N,)`` bool ``members``."""
        return self.rc[members[self.index]]


def correspondences(
    xyz: np.ndarray,
    views: Sequence[CameraView],
    *,
    zbuffer_block: int = 3,
    zbuffer_tolerance: float = 0.05,
) -> list[ViewCorrespondence]:
    """One :class:`ViewCorrespondence` per view (see the module docstring)."""
    out = []
    for view in views:
        proj = project_points(
            xyz,
            view.camera,
            view.T_cam_from_lidar,
            zbuffer_block=zbuffer_block,
            zbuffer_tolerance=zbuffer_tolerance,
        )
        out.append(
            ViewCorrespondence(
                index=np.flatnonzero(proj.mask).astype(np.int64),
                rc=pixel_indices(proj),
                height=int(view.camera.height),
                width=int(view.camera.width),
                n_points=len(xyz),
            )
        )
    return out
