"""OTOC's relation network and its momentum-updated category-prototype memory bank.

Paper: Liu et al., "One Thing One Click: A Self-Training Approach for Weakly Supervised
3D Semantic Segmentation", CVPR 2021, Sec. 3.3 "Relation network": a network that
embeds supervoxels (pooled features of the same 3D backbone) so that supervoxels of
one category are close, trained with a contrastive loss against per-category
prototypes kept in a memory bank that is updated by momentum; the similarity of two
supervoxel embeddings is the pairwise affinity of the label propagation.

Contract:
- :class:`RelationNet`: MLP over pooled per-supervoxel features ``(S, F)`` ->
  L2-normalised embeddings ``(S, D)``.
- :class:`PrototypeBank`: buffers ``prototypes (C, D)`` (unit rows) and ``valid (C,)``;
  :meth:`PrototypeBank.update` sets ``p_c <- normalize(m p_c + (1 - m) mean_c)`` from
  the (detached) embeddings of class ``c`` (first update: ``mean_c``). Buffers, so the
  bank is saved with the loss state and ``--resume`` continues it exactly.
- :func:`prototype_contrastive` = InfoNCE of each labelled embedding against the
  prototypes (its class positive, all others negative; classes the bank has not seen
  yet use the batch class mean, detached). Gradient flows into the embeddings only.
- :func:`affinity` = ``exp((cos(e_i, e_j) - 1) / tau)`` in ``(0, 1]`` per edge.
- :class:`RelationLoss` plugs the above into the trainer's loss interface
  (``forward(out, LossInputs)``): supervoxels are ``LossInputs.segments``, their labels
  the majority of the (weak / pseudo) point labels; the bank is updated in training mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.otoc.graph import pool_mean
from ws3d_ros.models.heads import mlp


class RelationNet(nn.Module):
    """Supervoxel embedding MLP (see the module docstring)."""

    def __init__(self, in_channels: int, hidden: int = 64, out_dim: int = 32) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_dim = int(out_dim)
        self.mlp = mlp([in_channels, hidden, out_dim])

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(pooled), dim=1, eps=1e-6)


class PrototypeBank(nn.Module):
    """Per-category prototypes with momentum updates (see the module docstring)."""

    prototypes: torch.Tensor
    valid: torch.Tensor

    def __init__(self, num_classes: int, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), found {momentum}")
        self.momentum = float(momentum)
        self.register_buffer("prototypes", torch.zeros(num_classes, dim))
        self.register_buffer("valid", torch.zeros(num_classes, dtype=torch.bool))

    @torch.no_grad()
    def update(self, emb: torch.Tensor, labels: torch.Tensor) -> None:
        ok = (labels >= 0) & (labels < len(self.prototypes))
        if not bool(ok.any()):
            return
        emb, labels = emb[ok].detach().to(self.prototypes.dtype), labels[ok]
        classes = torch.unique(labels)
        for c in classes.tolist():
            mean = F.normalize(emb[labels == c].mean(0), dim=0, eps=1e-6)
            if bool(self.valid[c]):
                mean = F.normalize(
                    self.momentum * self.prototypes[c] + (1 - self.momentum) * mean, dim=0, eps=1e-6
                )
            self.prototypes[c] = mean
            self.valid[c] = True

    def current(self, emb: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        """Prototypes with unseen classes filled from the batch class means (detached);
        returns ``(prototypes (C, D), available (C,) bool)``."""
        protos = self.prototypes.clone()
        avail = self.valid.clone()
        if emb is not None and labels is not None:
            for c in torch.unique(labels[labels >= 0]).tolist():
                if c < len(protos) and not bool(avail[c]):
                    protos[c] = F.normalize(emb[labels == c].detach().mean(0), dim=0, eps=1e-6)
                    avail[c] = True
        return protos, avail


def prototype_contrastive(
    emb: torch.Tensor,
    labels: torch.Tensor,
    protos: torch.Tensor,
    available: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """InfoNCE of labelled embeddings vs the available prototypes (see module docstring)."""
    ok = (labels >= 0) & (labels < len(protos))
    if bool(ok.any()):
        ok = ok & available[labels.clamp(0, len(protos) - 1)]
    if not bool(ok.any()) or int(available.sum()) < 2:
        return emb.sum() * 0.0
    cols = torch.nonzero(available).squeeze(1)
    lut = torch.full((len(protos),), -1, dtype=torch.long, device=emb.device)
    lut[cols] = torch.arange(len(cols), device=emb.device)
    logits = emb[ok] @ protos[cols].detach().t() / temperature
    return F.cross_entropy(logits, lut[labels[ok]])


def affinity(emb: torch.Tensor, edges: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    """``(E,)`` affinities ``exp((cos - 1) / tau)`` of the edges' embeddings."""
    if edges.numel() == 0:
        return emb.new_zeros(0)
    cos = (emb[edges[:, 0]] * emb[edges[:, 1]]).sum(1)
    return torch.exp((cos - 1.0) / tau)


class RelationLoss(nn.Module):
    """OTOC relation-network training as a trainer loss (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        hidden: int = 64,
        dim: int = 32,
        momentum: float = 0.9,
        temperature: float = 0.1,
        detach_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.net = RelationNet(in_channels, hidden, dim)
        self.bank = PrototypeBank(num_classes, dim, momentum)
        self.temperature = float(temperature)
        self.detach_backbone = bool(detach_backbone)

    def embed_segments(
        self, features: torch.Tensor, segments: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(emb (S, D), inverse (N,))`` over the distinct segment ids (``-1`` skipped)."""
        valid = segments >= 0
        uniq, inv = torch.unique(segments[valid], return_inverse=True)
        groups = torch.full_like(segments, -1)
        groups[valid] = inv
        feats = features.detach() if self.detach_backbone else features
        return self.net(pool_mean(feats, groups, len(uniq))), groups

    def forward(self, out: Mapping[str, Any], x: Any) -> torch.Tensor:
        emb, groups = self.embed_segments(out["features"], x.segments)
        num_classes = len(self.bank.prototypes)
        lab = x.labels
        ok = (lab >= 0) & (lab < num_classes) & (groups >= 0)
        votes = emb.new_zeros((len(emb), num_classes))
        votes.index_put_((groups[ok], lab[ok]), emb.new_ones(int(ok.sum())), accumulate=True)
        sv_lab = votes.argmax(1)
        sv_lab[votes.sum(1) == 0] = -1
        protos, avail = self.bank.current(emb, sv_lab)
        loss = prototype_contrastive(emb, sv_lab, protos, avail, self.temperature)
        if self.training:
            self.bank.update(emb, sv_lab)
        return loss + sum(p.sum() * 0.0 for p in self.net.parameters())
