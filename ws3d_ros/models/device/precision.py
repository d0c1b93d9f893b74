"""The runtime's ``precision`` parameter: ``fp32 | fp16 | bf16``.

Contract: :func:`autocast_dtype` maps a name to the torch dtype the CLIP tower and the 3D
net run in under ``torch.autocast`` (``None`` for fp32: no autocast); anything else raises
``ValueError`` naming the choices. Outputs stay float32: the towers' feature maps are cast
back, and the network's classification runs outside autocast.
"""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "fp16", "bf16")
_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def autocast_dtype(precision: str) -> torch.dtype | None:
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {PRECISIONS}, found {precision!r}")
    return _DTYPES[precision]
