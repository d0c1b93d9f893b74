"""Streaming semantic and panoptic evaluation of labelled LiDAR sweeps.

Contract
--------
:class:`PanopticEvaluator` accumulates frames (``add``) and reports at any
time (``result``) following the SemanticKITTI (Behley et al., ICCV 2019 /
Behley et al., ICRA 2021) and Panoptic-nuScenes (Fong et al., RA-L 2022)
conventions, with panoptic quality as defined by Kirillov et al., "Panoptic
Segmentation" (CVPR 2019):

* Labels are class ids ``0..C-1``. Ground-truth points labelled
  ``ignore_label`` (default 65535, the project's "unknown") are dropped from
  every metric. A *predicted* 65535 (the model abstains) on a labelled point
  counts as wrong: it lands in an extra "unknown" column of the ``(C, C+1)``
  int64 confusion matrix, so it is a false negative of the true class and a
  false positive of none.
* IoU of class ``c`` is ``TP / (TP + FP + FN)`` from the confusion matrix;
  mIoU averages over the classes that occur in the ground truth *or* in the
  predictions of that accumulator (a class with neither has no defined IoU
  and is left out; its per-class value is ``None``). Accuracy is the share of
  labelled points whose predicted class is right.
* Panoptic segments are ``(class, instance)`` pairs per frame. For a thing
  class each instance id > 0 is one segment (instance 0 = none: a predicted
  thing point without an instance belongs to no segment, a ground-truth thing
  point without an instance is void and removed from both sides, as void
  pixels are in Kirillov et al.). For a stuff class the whole region of the
  class in the frame is one segment, whatever the instance ids say. Ground-
  truth and predicted segments of the same class match when their IoU is
  > 0.5, which makes the matching unique. Unmatched ground-truth segments
  are false negatives and unmatched predicted segments false positives, but
  only when they have at least ``min_points`` points (SemanticKITTI's rule;
  smaller segments are ignored unless matched).
* Per class: ``PQ = sum(IoU of TP) / (TP + FP/2 + FN/2)``, ``SQ = sum(IoU)/TP``
  (0 when TP = 0), ``RQ = TP / (TP + FP/2 + FN/2)``; undefined (``None``) when
  ``TP + FP + FN = 0``. PQ, SQ, RQ average over the classes where they are
  defined (all / things / stuff). ``pq_dagger`` is PQ† of Porzi et al.,
  "Seamless Scene Segmentation" (CVPR 2019): PQ for thing classes, semantic
  IoU for stuff classes, averaged over the classes where those are defined.
* Three accumulators: every point (``"all"``), and, when ``add`` is given an
  ``in_fov`` mask, the in-FOV and out-of-FOV points (segments are cropped to
  each side). Every frame must give the mask or none may, so that the
  confusion matrix of ``"all"`` is the sum of the other two.
* If ``ignore_label`` is itself a class id (SemanticKITTI's "unlabeled" = 0),
  that class stays in the confusion matrix but is left out of every average.

:meth:`PanopticEvaluator.result` returns plain Python types (``None`` for
undefined values), ready for :func:`json.dumps`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import UNKNOWN_LABEL

_SPLITS = ("all", "in_fov", "out_fov")


class EvalError(Ws3dError, ValueError):
    """Inputs to the evaluator are inconsistent (shapes, label ranges, FOV masks)."""


@dataclass
class _Accumulator:
    """Sufficient statistics of one point subset, summed over frames."""

    n_classes: int
    confusion: np.ndarray = field(init=False)
    tp: np.ndarray = field(init=False)
    fp: np.ndarray = field(init=False)
    fn: np.ndarray = field(init=False)
    iou_sum: np.ndarray = field(init=False)
    frames: int = 0
    points: int = 0
    ignored: int = 0

    def __post_init__(self) -> None:
        c = self.n_classes
        self.confusion = np.zeros((c, c + 1), np.int64)
        self.tp = np.zeros(c, np.int64)
        self.fp = np.zeros(c, np.int64)
        self.fn = np.zeros(c, np.int64)
        self.iou_sum = np.zeros(c, np.float64)

    def merge(self, other: _Accumulator) -> None:
        self.confusion += other.confusion
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou_sum += other.iou_sum
        self.frames += other.frames
        self.points += other.points
        self.ignored += other.ignored


class PanopticEvaluator:
    """Accumulate semantic and panoptic statistics over frames; see the module docstring.

    Args:
        class_names: class names indexed by class id (unique).
        thing: per class, True for thing (instance) classes, False for stuff.
        ignore_label: ground-truth label excluded from evaluation.
        min_points: segments smaller than this are not counted as FN / FP.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        thing: Sequence[bool],
        *,
        ignore_label: int = UNKNOWN_LABEL,
        min_points: int = 15,
    ) -> None:
        self.class_names = [str(n) for n in class_names]
        if not self.class_names:
            raise EvalError("class_names is empty")
        if len(set(self.class_names)) != len(self.class_names):
            raise EvalError(f"class names must be unique: {self.class_names}")
        if len(thing) != len(self.class_names):
            raise EvalError(f"{len(thing)} thing flags for {len(self.class_names)} classes")
        if len(self.class_names) >= UNKNOWN_LABEL:
            raise EvalError(f"at most {UNKNOWN_LABEL - 1} classes")
        if min_points < 0:
            raise EvalError(f"min_points must be >= 0, got {min_points}")
        self.n_classes = len(self.class_names)
        self.thing = np.asarray(thing, dtype=bool)
        self.ignore_label = int(ignore_label)
        self.min_points = int(min_points)
        # Classes taking part in averages: all but an in-range ignore label.
        self._evaluated = np.ones(self.n_classes, bool)
        if 0 <= self.ignore_label < self.n_classes:
            self._evaluated[self.ignore_label] = False
        self._fov_mode: bool | None = None  # None until the first frame says
        self.reset()

    def reset(self) -> None:
        """Forget every frame added so far."""
        self._acc = {s: _Accumulator(self.n_classes) for s in _SPLITS}
        self._fov_mode = None

    @property
    def frames(self) -> int:
        return self._acc["all"].frames

    def confusion(self, split: str = "all") -> np.ndarray:
        """Copy of the ``(C, C+1)`` confusion matrix (rows GT, last column "unknown")."""
        return self._acc[split].confusion.copy()

    def merge(self, other: PanopticEvaluator) -> None:
        """Add the statistics of another evaluator (e.g. one per data-loader worker)."""
        if other.class_names != self.class_names or not np.array_equal(other.thing, self.thing):
            raise EvalError("cannot merge evaluators over different class lists")
        if other.ignore_label != self.ignore_label or other.min_points != self.min_points:
            raise EvalError("cannot merge evaluators with different ignore_label / min_points")
        if None not in (self._fov_mode, other._fov_mode) and self._fov_mode != other._fov_mode:
            raise EvalError("cannot merge an evaluator with FOV masks into one without")
        for s in _SPLITS:
            self._acc[s].merge(other._acc[s])
        if self._fov_mode is None:
            self._fov_mode = other._fov_mode

    # ------------------------------------------------------------------ adding

    def add(
        self,
        gt_labels: np.ndarray,
        gt_instances: np.ndarray,
        pred_labels: np.ndarray,
        pred_instances: np.ndarray,
        *,
        in_fov: np.ndarray | None = None,
    ) -> None:
        """Accumulate one frame (all arrays ``(N,)`` in the same point order)."""
        gl = self._as_int(gt_labels, "gt_labels")
        n = len(gl)
        gi = self._as_int(gt_instances, "gt_instances", n)
        pl = self._as_int(pred_labels, "pred_labels", n)
        pi = self._as_int(pred_instances, "pred_instances", n)
        labelled = gl != self.ignore_label
        if np.any((gl[labelled] < 0) | (gl[labelled] >= self.n_classes)):
            bad = np.unique(gl[labelled & ((gl < 0) | (gl >= self.n_classes))])
            raise EvalError(f"gt_labels outside 0..{self.n_classes - 1}: {bad[:10].tolist()}")
        bad_pred = (pl != UNKNOWN_LABEL) & ((pl < 0) | (pl >= self.n_classes))
        if np.any(bad_pred):
            bad = np.unique(pl[bad_pred])
            raise EvalError(
                f"pred_labels outside 0..{self.n_classes - 1} and not {UNKNOWN_LABEL}: "
                f"{bad[:10].tolist()}"
            )
        if np.any(gi < 0) or np.any(pi < 0):
            raise EvalError("instance ids must be >= 0")

        fov_mode = in_fov is not None
        if self._fov_mode is not None and fov_mode != self._fov_mode:
            raise EvalError(
                "in_fov must be given for every frame or for none "
                "(otherwise all != in_fov + out_fov)"
            )
        if in_fov is not None:
            fov = np.asarray(in_fov)
            if fov.shape != (n,) or fov.dtype != np.bool_:
                raise EvalError(
                    f"in_fov must be a bool array of shape ({n},), got {fov.dtype} {fov.shape}"
                )
        self._fov_mode = fov_mode

        self._update(self._acc["all"], gl, gi, pl, pi)
        if in_fov is not None:
            for split, m in (("in_fov", fov), ("out_fov", ~fov)):
                self._update(self._acc[split], gl[m], gi[m], pl[m], pi[m])

    @staticmethod
    def _as_int(a: np.ndarray, name: str, n: int | None = None) -> np.ndarray:
        arr = np.asarray(a)
        if arr.ndim != 1:
            raise EvalError(f"{name} must be 1-D, got shape {arr.shape}")
        if n is not None and len(arr) != n:
            raise EvalError(f"{name} has {len(arr)} entries for {n} points")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise EvalError(f"{name} must hold integers, got {arr.dtype}")
        # int64 holds uint16 labels and uint32 instance ids without wrap-around.
        return arr.astype(np.int64, copy=False)

    def _update(
        self, acc: _Accumulator, gl: np.ndarray, gi: np.ndarray, pl: np.ndarray, pi: np.ndarray
    ) -> None:
        c = self.n_classes
        acc.frames += 1
        acc.points += len(gl)
        labelled = gl != self.ignore_label
        acc.ignored += int(len(gl) - np.count_nonzero(labelled))

        # Semantic: one bincount over (gt, pred) cells; unknown predictions -> column C.
        g = gl[labelled]
        p = pl[labelled]
        p_col = np.where(p == UNKNOWN_LABEL, c, p)
        acc.confusion += np.bincount(g * (c + 1) + p_col, minlength=c * (c + 1)).reshape(c, c + 1)

        # Panoptic. Void: unlabelled points, and GT thing points without an instance.
        g_thing = self.thing[g]
        keep = ~(g_thing & (gi[labelled] == 0))
        g, p = g[keep], p[keep]
        g_inst = np.where(g_thing[keep], gi[labelled][keep], 1)  # stuff: one segment per class
        p_ok = (p != UNKNOWN_LABEL) & (p != self.ignore_label)
        p_cls = np.where(p_ok, p, 0)
        p_inst = np.where(self.thing[p_cls], pi[labelled][keep], 1)
        has_pred = p_ok & (p_inst > 0)

        # Dense segment indices; class in the high 32 bits keeps (class, id) pairs distinct.
        g_seg, g_idx, g_area = np.unique(
            (g << 32) | g_inst, return_inverse=True, return_counts=True
        )
        p_seg, p_idx_v, p_area = np.unique(
            (p_cls[has_pred] << 32) | p_inst[has_pred], return_inverse=True, return_counts=True
        )
        g_seg_cls = g_seg >> 32
        p_seg_cls = p_seg >> 32
        n_pred = len(p_seg)

        # Intersections of same-class (gt, pred) segment pairs.
        same = p_cls[has_pred] == g[has_pred]
        pair = g_idx[has_pred][same] * n_pred + p_idx_v[same]
        pairs, inter = np.unique(pair, return_counts=True)
        pg, pp = pairs // max(n_pred, 1), pairs % max(n_pred, 1)
        iou = inter / (g_area[pg] + p_area[pp] - inter)
        match = iou > 0.5  # > 0.5 makes matches unique (Kirillov et al., Thm. 1)

        tp_cls = g_seg_cls[pg[match]]
        acc.tp += np.bincount(tp_cls, minlength=c)
        acc.iou_sum += np.bincount(tp_cls, weights=iou[match], minlength=c)
        g_matched = np.zeros(len(g_seg), bool)
        g_matched[pg[match]] = True
        p_matched = np.zeros(n_pred, bool)
        p_matched[pp[match]] = True
        acc.fn += np.bincount(g_seg_cls[~g_matched & (g_area >= self.min_points)], minlength=c)
        acc.fp += np.bincount(p_seg_cls[~p_matched & (p_area >= self.min_points)], minlength=c)

    # ----------------------------------------------------------------- results

    def result(self) -> dict[str, dict[str, Any] | None]:
        """Metrics per split: ``{"all": {...}, "in_fov": {...}, "out_fov": {...}}``.

        ``in_fov`` / ``out_fov`` are ``None`` when no frame came with an FOV mask.
        """
        out: dict[str, dict[str, Any] | None] = {"all": self._split_result(self._acc["all"])}
        for split in ("in_fov", "out_fov"):
            out[split] = self._split_result(self._acc[split]) if self._fov_mode else None
        return out

    def _split_result(self, acc: _Accumulator) -> dict[str, Any]:
        cm = acc.confusion
        tp_sem = np.diag(cm[:, : self.n_classes]).astype(np.float64)
        gt_pts = cm.sum(axis=1)
        pred_pts = cm[:, : self.n_classes].sum(axis=0)
        union = gt_pts + pred_pts - tp_sem
        iou_def = (union > 0) & self._evaluated
        iou = np.divide(tp_sem, union, out=np.zeros_like(tp_sem), where=union > 0)
        labelled = int(gt_pts.sum())

        denom = acc.tp + 0.5 * acc.fp + 0.5 * acc.fn
        pq_def = (denom > 0) & self._evaluated
        pq = np.divide(acc.iou_sum, denom, out=np.zeros(self.n_classes), where=denom > 0)
        rq = np.divide(acc.tp, denom, out=np.zeros(self.n_classes), where=denom > 0)
        sq = np.divide(acc.iou_sum, acc.tp, out=np.zeros(self.n_classes), where=acc.tp > 0)

        th, st = self.thing, ~self.thing
        dagger = np.where(th, pq, iou)
        dagger_def = np.where(th, pq_def, iou_def)

        per_class = {}
        for k, name in enumerate(self.class_names):
            per_class[name] = {
                "id": k,
                "thing": bool(th[k]),
                "iou": float(iou[k]) if iou_def[k] else None,
                "pq": float(pq[k]) if pq_def[k] else None,
                "sq": float(sq[k]) if pq_def[k] else None,
                "rq": float(rq[k]) if pq_def[k] else None,
                "tp": int(acc.tp[k]),
                "fp": int(acc.fp[k]),
                "fn": int(acc.fn[k]),
                "gt_points": int(gt_pts[k]),
                "pred_points": int(pred_pts[k]),
            }
        return {
            "frames": acc.frames,
            "points": {
                "total": acc.points,
                "evaluated": labelled,
                "ignored": acc.ignored,
                "predicted_unknown": int(cm[:, self.n_classes].sum()),
            },
            "miou": _mean(iou, iou_def),
            "acc": float(tp_sem.sum() / labelled) if labelled else None,
            "pq": _mean(pq, pq_def),
            "sq": _mean(sq, pq_def),
            "rq": _mean(rq, pq_def),
            "pq_things": _mean(pq, pq_def & th),
            "sq_things": _mean(sq, pq_def & th),
            "rq_things": _mean(rq, pq_def & th),
            "pq_stuff": _mean(pq, pq_def & st),
            "sq_stuff": _mean(sq, pq_def & st),
            "rq_stuff": _mean(rq, pq_def & st),
            "pq_dagger": _mean(dagger, dagger_def),
            "per_class": per_class,
            "confusion": cm.tolist(),
            "confusion_columns": [*self.class_names, "unknown"],
        }


def _mean(values: np.ndarray, defined: np.ndarray) -> float | None:
    return float(values[defined].mean()) if np.any(defined) else None


def majority_class_baseline(
    gt_labels_list: Iterable[np.ndarray], ignore_label: int = UNKNOWN_LABEL
) -> int:
    """The most frequent ground-truth class over all frames (ignoring ``ignore_label``).

    A floor to compare a model with: predicting this label everywhere gives the
    accuracy of the majority class and an mIoU of about ``1 / n_classes_present``.
    Ties go to the smaller class id.
    """
    counts = np.zeros(0, np.int64)
    for labels in gt_labels_list:
        lab = np.asarray(labels).astype(np.int64, copy=False).ravel()
        lab = lab[lab != ignore_label]
        if lab.size and lab.min() < 0:
            raise EvalError("labels must be >= 0")
        bc = np.bincount(lab)
        if len(bc) > len(counts):
            counts = np.pad(counts, (0, len(bc) - len(counts)))
        counts[: len(bc)] += bc
    if not counts.any():
        raise EvalError("no labelled point in gt_labels_list; no majority class")
    return int(np.argmax(counts))
