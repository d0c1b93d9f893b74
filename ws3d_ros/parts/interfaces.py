"""The two 2D model interfaces of the part pipeline, and the detection record they share.

Contract:
- :class:`MaskSegmenter` is a promptable mask segmenter in the style of SAM's
  ``SamPredictor``: :meth:`~MaskSegmenter.set_view` selects one view (its index in the
  sequence and its RGB image, ``(H, W, 3)`` uint8) and may compute an image embedding
  once; :meth:`~MaskSegmenter.everything` returns that view's automatic masks (a list of
  ``(H, W)`` bool arrays, "segment everything"); :meth:`~MaskSegmenter.prompt` returns the
  one mask selected by positive point prompts given as ``(K, 2)`` int ``(row, col)``
  pixels, or ``None`` when the model finds nothing.
- :class:`BoxDetector` is an open-vocabulary box detector in the style of GLIP:
  :meth:`~BoxDetector.detect` takes a view index, its RGB image and the class names in
  words and returns :class:`Detection` s whose ``class_index`` indexes those names.
- Implementations: :mod:`ws3d_ros.parts.sam` (SAM, local checkpoint),
  :mod:`ws3d_ros.parts.clip_boxes` (the project's open_clip towers scoring box
  proposals), :mod:`ws3d_ros.parts.rendered` (rendered ground truth with controlled
  noise, to measure the 3D algorithm apart from 2D model quality).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ws3d_ros.errors import Ws3dError


class ModelUnavailableError(Ws3dError):
    """A 2D model cannot be built: its package or weights are missing (the message says
    which and how to get them)."""


@dataclass(frozen=True)
class Detection:
    """One 2D box: pixel bounds ``[x0, x1) x [y0, y1)`` (columns, rows), a class, a score."""

    x0: float
    y0: float
    x1: float
    y1: float
    class_index: int
    score: float

    @property
    def area(self) -> float:
        return max(self.x1 - self.x0, 0.0) * max(self.y1 - self.y0, 0.0)


@runtime_checkable
class MaskSegmenter(Protocol):
    """Promptable mask segmenter (see the module docstring)."""

    def set_view(self, view_index: int, image: np.ndarray) -> None: ...

    def everything(self) -> list[np.ndarray]: ...

    def prompt(self, points_rc: np.ndarray) -> np.ndarray | None: ...


@runtime_checkable
class BoxDetector(Protocol):
    """Open-vocabulary box detector (see the module docstring)."""

    def detect(
        self, view_index: int, image: np.ndarray, class_names: list[str]
    ) -> list[Detection]: ...


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` half-open pixel bounds of a bool mask, ``None`` when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
