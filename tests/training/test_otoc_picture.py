"""training.otoc.picture: the round-by-round pseudo-label picture."""

from __future__ import annotations

import numpy as np
import pytest

from training.otoc.picture import PANEL_WIDTH, rounds_picture
from ws3d_ros.runtime.vocabulary import color_for


def test_rounds_picture_grid_colours_and_unlabelled_grey() -> None:
    rng = np.random.default_rng(0)
    xyz = np.column_stack([rng.uniform(5, 40, 4000), rng.uniform(-15, 15, 4000), np.zeros(4000)])
    full = np.zeros(4000, np.uint16)
    none = np.full(4000, 65535, np.uint16)
    img = rounds_picture(xyz, [("ground truth", full), ("round 1", none), ("x", full)],
                         ["road", "car"], ["car"])  # fmt: skip
    assert img.dtype == np.uint8 and img.shape[1] == 2 * PANEL_WIDTH
    road = np.array(color_for("road"), np.uint8)
    left = img[:200, :PANEL_WIDTH].reshape(-1, 3)
    right = img[:200, PANEL_WIDTH:].reshape(-1, 3)
    # Road-coloured points in the ground-truth panel, none in the unlabelled panel.
    assert (left == road).all(1).sum() > 500
    assert (right == road).all(1).sum() == 0
    assert (right == 128).all(1).sum() > 500
    # Three panels -> two rows (the fourth cell blank) + legend.
    assert img.shape[0] > 2 * 200


def test_rounds_picture_rejects_mismatched_panels() -> None:
    with pytest.raises(ValueError, match="3 labels for 2 points"):
        rounds_picture(np.zeros((2, 3)), [("a", np.zeros(3, np.uint16))], ["road"])
    with pytest.raises(ValueError, match="at least one panel"):
        rounds_picture(np.zeros((2, 3)), [], ["road"])
