"""Sparse-conv LiDAR encoder: numpy rulebooks, gather-form convs, the MinkUNet.

``spconv`` is only imported by :class:`SpconvMinkUNet` (the GPU-training twin); the
gather form needs torch alone and exports to ONNX without scatter nodes. Exports are
resolved lazily so the numpy rulebook (used by the runtime's preprocessing) imports
without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SparseConv3dDown": "conv",
    "SparseInverseConv3dUp": "conv",
    "SubMConv3d": "conv",
    "DEFAULT_CONFIG": "minkunet",
    "MinkUNet": "minkunet",
    "SpconvMinkUNet": "minkunet",
    "SparseIndex": "rulebook",
    "build_sparse_index": "rulebook",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
