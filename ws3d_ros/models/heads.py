"""Fusion of LiDAR and lifted CLIP features, and the open-vocabulary panoptic head.

Paper: "3D Open-Vocabulary Panoptic Segmentation with 2D-3D Vision-Language
Distillation" (Xiao et al., 2401.02402): LiDAR features and frozen CLIP features lifted to
the points are fused, the head predicts an embedding in CLIP's text space, and a point's
class is the text embedding with the highest cosine similarity.

Contract:
- :class:`PanopticHead` maps per-point LiDAR features ``(N, F)`` to the 3D-only embedding
  (``embed_3d``, unnormalised), and, given lifted CLIP features for the points a camera
  sees, to the fused embedding: ``fused = normalize(embed_3d + seen * fusion(f, clip))``.
  A point no camera sees therefore gets exactly the 3D-only embedding, so LiDAR-only
  mode is the same network with no image rows (no second model, no retraining).
- Fusion types: ``concat_mlp`` (MLP over ``[f, clip]``) and ``gated`` (a sigmoid gate
  from ``[f, clip]`` scales a projection of ``clip``).
- :func:`classify` turns L2-normalised embeddings and text embeddings into logits
  ``cos / temperature``; softmax max is the score.
- Offsets: ``(N, 3)`` vector from each point to its instance centre (things only).
Everything is gather/matmul: it exports to ONNX and TensorRT with dynamic N.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp(channels: list[int], *, last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(itertools.pairwise(channels)):
        layers.append(nn.Linear(a, b))
        if k < len(channels) - 2 or last_act:
            layers.append(nn.LayerNorm(b))
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def l2norm(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-6)


class PanopticHead(nn.Module):
    """Per-point embedding in CLIP text space (+ CLIP fusion) and instance offsets."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        *,
        fusion_type: str = "concat_mlp",
        fusion_channels: int = 128,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        predict_offsets: bool = True,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.fusion_type = fusion_type
        self.embed_3d = mlp([in_channels, fusion_channels, embed_dim])
        if fusion_type == "concat_mlp":
            self.fuse = mlp([in_channels + embed_dim, fusion_channels, embed_dim])
        elif fusion_type == "gated":
            self.gate = nn.Linear(in_channels + embed_dim, embed_dim)
            self.clip_proj = nn.Linear(embed_dim, embed_dim)
        else:
            raise ValueError(f"unknown fusion type {fusion_type!r}")
        log_t = torch.tensor(math.log(temperature), dtype=torch.float32)
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.offsets = mlp([in_channels, fusion_channels, 3]) if predict_offsets else None

    def forward(
        self, feats: torch.Tensor, clip: torch.Tensor, seen: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``feats (N,F)``, ``clip (N,D)`` (zeros where unseen), ``seen (N,1)`` float.

        Returns ``(fused (N,D) normalised, embed_3d (N,D) normalised, offsets (N,3))``.
        """
        e3d = self.embed_3d(feats)
        x = torch.cat([feats, clip], dim=1)
        if self.fusion_type == "concat_mlp":
            delta = self.fuse(x)
        else:
            delta = torch.sigmoid(self.gate(x)) * self.clip_proj(clip)
        fused = l2norm(e3d + seen * delta)
        offsets = (
            self.offsets(feats) if self.offsets is not None else torch.zeros_like(feats[:, :3])
        )
        return fused, l2norm(e3d), offsets

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()


def classify(
    embeddings: torch.Tensor, text: torch.Tensor, temperature: torch.Tensor | float
) -> torch.Tensor:
    """Logits ``(N, C)`` = cosine(embedding, text) / temperature (inputs L2-normalised)."""
    return embeddings @ text.t() / temperature


def scores_and_index(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax max probability and argmax column per point."""
    prob = F.softmax(logits, dim=1)
    score, index = prob.max(dim=1)
    return score, index
