"""Part segmentation metrics: part mIoU and instance AP@50, accumulated over objects.

Contract:
- :class:`PartScores` accumulates objects of named categories (``add``): per category and
  part class, the intersection and union of predicted and true points (semantic), and the
  scored instance predictions matched to true part instances (instance).
- Part mIoU (PartNet-E style): per category, the mean over its part classes that occur in
  the ground truth of IoU = intersection / union summed over that category's objects;
  then the mean over categories. Points the prediction leaves without a part count as
  wrong for their true class.
- Instance AP at IoU 0.5: per category and class, predictions of every object ranked by
  score, each matched greedily to the unmatched true instance of the same object and
  class with the highest IoU when that IoU is >= 0.5; AP is the area under the
  precision-recall curve with precision made monotone (all-point interpolation, as
  VOC/COCO); classes without true instances are skipped; mean over classes, then
  categories.
- Results are fractions in ``[0, 1]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def average_precision(scored_hits: Sequence[tuple[float, bool]], n_true: int) -> float:
    """All-point interpolated AP of ``(score, is_true_positive)`` pairs over ``n_true``."""
    if n_true <= 0:
        raise ValueError("AP needs at least one true instance")
    if not scored_hits:
        return 0.0
    order = sorted(scored_hits, key=lambda t: -t[0])
    tp = np.cumsum([1.0 if h else 0.0 for _, h in order])
    fp = np.cumsum([0.0 if h else 1.0 for _, h in order])
    recall = np.concatenate([[0.0], tp / n_true])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-12)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


class PartScores:
    """Accumulates objects; see the module docstring."""

    def __init__(self) -> None:
        self.inter: dict[tuple[str, int], float] = defaultdict(float)
        self.union: dict[tuple[str, int], float] = defaultdict(float)
        self.present: set[tuple[str, int]] = set()
        self.hits: dict[tuple[str, int], list[tuple[float, bool]]] = defaultdict(list)
        self.n_true: dict[tuple[str, int], int] = defaultdict(int)

    def add(
        self,
        category: str,
        true_class: np.ndarray,
        true_instance: np.ndarray,
        pred_class: np.ndarray,
        pred_instances: Sequence[tuple[np.ndarray, int, float]],
    ) -> None:
        """One object: per-point true class (``-1`` none) and instance (``0`` none), the
        predicted per-point class, and the scored predicted instances
        ``(members (N,) bool, class, score)``."""
        true_class = np.asarray(true_class)
        pred_class = np.asarray(pred_class)
        true_instance = np.asarray(true_instance)
        for c in np.unique(true_class[true_class >= 0]):
            key = (category, int(c))
            t, p = true_class == c, pred_class == c
            self.present.add(key)
            self.inter[key] += float((t & p).sum())
            self.union[key] += float((t | p).sum())
        # Predicted classes absent from this object's truth still count against the union.
        for c in np.unique(pred_class[pred_class >= 0]):
            if not (true_class == c).any():
                self.union[(category, int(c))] += float((pred_class == c).sum())
        true_ids = np.unique(true_instance[true_instance > 0])
        gt = {}
        for i in true_ids:
            m = true_instance == i
            cls = np.bincount(true_class[m][true_class[m] >= 0]).argmax()
            gt[int(i)] = (m, int(cls))
            self.n_true[(category, int(cls))] += 1
        matched: set[int] = set()
        for members, c, score in sorted(pred_instances, key=lambda t: -t[2]):
            best, best_iou = -1, 0.5
            for i, (m, cls) in gt.items():
                if cls != c or i in matched:
                    continue
                union = float((m | members).sum())
                iou = float((m & members).sum()) / union if union else 0.0
                if iou >= best_iou:
                    best, best_iou = i, iou
            if best >= 0:
                matched.add(best)
            self.hits[(category, int(c))].append((float(score), best >= 0))

    def miou(self) -> float:
        per_cat: dict[str, list[float]] = defaultdict(list)
        for key in sorted(self.present):
            per_cat[key[0]].append(self.inter[key] / self.union[key] if self.union[key] else 0.0)
        return float(np.mean([np.mean(v) for v in per_cat.values()])) if per_cat else 0.0

    def ap50(self) -> float:
        per_cat: dict[str, list[float]] = defaultdict(list)
        for key in sorted(self.n_true):
            per_cat[key[0]].append(average_precision(self.hits.get(key, []), self.n_true[key]))
        return float(np.mean([np.mean(v) for v in per_cat.values()])) if per_cat else 0.0

    def per_category(self) -> dict[str, tuple[float, float]]:
        """``category -> (mIoU, AP@50)`` of that category alone."""
        out = {}
        for cat in sorted({k[0] for k in self.present}):
            sub = PartScores()
            for attr in ("inter", "union", "hits", "n_true"):
                src = getattr(self, attr)
                getattr(sub, attr).update({k: v for k, v in src.items() if k[0] == cat})
            sub.present = {k for k in self.present if k[0] == cat}
            out[cat] = (sub.miou(), sub.ap50())
        return out
