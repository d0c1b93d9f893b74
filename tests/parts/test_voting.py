"""Two-dimensional check and the Class Non-highest Vote Penalty."""

from __future__ import annotations

import numpy as np
import pytest

from tests.parts.helpers import grid_view
from ws3d_ros.parts.interfaces import Detection
from ws3d_ros.parts.voting import (
    VotingConfig,
    check_box,
    class_winners,
    instance_candidates,
    part_classes,
    penalize_non_highest,
    vote_matrix,
)


def _pixels(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    rr, cc = np.mgrid[r0:r1, c0:c1]
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


def test_box_votes_for_the_part_inside_that_fills_it() -> None:
    wheel = _pixels(10, 20, 10, 20)
    body = _pixels(0, 30, 0, 60)  # around the wheel: mostly outside the box
    tiny = _pixels(12, 14, 12, 14)  # inside but fills little of the box
    box = Detection(9, 9, 21, 21, 0, 1.0)
    assert check_box(box, [body, wheel, tiny]) == 1
    # Part dimension: the body is not inside. Box dimension: the tiny part does not fill.
    assert check_box(box, [body, tiny]) == -1
    assert check_box(Detection(0, 0, 0, 5, 0, 1.0), [wheel]) == -1


def test_vote_matrix_sums_scores_over_views() -> None:
    n = 20
    views = [grid_view(list(range(n)), n), grid_view(list(range(n)), n)]
    part = np.where(np.arange(n) < 16, 0, 1)  # row 0 -> part 0, row 1 (4 points) -> part 1
    dets = [[Detection(0, 0, 16, 1, 1, 0.8)], [Detection(0, 1, 4, 2, 0, 0.5)]]
    votes = vote_matrix(part, 2, views, dets, 2, VotingConfig())
    assert votes.tolist() == [[0.0, 0.8], [0.5, 0.0]]
    with pytest.raises(ValueError, match="class 5"):
        vote_matrix(part, 2, views, [[Detection(0, 0, 1, 1, 5, 1.0)], []], 2)


def test_penalty_changes_the_argmax_as_defined() -> None:
    # Part 0 (a body) is mostly voted 'door' but caught 5 stray 'wheel' votes;
    # part 1 is the wheel with 4 'wheel' votes.
    votes = np.array([[5.0, 6.0], [4.0, 0.0]])
    assert class_winners(votes).tolist() == [0, 0]
    pen = penalize_non_highest(votes, 0.5)
    assert pen.tolist() == [[2.5, 6.0], [4.0, 0.0]]
    # The wheel class now goes to part 1; every part keeps its own best class.
    assert class_winners(pen).tolist() == [1, 0]
    assert part_classes(pen).tolist() == part_classes(votes).tolist() == [1, 0]
    # As instance predictions, the true wheel now outranks the body's stray wheel votes.
    wheel_rank = [p for p, c, _ in instance_candidates(pen) if c == 0]
    assert wheel_rank == [1, 0]
    assert [p for p, c, _ in instance_candidates(votes) if c == 0] == [0, 1]


def test_penalty_keeps_tied_maxima_and_checks_its_factor() -> None:
    votes = np.array([[3.0, 3.0, 1.0]])
    assert penalize_non_highest(votes, 0.0).tolist() == [[3.0, 3.0, 0.0]]
    assert np.array_equal(penalize_non_highest(votes, 1.0), votes)
    with pytest.raises(ValueError, match="penalty"):
        penalize_non_highest(votes, 1.5)
    assert part_classes(np.zeros((2, 3))).tolist() == [-1, -1]
