"""Measure ZeroPS and its ablations on objects with rendered part ground truth.

Contract:
- :data:`VARIANTS`: the ablation rows, as :class:`~ws3d_ros.parts.pipeline.ZeroPSConfig`
  s: ``lifting`` (single-view lifting, no self-extension, no merging: baseline 1),
  ``lifting+merging``, ``extension`` (self-extension without merging: baseline 2),
  ``zerops`` (extension + merging + vote penalty) and ``zerops-no-penalty``.
- :func:`evaluate` runs each variant on each object with a
  :class:`~ws3d_ros.parts.rendered.RenderedSegmenter` and
  :class:`~ws3d_ros.parts.rendered.RenderedDetector` at one named noise level (the same
  seeded 2D noise for every variant) and returns ``variant -> PartScores``.
- Objects are duck-typed (what :class:`ws3d_ros.sim.parts.PartObject` holds: ``kind``,
  ``xyz``, ``views``, ``segment_maps``, ``segment_class``, ``part_names``, ``part_class``,
  ``part_instance``); this module never imports the simulator.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from ws3d_ros.parts.metrics import PartScores
from ws3d_ros.parts.pipeline import PartResult, ZeroPS, ZeroPSConfig
from ws3d_ros.parts.rendered import RenderedDetector, RenderedSegmenter, noise_level

VARIANTS: dict[str, ZeroPSConfig] = {
    "lifting": ZeroPSConfig(extend=False, merge=False),
    "lifting+merging": ZeroPSConfig(extend=False, merge=True),
    "extension": ZeroPSConfig(extend=True, merge=False),
    "zerops": ZeroPSConfig(),
    "zerops-no-penalty": ZeroPSConfig(penalty=None),
}


def run_object(obj: Any, level: str, config: ZeroPSConfig, *, seed: int = 0) -> PartResult:
    """ZeroPS with the rendered 2D models at noise ``level`` on one object."""
    mask_noise, box_noise = noise_level(level)
    obj_seed = zlib.crc32(f"{obj.kind}/{int(obj.seed)}/{seed}".encode())
    segmenter = RenderedSegmenter(obj.segment_maps, mask_noise, seed=obj_seed)
    detector = RenderedDetector(obj.segment_maps, obj.segment_class, box_noise, seed=obj_seed)
    return ZeroPS(segmenter, detector, config)(obj.xyz, obj.views, list(obj.part_names))


def evaluate(
    objects: Iterable[Any],
    level: str,
    variants: Sequence[str] = tuple(VARIANTS),
    *,
    seed: int = 0,
) -> dict[str, PartScores]:
    """``variant -> PartScores`` over ``objects`` at noise ``level`` (module docstring)."""
    scores = {v: PartScores() for v in variants}
    for obj in objects:
        for name in variants:
            res = run_object(obj, level, VARIANTS[name], seed=seed)
            scores[name].add(
                obj.kind,
                obj.part_class,
                obj.part_instance,
                res.part_label,
                res.instance_masks(),
            )
    return scores
