"""Self-extension: a group seen partly in one view grows to the whole part across views."""

from __future__ import annotations

import numpy as np

from tests.parts.helpers import blank_images, grid_view, segment_map
from ws3d_ros.parts.extension import (
    ExtensionConfig,
    Group,
    farthest_pixels,
    seed_groups,
    self_extend,
)
from ws3d_ros.parts.rendered import MaskNoise, RenderedSegmenter

N = 40
# Part 1 = points 0..19, part 2 = points 20..39.
PART = np.where(np.arange(N) < 20, 1, 2)
VIEWS = [
    grid_view([*range(0, 8), *range(20, 30)], N),  # view 0: one end of each part
    grid_view([*range(5, 14), *range(24, 32)], N),  # view 1: the middle
    grid_view([*range(12, 20), *range(30, 40)], N),  # view 2: the far end
]
CFG = ExtensionConfig(min_points=3, min_covisible=2)


def _segmenter(noise: MaskNoise | None = None) -> RenderedSegmenter:
    maps = [segment_map(v, PART) for v in VIEWS]
    return RenderedSegmenter(maps, noise or MaskNoise(), min_pixels=1)


def test_group_grows_across_views_to_the_whole_part() -> None:
    seg = _segmenter()
    seeds = seed_groups(VIEWS, blank_images(3), seg, CFG)
    seed = next(s for s in seeds if s.seed_view == 0 and s.members[0])
    assert set(np.flatnonzero(seed.members)) == set(range(8))
    grown = self_extend(seed, VIEWS, blank_images(3), seg, CFG)
    # View 2 shares no point with the seed: it is reached through view 1 (a second hop).
    assert set(np.flatnonzero(grown.members)) == set(range(20))
    assert sorted(grown.views) == [0, 1, 2]
    # Points seen in two accepted views have support 2.
    assert grown.support[6] == 2 and grown.support[0] == 1


def test_extension_never_crosses_into_the_other_part() -> None:
    seg = _segmenter()
    for seed in seed_groups(VIEWS, blank_images(3), seg, CFG):
        grown = self_extend(seed, VIEWS, blank_images(3), seg, CFG)
        assert len(np.unique(PART[grown.members])) == 1


def test_a_leaking_mask_is_rejected() -> None:
    # In view 1 the segmenter merges both parts into one mask (a leak).
    maps = [segment_map(v, PART) for v in VIEWS]
    maps[1] = np.where(maps[1] > 0, 1, 0)
    seg = RenderedSegmenter(maps, min_pixels=1)
    seeds = seed_groups(VIEWS, blank_images(3), seg, CFG)
    seed = next(s for s in seeds if s.seed_view == 0 and s.members[0])
    grown = self_extend(seed, VIEWS, blank_images(3), seg, CFG)
    # The leaked mask holds points of part 2 already observed in view 0 -> rejected.
    assert not grown.members[20:].any()
    assert 1 not in grown.views


def test_seed_without_extension_is_the_lifted_mask() -> None:
    seeds = seed_groups(VIEWS, blank_images(3), _segmenter(), CFG)
    assert len(seeds) == 6
    assert all(isinstance(s, Group) and s.views == [s.seed_view] for s in seeds)


def test_farthest_pixels_spreads_and_is_deterministic() -> None:
    rc = np.array([[0, 0], [0, 1], [0, 2], [0, 10], [5, 5]])
    a = farthest_pixels(rc, 3)
    assert len(a) == 3 and len({tuple(r) for r in a}) == 3
    assert np.array_equal(a, farthest_pixels(rc, 3))
    assert len(farthest_pixels(rc, 10)) == 5
