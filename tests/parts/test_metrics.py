"""Part mIoU and AP@50 on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from ws3d_ros.parts.metrics import PartScores, average_precision


def test_average_precision_hand_values() -> None:
    assert average_precision([(0.9, True), (0.8, True)], 2) == 1.0
    # TP, FP, TP over 2 truths: recall 0.5 at precision 1, recall 1 at precision 2/3.
    assert average_precision([(0.9, True), (0.8, False), (0.7, True)], 2) == pytest.approx(
        0.5 + 0.5 * 2 / 3
    )
    assert average_precision([], 3) == 0.0
    with pytest.raises(ValueError):
        average_precision([(1.0, True)], 0)


def test_miou_and_ap_of_one_object() -> None:
    true_class = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    true_inst = np.array([1, 1, 2, 2, 3, 3, 3, 3])
    pred_class = np.array([0, 0, 0, 1, 1, 1, 1, -1])
    s = PartScores()
    preds = [
        (np.arange(8) < 2, 0, 0.9),  # instance 1 exactly
        (np.isin(np.arange(8), [2, 3]), 0, 0.5),  # instance 2 exactly
        (np.arange(8) >= 3, 1, 0.8),  # 4 of its 5 points are instance 3: IoU 0.8
        (np.arange(8) >= 3, 0, 0.1),  # a false positive of class 0
    ]
    s.add("car", true_class, true_inst, pred_class, preds)
    # class 0: inter 3, union 4; class 1: inter 3, union 5.
    assert s.miou() == pytest.approx((3 / 4 + 3 / 5) / 2)
    # class 0: TP, TP, FP (ranked last) -> AP 1; class 1: one TP -> 1.
    assert s.ap50() == pytest.approx(1.0)
    assert s.per_category()["car"][0] == pytest.approx(s.miou())


def test_categories_are_averaged_after_their_classes() -> None:
    s = PartScores()
    s.add("a", np.array([0, 0]), np.array([1, 1]), np.array([0, 0]), [])
    s.add("b", np.array([0, 1]), np.array([1, 2]), np.array([-1, -1]), [])
    assert s.miou() == pytest.approx(0.5)  # a: 1.0, b: 0.0
    assert s.ap50() == 0.0
