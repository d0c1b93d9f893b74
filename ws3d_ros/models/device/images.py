"""Camera image -> CLIP tower input on a device: the twin of
:func:`ws3d_ros.models.clip.dense.preprocess`.

Contract: :func:`preprocess_t` takes an ``(H, W, 3)`` uint8 RGB tensor (already on the
device) and returns the ``(3, h, w)`` float32 tensor the numpy-fed function returns: /255,
bilinear resize (antialiased when shrinking) to ``size``, clamp to [0, 1], normalise with
the tower's mean/std. Same torch ops in the same order, so on CPU the result is identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def preprocess_t(
    rgb: Tensor, size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> Tensor:
    if rgb.dtype != torch.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, found {tuple(rgb.shape)} {rgb.dtype}")
    x = rgb.permute(2, 0, 1).float().div_(255.0)
    h, w = int(size[0]), int(size[1])
    if (h, w) != tuple(x.shape[1:]):
        x = F.interpolate(x[None], size=(h, w), mode="bilinear", antialias=True)[0].clamp_(0, 1)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(3, 1, 1)
    return (x - m) / s
