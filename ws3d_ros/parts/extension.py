"""Self-extension: 2D masks of one view grow into global 3D groups across the other views.

Contract (ZeroPS, arXiv 2311.14262, the self-extension component, as this project reads it):
- A *seed* is a mask of the segmenter's automatic masks in one view, lifted to the points
  visible in that view whose pixel falls in it (:func:`seed_groups`; seeds with fewer than
  ``min_points`` points are dropped).
- :func:`self_extend` grows one seed: for each other view, most co-visible first, the
  group's points visible there are projected (the co-viewed region) and up to
  ``max_prompts`` of their pixels, spread out by farthest-point sampling, prompt the
  segmenter; the returned mask is lifted and added to the group unless the check rejects
  it. Check: of the mask's points already *observed* (visible in a view the group has
  already taken), at least ``min_agreement`` must be group members (the mask did not leak
  onto a neighbour), and the mask must hold at least ``min_cover`` of the group's
  co-visible points (the prompts selected this part, not a piece of another). Views whose
  co-visible points are fewer than ``min_covisible`` are retried in a later pass
  (``passes``), since the group may reach them after growing elsewhere.
- A :class:`Group` keeps ``members`` (``(N,)`` bool), ``support`` (how many accepted masks
  held each point) and the views it took; ``extend=False`` gives the single-view lifting
  baseline (the seed as is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.parts.correspondence import ViewCorrespondence
from ws3d_ros.parts.interfaces import MaskSegmenter


@dataclass(frozen=True)
class ExtensionConfig:
    """Thresholds of seeding and self-extension (see the module docstring)."""

    min_points: int = 8
    max_prompts: int = 6
    min_covisible: int = 4
    min_agreement: float = 0.6
    min_cover: float = 0.3
    passes: int = 2


@dataclass
class Group:
    """A 3D group of points grown from one seed mask."""

    members: np.ndarray  # (N,) bool
    support: np.ndarray  # (N,) int32: accepted masks holding the point
    seed_view: int
    views: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.members.sum())


def farthest_pixels(rc: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` rows of ``rc`` spread out: start at the pixel nearest the centroid, then
    repeatedly the pixel farthest from those chosen (deterministic)."""
    rc = np.asarray(rc)
    if len(rc) <= k:
        return rc.copy()
    pts = rc.astype(np.float64)
    first = int(np.argmin(((pts - pts.mean(axis=0)) ** 2).sum(axis=1)))
    chosen = [first]
    dist = ((pts - pts[first]) ** 2).sum(axis=1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((pts - pts[nxt]) ** 2).sum(axis=1))
    return rc[chosen]


def seed_groups(
    corrs: Sequence[ViewCorrespondence],
    images: Sequence[np.ndarray],
    segmenter: MaskSegmenter,
    config: ExtensionConfig = ExtensionConfig(),
) -> list[Group]:
    """Every automatic mask of every view lifted to 3D (see the module docstring)."""
    seeds = []
    for v, (corr, image) in enumerate(zip(corrs, images, strict=True)):
        segmenter.set_view(v, image)
        for mask in segmenter.everything():
            members = corr.lift(mask)
            if members.sum() >= config.min_points:
                seeds.append(Group(members, members.astype(np.int32), v, [v]))
    return seeds


def self_extend(
    seed: Group,
    corrs: Sequence[ViewCorrespondence],
    images: Sequence[np.ndarray],
    segmenter: MaskSegmenter,
    config: ExtensionConfig = ExtensionConfig(),
) -> Group:
    """Grow ``seed`` across the views of ``corrs`` (see the module docstring)."""
    members = seed.members.copy()
    support = seed.support.copy()
    observed = corrs[seed.seed_view].visible
    taken = list(seed.views)
    pending = [v for v in range(len(corrs)) if v not in taken]
    for _ in range(config.passes):
        if not pending:
            break
        # Most co-visible views first: their prompts rest on the most evidence.
        pending.sort(key=lambda v: -int(members[corrs[v].index].sum()))
        retry = []
        for v in pending:
            corr = corrs[v]
            co_rc = corr.pixels_of(members)
            if len(co_rc) < config.min_covisible:
                retry.append(v)
                continue
            segmenter.set_view(v, images[v])
            mask = segmenter.prompt(farthest_pixels(co_rc, config.max_prompts))
            if mask is None:
                continue
            new = corr.lift(mask)
            if not _accept(new, members, observed, len(co_rc), config):
                continue
            members |= new
            support += new
            observed |= corr.visible
            taken.append(v)
        pending = retry
    return Group(members, support, seed.seed_view, taken)


def _accept(
    new: np.ndarray,
    members: np.ndarray,
    observed: np.ndarray,
    n_covisible: int,
    config: ExtensionConfig,
) -> bool:
    """The two-sided consistency check of one prompted mask (module docstring)."""
    if not new.any():
        return False
    known = new & observed
    n_known = int(known.sum())
    if n_known >= config.min_covisible:
        if (known & members).sum() < config.min_agreement * n_known:
            return False
    return (new & members).sum() >= config.min_cover * n_covisible
