"""WS3D++ region-aware losses: boundary head, region energy, region contrast, text alignment.

Paper: K. Liu et al., "Weakly Supervised 3D Scene Segmentation with Region-Level Boundary
Awareness and Instance Discrimination" (WS3D, ECCV 2022) and its extension WS3D++
("WS3D++: Towards data-efficient 3D scene understanding with region-level boundary
awareness, instance discrimination and vision-language pre-training", arXiv 2023):
unsupervised over-segmentation gives regions and region boundaries; a boundary head is
trained on them; an energy-based loss keeps predictions consistent inside regions and
separated across predicted boundaries (confidence weighted); region-level contrastive
learning works across decoder stages; 3D features are aligned with text embeddings of
class words at scene and region level (word-to-3D matching) as pre-training.

Every loss has the trainer's interface ``forward(out, x)`` (``out`` from
:meth:`PanopticNet.embed`, ``x`` a :class:`training.losses.LossInputs`) and returns a
scalar connected to the graph. Regions are ``x.segments`` (the cached supervoxels of
:func:`ws3d_ros.geometry.supervoxels.supervoxels` in weak-label training; ``-1`` = none);
region labels are the majority of the labelled points (weak or pseudo) of the region.

Contract:
- :func:`region_adjacency` / :func:`boundary_targets` (torch, no gradient): points within
  one ``cell`` (a voxel and its 26 neighbours) of a point of another region are boundary
  points; with ``region_labels`` a border between two regions of the *same known* class
  is not a boundary (over-segmentation boundaries that are also class changes).
- :class:`BoundaryLoss`: per-point boundary logit from ``features`` (an MLP head), class-
  balanced binary cross-entropy against :func:`boundary_targets`. Gradient reaches the
  backbone.
- :class:`RegionEnergyLoss`: with ``p`` the point class probabilities (``classify`` of
  ``fused``), ``pbar_s`` the region means and ``b_st`` the mean predicted boundary
  probability of the border points of adjacent regions ``s, t``:
  ``E = mean_s c_s mean_(i in s) |p_i - pbar_s|^2
  + mean_(st) c_s c_t [b_st <pbar_s, pbar_t> + (1 - b_st) |pbar_s - pbar_t|^2 / 2]``,
  ``c`` the detached region confidence (max of ``pbar``). Lower for label maps that are
  constant inside regions and change across boundaries.
- :class:`RegionContrastLoss`: region embeddings pooled from several feature levels
  (``levels``: decoder-stage features where the network exposes them, here ``fused``,
  ``embed_3d`` and a projection of ``features``); supervised InfoNCE between levels:
  for an anchor region at one level, positives are the same region and the regions of
  the same (weak / pseudo) class at the other level.
- :class:`TextAlignLoss`: scene level: multi-label BCE of ``max_s cos(region_s, word_c)
  / T`` for class words present in the scene (labels, else the words the camera
  teacher's region features match best) vs absent ones; region level: InfoNCE of each
  labelled region's embedding against the class words (word-to-3D matching).
- :func:`training.loss_registry.build_losses` makes the enabled ones from the config's
  ``losses`` section (``boundary``, ``region_energy``, ``region_contrast``, ``text_align``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ws3d_ros.geometry.supervoxels import neighbour_table
from ws3d_ros.geometry.voxel import voxelize
from ws3d_ros.models.heads import classify, mlp

WS3DPP_LOSSES = ("boundary", "region_energy", "region_contrast", "text_align")


def _zero(out: Mapping[str, Any]) -> torch.Tensor:
    return out["fused"].sum() * 0.0


def _regions(segments: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Dense region ids ``0..R-1`` (``-1`` kept) and ``R``."""
    valid = segments >= 0
    out = torch.full_like(segments, -1)
    if not bool(valid.any()):
        return out, 0
    uniq, inv = torch.unique(segments[valid], return_inverse=True)
    out[valid] = inv
    return out, len(uniq)


