"""Merging of 3D groups into instance-level parts, and the one-part-per-point assignment.

Contract:
- :func:`merge_groups` joins groups whose point sets overlap with IoU of at least
  ``iou_threshold`` (transitively, union-find): groups grown from different seeds of the
  same part (pieces of a split mask, the same part seen from several views) become one
  part; groups that share no points (two wheels) never join. A merged part of ``k``
  groups keeps, per point, how many of them hold the point (``count``) and scores it
  ``count / (k + 1)``: the share of its groups, shrunk towards 0 for parts that rest on
  few groups (a lone group claiming a point scores 1/2, a part of four groups three of
  which hold it 3/5). ``merge=False`` keeps every group as its own part (the "extension
  without merging" ablation).
- :func:`assign_points` gives every point one part: the part with the highest score for
  it, ties going to the part with more member groups, then the larger part; points no
  part holds, and parts left with fewer than ``min_points`` points, get ``-1``. Part ids
  are renumbered ``0 .. P-1`` by decreasing size (deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ws3d_ros.parts.extension import Group


@dataclass
class MergedPart:
    """One instance-level part candidate: a set of groups and its per-point score."""

    count: np.ndarray  # (N,) float32: member groups holding the point
    n_groups: int

    @property
    def score(self) -> np.ndarray:
        """``count / (n_groups + 1)`` per point (see the module docstring)."""
        return self.count / np.float32(self.n_groups + 1)

    @property
    def size(self) -> int:
        return int((self.count > 0).sum())


def group_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``(N,)`` bool point sets (0 for two empty sets)."""
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 0.0


def merge_groups(
    groups: Sequence[Group], *, iou_threshold: float = 0.5, merge: bool = True
) -> list[MergedPart]:
    """Union-find over pairwise group IoU (see the module docstring)."""
    n = len(groups)
    if n == 0:
        return []
    if not merge:
        return [MergedPart(g.members.astype(np.float32), 1) for g in groups]
    m = np.stack([g.members for g in groups]).astype(np.float32)  # (G, N)
    inter = m @ m.T
    sizes = m.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(iou >= iou_threshold, k=1)), strict=True):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots: dict[int, list[int]] = {}
    for i in range(n):
        roots.setdefault(find(i), []).append(i)
    return [MergedPart(m[idx].sum(axis=0).astype(np.float32), len(idx)) for idx in roots.values()]


def assign_points(parts: Sequence[MergedPart], n_points: int, *, min_points: int = 8) -> np.ndarray:
    """``(N,)`` int32 part id per point, ``-1`` for none (see the module docstring)."""
    out = np.full(n_points, -1, np.int32)
    if not parts:
        return out
    score = np.stack([p.score for p in parts])  # (P, N)
    # Lexicographic key per point: score (to 1e-6), then member groups, then size.
    n_groups = np.array([p.n_groups for p in parts])
    sizes = np.array([p.size for p in parts])
    tie_rank = np.empty(len(parts), np.int64)
    tie_rank[np.lexsort((sizes, n_groups))] = np.arange(len(parts))
    quantised = np.round(score.astype(np.float64) * 1e6).astype(np.int64)
    key = np.where(score > 0, quantised * len(parts) + tie_rank[:, None], -1)
    best = np.argmax(key, axis=0)
    held = key[best, np.arange(n_points)] >= 0
    counts = np.bincount(best[held], minlength=len(parts))
    keep = np.flatnonzero(counts >= min_points)
    order = keep[np.argsort(-counts[keep], kind="stable")]
    remap = np.full(len(parts), -1, np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    out[held] = remap[best[held]]
    return out
