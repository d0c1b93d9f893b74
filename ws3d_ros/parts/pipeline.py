"""ZeroPS over one object's points seen from several views: per-point part label + instance.

Contract:
- :class:`ZeroPS` holds a :class:`~ws3d_ros.parts.interfaces.MaskSegmenter`, a
  :class:`~ws3d_ros.parts.interfaces.BoxDetector` and a :class:`ZeroPSConfig`; calling it
  with ``(N, 3)`` points, the :class:`~ws3d_ros.data.frame.CameraView` s that saw them
  (every view with an image; ``T_cam_from_lidar`` maps the points' frame into the camera)
  and the part names in words returns a :class:`PartResult`.
- Steps: correspondences with z-buffer visibility
  (:mod:`~ws3d_ros.parts.correspondence`) -> seeds from every view's automatic masks ->
  self-extension (:mod:`~ws3d_ros.parts.extension`) -> merging and one part per point
  (:mod:`~ws3d_ros.parts.merging`) -> box votes with the two-dimensional check, the Class
  Non-highest Vote Penalty and the part classes (:mod:`~ws3d_ros.parts.voting`).
- Ablations by configuration: ``extend=False`` is the single-view lifting baseline,
  ``merge=False`` the extension-without-merging baseline, ``penalty=None`` turns the vote
  penalty off.
- Output: ``part_label`` (``(N,)`` int32 index into the part names, ``-1`` = no part),
  ``part_instance`` (``(N,)`` uint32, ``1..`` per labelled part, ``0`` = none), the raw
  and penalised vote matrices, the instance candidates (``(part, class, score)``) and
  ``part_of_point`` (``(N,)`` int32 part ids before labelling, ``-1`` = none).
- Pure numpy over the interfaces; no ROS, no simulator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.data.frame import CameraView
from ws3d_ros.parts.correspondence import correspondences
from ws3d_ros.parts.extension import ExtensionConfig, seed_groups, self_extend
from ws3d_ros.parts.interfaces import BoxDetector, MaskSegmenter
from ws3d_ros.parts.merging import assign_points, merge_groups
from ws3d_ros.parts.voting import (
    VotingConfig,
    instance_candidates,
    part_classes,
    penalize_non_highest,
    vote_matrix,
)


@dataclass(frozen=True)
class ZeroPSConfig:
    """Every choice of the pipeline (see the module docstring)."""

    extend: bool = True
    merge: bool = True
    penalty: float | None = 0.3
    merge_iou: float = 0.5
    min_part_points: int = 8
    zbuffer_block: int = 3
    zbuffer_tolerance: float = 0.05
    extension: ExtensionConfig = field(default_factory=ExtensionConfig)
    voting: VotingConfig = field(default_factory=VotingConfig)


@dataclass
class PartResult:
    """Per-point parts of one object (see the module docstring)."""

    part_names: list[str]
    part_label: np.ndarray  # (N,) int32, -1 = none
    part_instance: np.ndarray  # (N,) uint32, 0 = none
    part_of_point: np.ndarray  # (N,) int32, -1 = none
    votes: np.ndarray  # (P, C) raw
    penalized: np.ndarray  # (P, C) after the penalty (== votes when off)
    instances: list[tuple[int, int, float]]  # (part, class, score), best first
    n_seeds: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def instance_masks(self) -> list[tuple[np.ndarray, int, float]]:
        """``(members (N,) bool, class, score)`` per instance candidate."""
        return [(self.part_of_point == p, c, s) for p, c, s in self.instances]


class ZeroPS:
    """Zero-shot part segmentation from multi-view 2D masks and boxes."""

    def __init__(
        self,
        segmenter: MaskSegmenter,
        detector: BoxDetector,
        config: ZeroPSConfig | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.detector = detector
        self.config = config or ZeroPSConfig()

    def __call__(
        self, xyz: np.ndarray, views: Sequence[CameraView], part_names: Sequence[str]
    ) -> PartResult:
        cfg = self.config
        names = [str(n) for n in part_names]
        if not names:
            raise ValueError("part_names is empty")
        missing = [v.name for v in views if v.image is None]
        if missing:
            raise ValueError(f"views without an image: {missing}")
        xyz = np.asarray(xyz, np.float64)[:, :3]
        n = len(xyz)
        images = [v.image for v in views]
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        corrs = correspondences(
            xyz, views, zbuffer_block=cfg.zbuffer_block, zbuffer_tolerance=cfg.zbuffer_tolerance
        )
        t1 = time.perf_counter()
        seeds = seed_groups(corrs, images, self.segmenter, cfg.extension)
        groups = (
            [self_extend(s, corrs, images, self.segmenter, cfg.extension) for s in seeds]
            if cfg.extend
            else seeds
        )
        t2 = time.perf_counter()
        merged = merge_groups(groups, iou_threshold=cfg.merge_iou, merge=cfg.merge)
        part_of_point = assign_points(merged, n, min_points=cfg.min_part_points)
        n_parts = int(part_of_point.max()) + 1 if n else 0
        t3 = time.perf_counter()
        detections = [self.detector.detect(v, img, names) for v, img in enumerate(images)]
        votes = vote_matrix(part_of_point, n_parts, corrs, detections, len(names), cfg.voting)
        penalized = votes if cfg.penalty is None else penalize_non_highest(votes, cfg.penalty)
        classes = part_classes(penalized)
        t4 = time.perf_counter()
        part_label = np.full(n, -1, np.int32)
        part_instance = np.zeros(n, np.uint32)
        held = part_of_point >= 0
        part_label[held] = classes[part_of_point[held]]
        labelled = held & (part_label >= 0)
        part_instance[labelled] = part_of_point[labelled].astype(np.uint32) + 1
        timings.update(
            correspondence=t1 - t0, extension=t2 - t1, merging=t3 - t2, labelling=t4 - t3
        )
        return PartResult(
            part_names=names,
            part_label=part_label,
            part_instance=part_instance,
            part_of_point=part_of_point,
            votes=votes,
            penalized=penalized,
            instances=instance_candidates(penalized),
            n_seeds=len(seeds),
            timings=timings,
        )