def region_labels_of(labels: torch.Tensor, regions: torch.Tensor, num: int, classes: int):
    """Majority (weak / pseudo) label per region, ``-1`` when none is labelled."""
    ok = (labels >= 0) & (labels < classes) & (regions >= 0)
    votes = torch.zeros((num, classes), device=labels.device)
    votes.index_put_((regions[ok], labels[ok]), torch.ones(int(ok.sum()), device=labels.device),
                     accumulate=True)  # fmt: skip
    out = votes.argmax(1)
    out[votes.sum(1) == 0] = -1
    return out


def _pool(values: torch.Tensor, groups: torch.Tensor, num: int) -> torch.Tensor:
    ok = groups >= 0
    total = values.new_zeros((num, values.shape[1])).index_add(0, groups[ok], values[ok])
    count = values.new_zeros(num).index_add(0, groups[ok], values.new_ones(int(ok.sum())))
    return total / count.clamp_min(1.0).unsqueeze(1)


@torch.no_grad()
def _cell_neighbours(xyz: torch.Tensor, cell: float) -> tuple[np.ndarray, np.ndarray]:
    vox = voxelize(xyz.detach().cpu().numpy().astype(np.float64), cell)
    return vox.point_to_voxel.astype(np.int64), neighbour_table(vox.coords)


