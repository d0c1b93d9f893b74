"""Merging joins groups of the same part (split masks) and keeps separate parts apart."""

from __future__ import annotations

import numpy as np

from tests.parts.helpers import blank_images, grid_view, segment_map
from ws3d_ros.parts.extension import ExtensionConfig, Group, seed_groups, self_extend
from ws3d_ros.parts.merging import assign_points, group_iou, merge_groups
from ws3d_ros.parts.rendered import RenderedSegmenter


def _group(idx: list[int], n: int = 40) -> Group:
    m = np.zeros(n, bool)
    m[idx] = True
    return Group(m, m.astype(np.int32), 0, [0])


def test_overlapping_groups_join_and_disjoint_parts_stay_apart() -> None:
    groups = [
        _group(list(range(0, 10))),  # door, from one half's seed
        _group(list(range(1, 10))),  # door, from the other half's seed
        _group(list(range(10, 20))),  # wheel 1
        _group(list(range(20, 30))),  # wheel 2, touching nothing
    ]
    parts = merge_groups(groups, iou_threshold=0.5)
    assert len(parts) == 3
    labels = assign_points(parts, 40, min_points=3)
    assert len(np.unique(labels[:10])) == 1
    assert labels[10] != labels[0] and labels[20] != labels[10]
    assert np.all(labels[30:] == -1)


def test_without_merging_every_group_is_a_part() -> None:
    groups = [_group(list(range(0, 10))), _group(list(range(1, 10)))]
    assert len(merge_groups(groups, merge=False)) == 2
    assert group_iou(groups[0].members, groups[1].members) == 0.9


def test_point_goes_to_the_part_most_groups_agree_on() -> None:
    # Three of part A's four groups hold point 9 (3/5); a lone leaked group claims it (1/2).
    groups = [_group([*range(0, 10)]) for _ in range(3)] + [_group([*range(0, 9)])]
    groups += [_group([9, *range(10, 20)])]
    parts = merge_groups(groups, iou_threshold=0.5)
    labels = assign_points(parts, 40, min_points=3)
    assert labels[9] == labels[0]
    assert labels[10] != labels[0]
    # With a single group for A that holds point 9 as well, the tie goes to the larger part.
    groups = [_group([*range(0, 12)]), _group([9, *range(10, 20)])]
    labels = assign_points(merge_groups(groups, iou_threshold=0.9), 40, min_points=3)
    assert labels[9] == labels[0] == 0


def test_split_masks_become_one_part_after_extension_and_merging() -> None:
    n = 40
    part = np.where(np.arange(n) < 20, 1, 2)
    views = [grid_view(list(range(0, 40)), n), grid_view(list(range(0, 40)), n)]
    maps = [segment_map(v, part) for v in views]
    # View 0's automatic masks cut part 1 in two (ids 1 and 3); view 1 sees it whole.
    maps[0] = np.where((maps[0] == 1) & (np.arange(16)[None, :] >= 6), 3, maps[0])
    seg = RenderedSegmenter(maps, min_pixels=1)
    cfg = ExtensionConfig(min_points=3, min_covisible=2)
    seeds = seed_groups(views, blank_images(2), seg, cfg)
    grown = [self_extend(s, views, blank_images(2), seg, cfg) for s in seeds]
    labels = assign_points(merge_groups(grown), n, min_points=3)
    assert len(np.unique(labels[:20])) == 1 and labels[0] >= 0
    assert labels[20] != labels[0]
    # View 0's lifted masks alone keep the two halves apart.
    lifted = assign_points(merge_groups([s for s in seeds if s.seed_view == 0]), n, min_points=3)
    assert len(np.unique(lifted[:20])) == 2
