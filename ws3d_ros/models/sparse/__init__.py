"""Sparse-conv LiDAR encoder: numpy rulebooks, gather-form convs, the MinkUNet.

``spconv`` is only imported by :class:`SpconvMinkUNet` (the GPU-training twin); the
gather form needs torch alone and exports to ONNX without scatter nodes.
"""

from ws3d_ros.models.sparse.conv import SparseConv3dDown, SparseInverseConv3dUp, SubMConv3d
from ws3d_ros.models.sparse.minkunet import DEFAULT_CONFIG, MinkUNet, SpconvMinkUNet
from ws3d_ros.models.sparse.rulebook import SparseIndex, build_sparse_index

__all__ = [
    "DEFAULT_CONFIG",
    "MinkUNet",
    "SparseConv3dDown",
    "SparseIndex",
    "SparseInverseConv3dUp",
    "SpconvMinkUNet",
    "SubMConv3d",
    "build_sparse_index",
]