@torch.no_grad()
def region_adjacency(
    xyz: torch.Tensor, regions: torch.Tensor, *, cell: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pairs (E, 2) s < t, border (N,) bool)``: adjacent regions and the points that
    have a point of another region within one ``cell`` (see the module docstring)."""
    p2v, nbr = _cell_neighbours(xyz, cell)
    reg = regions.detach().cpu().numpy()
    ok = (p2v >= 0) & (reg >= 0)
    m = len(nbr)
    n = len(reg)
    if m == 0 or not ok.any():
        return torch.zeros((0, 2), dtype=torch.long, device=xyz.device), torch.zeros(
            n, dtype=torch.bool, device=xyz.device
        )
    # Regions present in each cell (as (cell, region) rows), and each cell's smallest and
    # largest region id: a cell rarely holds more than two regions at this scale.
    cr = np.unique(np.stack([p2v[ok], reg[ok]], 1), axis=0)
    big = np.iinfo(np.int64).max
    cmin = np.full(m, big, np.int64)
    cmax = np.full(m, -1, np.int64)
    np.minimum.at(cmin, cr[:, 0], cr[:, 1])
    np.maximum.at(cmax, cr[:, 0], cr[:, 1])
    nb = nbr[cr[:, 0]]  # (R, 27)
    has = nb >= 0
    own = np.broadcast_to(cr[:, 1:2], nb.shape)
    lo = np.where(has, cmin[np.maximum(nb, 0)], own)
    hi = np.where(has, cmax[np.maximum(nb, 0)], own)
    cand = np.concatenate(
        [np.stack([own.ravel(), lo.ravel()], 1), np.stack([own.ravel(), hi.ravel()], 1)]
    )
    diff = cand[cand[:, 0] != cand[:, 1]]
    # A point is on a border when its cell's neighbourhood holds another region.
    rmin = np.min(lo, axis=1)
    rmax = np.max(hi, axis=1)
    other_row = (rmin != cr[:, 1]) | (rmax != cr[:, 1])
    other = np.zeros(n, bool)
    if other_row.any():
        span = int(reg.max()) + 1
        flagged = cr[other_row, 0] * span + cr[other_row, 1]
        other = ok & np.isin(p2v * span + reg, flagged)
    st = np.sort(diff, axis=1)
    st = np.unique(st, axis=0) if len(st) else np.zeros((0, 2), np.int64)
    dev = xyz.device
    return torch.as_tensor(st, dtype=torch.long, device=dev), torch.as_tensor(other, device=dev)


@torch.no_grad()
def boundary_targets(
    xyz: torch.Tensor,
    segments: torch.Tensor,
    *,
    region_labels: torch.Tensor | None = None,
    cell: float = 0.3,
) -> torch.Tensor:
    """``(N,)`` float 0/1 boundary targets (see the module docstring)."""
    regions, num = _regions(segments)
    if num == 0:
        return torch.zeros(len(segments), device=xyz.device)
    ident = regions
    if region_labels is not None:
        # Regions of one known class merge; unknown regions stay apart.
        big = int(region_labels.max().item()) + 1 if len(region_labels) else 0
        code = torch.where(
            region_labels >= 0, region_labels, big + torch.arange(num, device=xyz.device)
        )
        ident = torch.where(regions >= 0, code[regions.clamp_min(0)], regions)
    _, border = region_adjacency(xyz, ident, cell=cell)
    return border.float()


class BoundaryLoss(nn.Module):
    """WS3D++ boundary head + class-balanced BCE on over-segmentation boundaries."""

    def __init__(self, in_channels: int, hidden: int = 32, cell: float = 0.3,
                 class_aware: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.head = mlp([in_channels, hidden, 1])
        self.cell = float(cell)
        self.class_aware = bool(class_aware)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """``(N,)`` boundary probability."""
        return torch.sigmoid(self.head(features).squeeze(1))

    def forward(self, out: Mapping[str, Any], x: Any) -> torch.Tensor:
        logit = self.head(out["features"]).squeeze(1)
        regions, num = _regions(x.segments)
        if num < 2:
            return logit.sum() * 0.0
        rl = region_labels_of(x.labels, regions, num, x.text.shape[0]) if self.class_aware else None
        target = boundary_targets(x.xyz, x.segments, region_labels=rl, cell=self.cell)
        valid = regions >= 0
        pos = float(target[valid].sum())
        neg = float(valid.sum()) - pos
        if pos == 0 or neg == 0:
            return F.binary_cross_entropy_with_logits(logit[valid], target[valid])
        weight = torch.where(target > 0, neg / (pos + neg), pos / (pos + neg))[valid] * 2.0
        return F.binary_cross_entropy_with_logits(logit[valid], target[valid], weight=weight)


def region_energy(
    probs: torch.Tensor,
    regions: torch.Tensor,
    num: int,
    pairs: torch.Tensor,
    boundary: torch.Tensor,
) -> torch.Tensor:
    """The WS3D++ region energy of ``probs (N, C)`` (see the module docstring).

    ``boundary (E,)``: boundary probability of each adjacent region pair in ``pairs``.
    """
    valid = regions >= 0
    pbar = _pool(probs, regions, num)
    conf = pbar.max(1).values.detach()
    inside = ((probs[valid] - pbar[regions[valid]]) ** 2).sum(1)
    e_in = (conf[regions[valid]] * inside).mean() if bool(valid.any()) else probs.sum() * 0.0
    if pairs.numel() == 0:
        return e_in
    s, t = pairs[:, 0], pairs[:, 1]
    w = conf[s] * conf[t]
    sep = (pbar[s] * pbar[t]).sum(1)
    same = ((pbar[s] - pbar[t]) ** 2).sum(1) / 2.0
    e_x = (w * (boundary * sep + (1.0 - boundary) * same)).mean()
    return e_in + e_x


class RegionEnergyLoss(nn.Module):
    """WS3D++ region-level boundary-aware energy loss (see the module docstring).

    ``boundary``: the :class:`BoundaryLoss` whose head predicts boundaries (detached);
    without one, the over-segmentation border targets are used.
    """

    def __init__(self, boundary: BoundaryLoss | None = None, cell: float = 0.3) -> None:
        super().__init__()
        self.boundary = boundary
        self.cell = float(cell)

    def forward(self, out: Mapping[str, Any], x: Any) -> torch.Tensor:
        regions, num = _regions(x.segments)
        if num < 1:
            return _zero(out)
        probs = torch.softmax(classify(out["fused"], x.text, out["temperature"]), dim=1)
        pairs, border = region_adjacency(x.xyz, regions, cell=self.cell)
        with torch.no_grad():
            if self.boundary is not None:
                bprob = self.boundary.predict(out["features"].detach())
            else:
                bprob = border.float()
            # Border points of s near t carry the pair's boundary probability.
            b_region = _pool((bprob * border.float()).unsqueeze(1), regions, num).squeeze(1)
            n_border = _pool(border.float().unsqueeze(1), regions, num).squeeze(1)
            b_region = b_region / n_border.clamp_min(1e-6)
            b_pair = (
                0.5 * (b_region[pairs[:, 0]] + b_region[pairs[:, 1]])
                if pairs.numel()
                else bprob.new_zeros(0)
            )
        return region_energy(probs, regions, num, pairs, b_pair)


class RegionContrastLoss(nn.Module):
    """WS3D++ region-level contrastive learning across feature levels (module docstring)."""

    def __init__(self, feature_channels: int, embed_dim: int, temperature: float = 0.1,
                 levels: tuple[str, ...] = ("fused", "embed_3d", "features")) -> None:  # fmt: skip
        super().__init__()
        self.temperature = float(temperature)
        self.levels = tuple(levels)
        self.proj = mlp([feature_channels, embed_dim, embed_dim]) if "features" in levels else None

    def level_embeddings(self, out: Mapping[str, Any], regions: torch.Tensor, num: int):
        embs = []
        for name in self.levels:
            v = out[name]
            if name == "features" and self.proj is not None:
                v = self.proj(v)
            embs.append(F.normalize(_pool(v, regions, num), dim=1, eps=1e-6))
        return embs

    def forward(self, out: Mapping[str, Any], x: Any) -> torch.Tensor:
        regions, num = _regions(x.segments)
        extra = sum(p.sum() * 0.0 for p in self.parameters())
        if num < 2 or len(self.levels) < 2:
            return _zero(out) + extra
        lab = region_labels_of(x.labels, regions, num, x.text.shape[0])
        embs = self.level_embeddings(out, regions, num)
        eye = torch.eye(num, dtype=torch.bool, device=lab.device)
        same = (lab.unsqueeze(0) == lab.unsqueeze(1)) & (lab.unsqueeze(0) >= 0)
        pos = eye | same
        total = []
        for a in range(len(embs)):
            for b in range(len(embs)):
                if a == b:
                    continue
                logits = embs[a] @ embs[b].t() / self.temperature
                logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
                total.append(-(logp * pos).sum(1) / pos.sum(1))
        return torch.stack(total).mean() + extra


class TextAlignLoss(nn.Module):
    """WS3D++ scene- and region-level 3D-text alignment (word-to-3D matching)."""

    def __init__(self, temperature: float = 0.07, scene_weight: float = 1.0,
                 region_weight: float = 1.0, feature: str = "embed_3d") -> None:  # fmt: skip
        super().__init__()
        self.temperature = float(temperature)
        self.scene_weight = float(scene_weight)
        self.region_weight = float(region_weight)
        self.feature = feature

    def forward(self, out: Mapping[str, Any], x: Any) -> torch.Tensor:
        regions, num = _regions(x.segments)
        if num == 0:
            return _zero(out)
        text = x.text
        c = text.shape[0]
        reg = F.normalize(_pool(out[self.feature], regions, num), dim=1, eps=1e-6)
        lab = region_labels_of(x.labels, regions, num, c)
        with torch.no_grad():
            words = torch.zeros(c, dtype=torch.bool, device=text.device)
            words[lab[lab >= 0]] = True
            if not bool(words.any()) and bool(x.seen.any()):
                # No labels: the words the camera teacher's region features match best.
                seen = x.seen & (regions >= 0)
                t_reg = _pool(x.teacher[seen], regions[seen], num)
                has = _pool(torch.ones_like(x.teacher[seen][:, :1]), regions[seen], num)
                has = has.squeeze(1) > 0
                if bool(has.any()):
                    words[(F.normalize(t_reg[has], dim=1) @ text.t()).argmax(1)] = True
                    lab = torch.where(has, (F.normalize(t_reg, dim=1) @ text.t()).argmax(1), lab)
        sim = reg @ text.t() / self.temperature  # (R, C)
        loss = _zero(out)
        if bool(words.any()):
            scene = sim.max(0).values  # word-to-3D matching: best region per word
            loss = loss + self.scene_weight * F.binary_cross_entropy_with_logits(
                scene, words.float()
            )
        ok = lab >= 0
        if bool(ok.any()):
            loss = loss + self.region_weight * F.cross_entropy(sim[ok], lab[ok])
        return loss
