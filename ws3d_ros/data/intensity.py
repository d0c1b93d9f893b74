"""LiDAR intensity scale: every sweep's ``intensity`` brought to the model's trained range.

Sensors disagree on the scale of the ``intensity`` field: the simulator and KITTI give
reflectivity in ``[0, 1]``, nuScenes and most Velodyne/Ouster drivers ``[0, 255]``, some
``[0, 65535]``. A network trained on one scale reads another as a different material.

Contract (numpy, no torch, no ROS):
- A range is ``(lo, hi)`` floats with ``lo < hi``. :func:`parse_range` reads ``"0,255"``
  or ``"255"`` (``lo`` = 0).
- :func:`snap_range` turns the largest intensity seen into the input's range: the
  smallest of ``[0, 1]``, ``[0, 255]``, ``[0, 65535]`` holding it, else ``[0, max]``
  (the *intensity rule*, documented in the README).
- :func:`rescale_intensity` maps ``points["intensity"]`` linearly from ``source`` to
  ``target`` and returns a new array (the input is never modified; equal ranges or a
  cloud without the field return the input itself).
- :class:`IntensityNormalizer` is the ONE place a Frame's intensity is normalised before
  the net (the runtime :class:`~ws3d_ros.runtime.pipeline.Pipeline` - so the node,
  ``ws3d infer`` and ``ws3d eval`` - and the training cache call it). The source range
  is, in order: ``frame.intensity_range`` (declared by the user or detected by the bag
  reader over the first sweeps), the range declared on the normaliser, else detected
  from the sweeps it has seen so far (the running maximum, snapped; it only grows). The
  choice is logged once (and again only if a detected range grows).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError

log = logging.getLogger(__name__)

IntensityRange = tuple[float, float]

#: The ranges a detected maximum snaps to (upper bounds, lower bound 0).
COMMON_MAXIMA = (1.0, 255.0, 65535.0)
#: Sweeps the bag reader looks at before it decides an undeclared input's range.
DETECT_SWEEPS = 5


def parse_range(text: str | Sequence[float]) -> IntensityRange:
    """``"0,255"``, ``"255"`` or ``(0, 255)`` -> ``(0.0, 255.0)``; raises :class:`Ws3dError`."""
    if isinstance(text, str):
        parts = [p for p in text.replace(":", ",").split(",") if p.strip()]
    else:
        parts = list(text)
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise Ws3dError(
            f"intensity range must be 'HI' or 'LO,HI' numbers, found {text!r}"
        ) from None
    if len(values) == 1:
        values = [0.0, values[0]]
    if len(values) != 2 or not all(np.isfinite(values)) or values[0] >= values[1]:
        raise Ws3dError(f"intensity range must be LO,HI with LO < HI, found {text!r}")
    return (values[0], values[1])


def snap_range(max_value: float) -> IntensityRange:
    """The input range of a sensor whose largest intensity seen is ``max_value``."""
    for hi in COMMON_MAXIMA:
        if max_value <= hi * (1.0 + 1e-6):
            return (0.0, hi)
    return (0.0, float(max_value))


def max_intensity(points: np.ndarray) -> float | None:
    """Largest finite ``intensity`` of a structured cloud (``None``: no field or no value)."""
    if "intensity" not in (points.dtype.names or ()):
        return None
    values = np.asarray(points["intensity"], np.float64)
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else None


def rescale_intensity(
    points: np.ndarray, source: IntensityRange, target: IntensityRange
) -> np.ndarray:
    """``points`` with ``intensity`` mapped linearly from ``source`` to ``target``."""
    if "intensity" not in (points.dtype.names or ()) or tuple(source) == tuple(target):
        return points
    scale = (target[1] - target[0]) / (source[1] - source[0])
    out = points.copy()
    column = np.asarray(points["intensity"], np.float64)
    out["intensity"] = (column - source[0]) * scale + target[0]
    return out


class IntensityNormalizer:
    """Frames in, frames with the model's intensity scale out (module docstring)."""

    def __init__(self, target: Sequence[float], declared: Sequence[float] | None = None) -> None:
        self.target: IntensityRange = parse_range(target)
        self.declared: IntensityRange | None = None if declared is None else parse_range(declared)
        self._max_seen: float | None = None
        self._logged: IntensityRange | None = None
        self._lock = threading.Lock()

    def declare(self, source: Sequence[float] | None) -> None:
        """Fix the input's range (``None``: detect it from the sweeps)."""
        with self._lock:
            self.declared = None if source is None else parse_range(source)
            self._logged = None

    def source_for(self, frame: Any) -> tuple[IntensityRange | None, str]:
        """``(source range, where it came from)`` for ``frame`` (``None``: no intensity)."""
        given = getattr(frame, "intensity_range", None)
        if given is not None:
            return parse_range(given), getattr(frame, "intensity_origin", "") or "the input"
        if self.declared is not None:
            return self.declared, "declared"
        peak = max_intensity(frame.points)
        with self._lock:
            if peak is not None:
                self._max_seen = peak if self._max_seen is None else max(self._max_seen, peak)
            seen = self._max_seen
        if seen is None:
            return None, "no intensity field"
        return snap_range(seen), f"detected (max {seen:g} so far)"

    def __call__(self, frame: Any) -> Any:
        source, origin = self.source_for(frame)
        if source is None:
            return frame
        if source != self._logged:
            self._logged = source
            log.info(
                "intensity: input range [%g, %g] (%s) -> model range [%g, %g]",
                *source,
                origin,
                *self.target,
            )
        points = rescale_intensity(frame.points, source, self.target)
        if points is frame.points:
            return frame
        return replace(frame, points=points)
