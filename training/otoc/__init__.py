"""One Thing One Click (Liu et al., CVPR 2021) for ws3d_ros training.

- :mod:`training.otoc.graph` - the supervoxel graph (nodes, adjacency, pooling).
- :mod:`training.otoc.relation` - relation network + momentum prototype bank + its loss.
- :mod:`training.otoc.propagation` - CRF mean-field and prototype-attention propagation,
  confident-supervoxel selection.
- :mod:`training.otoc.click_regions` - every propagated region must hold a click of its
  class (one click per object).
- :mod:`training.otoc.ground_prior` - supervoxels at ground level take only ground classes.
- :mod:`training.otoc.self_training` - pseudo labels per frame, round statistics, the
  self-training loop, instances by dual-set grouping.
"""

from training.otoc.click_regions import enforce_click_regions
from training.otoc.graph import SupervoxelGraph, build_graph, pool_log_probs, pool_mean
from training.otoc.ground_prior import ground_supervoxels, restrict_to_ground_classes
from training.otoc.propagation import (
    mean_field,
    potts_energy,
    propagate,
    prototype_attention,
    select_confident,
)
from training.otoc.relation import PrototypeBank, RelationLoss, RelationNet, affinity

__all__ = [
    "PrototypeBank",
    "RelationLoss",
    "RelationNet",
    "SupervoxelGraph",
    "affinity",
    "build_graph",
    "enforce_click_regions",
    "ground_supervoxels",
    "mean_field",
    "pool_log_probs",
    "pool_mean",
    "potts_energy",
    "propagate",
    "prototype_attention",
    "restrict_to_ground_classes",
    "select_confident",
]
