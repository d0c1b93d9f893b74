"""The supervoxel graph of One Thing One Click: nodes = supervoxels, edges = touching pairs.

Paper: Liu et al., "One Thing One Click: A Self-Training Approach for Weakly Supervised
3D Semantic Segmentation", CVPR 2021 (Sec. 3.2: the super-voxel graph on which labels
propagate, with unary terms from the 3D network and pairwise terms from the relation
network).

Contract:
- :func:`build_graph` over-segments a sweep with the project's one over-segmentation,
  :func:`ws3d_ros.geometry.supervoxels.supervoxels` (same arguments as the training
  cache, so the ids equal the cached ``segments``), and takes the edges from
  :meth:`Supervoxels.adjacency`.
- :class:`SupervoxelGraph`: ``point_to_sv (N,)`` int64 in ``[0, S)`` (``-1`` only for
  non-finite points), ``edges (E,2)`` int64 with ``i < j``, ``num = S``.
- :func:`pool_mean` averages per-point rows over supervoxels (torch, differentiable);
  :func:`pool_log_probs` is the unary of the graph: the *mean log-probability* of each
  class over a supervoxel's points (OTOC's supervoxel-level prediction).
- :func:`sv_labels_from_points` maps point labels (``-1`` = none) to supervoxel labels
  by majority of the labelled points (``-1`` when a supervoxel has none), and
  :func:`points_from_sv` broadcasts supervoxel values back to points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ws3d_ros.geometry.supervoxels import Supervoxels, supervoxels


@dataclass
class SupervoxelGraph:
    """Supervoxel ids per point and the undirected adjacency (see the module docstring)."""

    point_to_sv: np.ndarray  # (N,) int64
    edges: np.ndarray  # (E, 2) int64, i < j
    num: int
    centroids: np.ndarray | None = None  # (S, 3)

    @classmethod
    def from_supervoxels(cls, sv: Supervoxels) -> SupervoxelGraph:
        return cls(sv.labels.astype(np.int64), sv.adjacency(), int(sv.num), sv.centroids)

    def edges_torch(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.as_tensor(self.edges, dtype=torch.long, device=device).reshape(-1, 2)


def build_graph(
    xyz: np.ndarray,
    intensity: np.ndarray | None = None,
    *,
    seed_resolution: float = 1.0,
    voxel_size: float = 0.2,
) -> SupervoxelGraph:
    """Over-segment ``(N,3)`` points and return their graph (see the module docstring)."""
    return SupervoxelGraph.from_supervoxels(
        supervoxels(
            np.asarray(xyz),
            intensity=intensity,
            voxel_size=voxel_size,
            seed_resolution=seed_resolution,
        )
    )


def pool_mean(values: torch.Tensor, groups: torch.Tensor, num: int) -> torch.Tensor:
    """``(num, C)`` mean of ``values (N, C)`` per group id (rows with group ``-1`` skipped;
    empty groups get zeros)."""
    ok = groups >= 0
    v, g = values[ok], groups[ok]
    total = values.new_zeros((num, values.shape[1])).index_add(0, g, v)
    count = values.new_zeros(num).index_add(0, g, values.new_ones(len(g)))
    return total / count.clamp_min(1.0).unsqueeze(1)


def pool_log_probs(logits: torch.Tensor, groups: torch.Tensor, num: int) -> torch.Tensor:
    """Unary of the graph: per supervoxel, the mean over its points of ``log_softmax``."""
    return pool_mean(torch.log_softmax(logits, dim=1), groups, num)


def sv_labels_from_points(
    point_labels: np.ndarray, point_to_sv: np.ndarray, num: int, num_classes: int
) -> np.ndarray:
    """Majority label of the labelled points of each supervoxel (``-1``: none labelled;
    ties go to the lower class id)."""
    lab = np.asarray(point_labels, np.int64)
    ok = (lab >= 0) & (lab < num_classes) & (point_to_sv >= 0)
    votes = np.zeros((num, num_classes), np.int64)
    np.add.at(votes, (point_to_sv[ok], lab[ok]), 1)
    out = votes.argmax(axis=1)
    out[votes.sum(axis=1) == 0] = -1
    return out


def points_from_sv(
    values: np.ndarray, point_to_sv: np.ndarray, fill: int | float = -1
) -> np.ndarray:
    """Broadcast per-supervoxel ``values`` to points (``fill`` where ``point_to_sv < 0``)."""
    out = np.full(len(point_to_sv), fill, dtype=np.asarray(values).dtype)
    ok = point_to_sv >= 0
    out[ok] = np.asarray(values)[point_to_sv[ok]]
    return out
