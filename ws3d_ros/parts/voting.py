"""Multi-modal labelling: 2D boxes vote for 3D parts; the Class Non-highest Vote Penalty.

Contract (ZeroPS, arXiv 2311.14262, the multi-modal labelling component, as this project
reads it):
- Two-dimensional check (:func:`check_box`): a box of one view is matched against every
  3D part through the part's points visible in that view. Part dimension: the share of
  the part's visible pixels inside the box must be at least ``min_inside`` (the part lies
  in the box). Box dimension: the bounding box of those inside pixels must cover at least
  ``min_fill`` of the box's area (the part fills the box). Of the parts passing both, the
  one with the largest ``inside * fill`` is the box's part; none passing means the box
  casts no vote.
- :func:`vote_matrix`: every box of every view adds its score to ``V[part, class]``
  (``(P, C)`` float64).
- Class Non-highest Vote Penalty (:func:`penalize_non_highest`): in each part's row, the
  votes for classes other than the part's highest-voted class (all tied maxima count as
  highest) are multiplied by ``penalty`` in ``[0, 1]``. A part's own row argmax never
  changes; what changes is the competition *between parts for a class*: a part that also
  collected stray votes for class ``c`` (say a body that caught some wheel boxes) ranks
  below a part whose best class is ``c``, so the column argmax and the instance ranking
  of class ``c`` can change (:func:`class_winners`).
- :func:`part_classes`: each part's class is its row argmax of the (penalised) matrix, or
  ``-1`` when it got no vote. :func:`instance_candidates` lists every ``(part, class)``
  with a positive vote as a scored instance prediction (score = the penalised vote), the
  form instance AP is measured on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ws3d_ros.parts.correspondence import ViewCorrespondence
from ws3d_ros.parts.interfaces import Detection


@dataclass(frozen=True)
class VotingConfig:
    """Thresholds of the two-dimensional check and the penalty factor."""

    min_inside: float = 0.7
    min_fill: float = 0.4
    penalty: float = 0.3


def check_box(
    det: Detection, part_pixels: Sequence[np.ndarray], config: VotingConfig = VotingConfig()
) -> int:
    """Index of the part the box ``det`` votes for, or ``-1`` (see the module docstring).

    ``part_pixels[p]`` is the ``(K, 2)`` ``(row, col)`` of part ``p``'s visible points."""
    area = det.area
    if area <= 0:
        return -1
    best, best_score = -1, 0.0
    for p, rc in enumerate(part_pixels):
        if len(rc) == 0:
            continue
        r, c = rc[:, 0], rc[:, 1]
        inside = (c >= det.x0) & (c < det.x1) & (r >= det.y0) & (r < det.y1)
        n_in = int(inside.sum())
        share = n_in / len(rc)
        if n_in == 0 or share < config.min_inside:
            continue
        ri, ci = r[inside], c[inside]
        fill = float((ci.max() + 1 - ci.min()) * (ri.max() + 1 - ri.min())) / area
        fill = min(fill, 1.0)
        if fill < config.min_fill:
            continue
        if share * fill > best_score:
            best, best_score = p, share * fill
    return best


def vote_matrix(
    part_of_point: np.ndarray,
    n_parts: int,
    corrs: Sequence[ViewCorrespondence],
    detections: Sequence[Sequence[Detection]],
    n_classes: int,
    config: VotingConfig = VotingConfig(),
) -> np.ndarray:
    """``(P, C)`` votes of every view's boxes (see the module docstring)."""
    votes = np.zeros((n_parts, n_classes), np.float64)
    for corr, dets in zip(corrs, detections, strict=True):
        if not dets or n_parts == 0:
            continue
        vis_part = part_of_point[corr.index]
        pixels = [corr.rc[vis_part == p] for p in range(n_parts)]
        for det in dets:
            if not 0 <= det.class_index < n_classes:
                raise ValueError(f"detection class {det.class_index} outside 0..{n_classes - 1}")
            p = check_box(det, pixels, config)
            if p >= 0:
                votes[p, det.class_index] += float(det.score)
    return votes


def penalize_non_highest(votes: np.ndarray, penalty: float) -> np.ndarray:
    """The Class Non-highest Vote Penalty (see the module docstring)."""
    if not 0.0 <= penalty <= 1.0:
        raise ValueError(f"penalty must be within [0, 1], found {penalty}")
    votes = np.asarray(votes, np.float64)
    if votes.size == 0:
        return votes.copy()
    highest = votes >= votes.max(axis=1, keepdims=True)
    return np.where(highest, votes, votes * penalty)


def class_winners(votes: np.ndarray) -> np.ndarray:
    """``(C,)`` the part with the most votes for each class (``-1`` when none voted)."""
    if votes.shape[0] == 0:
        return np.full(votes.shape[1], -1, np.int64)
    best = np.argmax(votes, axis=0)
    return np.where(votes.max(axis=0) > 0, best, -1)


def part_classes(votes: np.ndarray) -> np.ndarray:
    """``(P,)`` each part's class (row argmax), ``-1`` for a part with no vote."""
    if votes.shape[1] == 0:
        return np.full(votes.shape[0], -1, np.int64)
    return np.where(votes.max(axis=1) > 0, np.argmax(votes, axis=1), -1)


def instance_candidates(votes: np.ndarray) -> list[tuple[int, int, float]]:
    """Every ``(part, class, score)`` with a positive vote, best score first."""
    parts, classes = np.nonzero(votes > 0)
    out = [(int(p), int(c), float(votes[p, c])) for p, c in zip(parts, classes, strict=True)]
    out.sort(key=lambda t: (-t[2], t[0], t[1]))
    return out
