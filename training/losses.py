"""Training losses of the 3D network; each an ``nn.Module`` switched on by config weight.

Every loss takes the network's training outputs (:meth:`PanopticNet.embed`: ``fused``,
``embed_3d`` (both (N, D) unit), ``offsets`` (N, 3), ``features`` (N, F),
``temperature``) and one :class:`LossInputs` of the same sweep, and returns a scalar.
A loss with nothing to act on (no seen point, no labelled point) returns a zero that is
still connected to the graph, so DistributedDataParallel sees every parameter used.

Losses:
- :class:`VoxelDistillLoss` - voxel-level CLIP distillation, 2401.02402 (Xiao et al.,
  "3D Open-Vocabulary Panoptic Segmentation with 2D-3D Vision-Language Distillation")
  and OpenScene (Peng et al., CVPR 2023): cosine distance between the voxel-pooled
  3D-only embedding and the voxel-pooled lifted CLIP feature, on voxels a camera sees.
- :class:`ObjectDistillLoss` - object-level distillation (2401.02402): mask-pooled 3D
  embedding vs mask-pooled CLIP feature over instance masks (ground truth) or
  unsupervised segments (supervoxels).
- :class:`TextCELoss` - (weakly) supervised cross-entropy in CLIP text space:
  ``logits = classify(fused, text_embeds, temperature)`` on labelled points only
  (2401.02402; the open-vocabulary classifier of OpenScene / LSeg). With
  ``class_balance`` p > 0 the classes are weighted by ``(1 / frequency)^p`` of the
  training labels (the trainer sets them with :meth:`TextCELoss.set_class_counts`): with
  one click per object that is the inverse click frequency of One Thing One Click (Liu
  et al., CVPR 2021), so a class with one click per sweep (road) is not drowned by one
  with a click per instance (pedestrian, car).
- :class:`OneWayContrastiveLoss` - IGNet (Unal et al., "2D Feature Distillation for
  Weakly- and Semi-Supervised 3D Semantic Segmentation", WACV 2024): one-way supervised
  contrastive loss pulling out-of-FOV point features toward class prototypes of in-FOV
  points; the prototypes are detached, so only the out-of-FOV side gets gradient.
- :class:`TeacherDistillLoss` - IGNet's 2D-teacher feature distillation on in-FOV
  points: a projection head maps the 3D point features to the teacher's space and is
  trained with a cosine loss (the teacher is the lifted CLIP feature by default).
- :class:`PartialLabelLoss` - candidate-set (partial-label) supervision of unlabelled
  points, Cour et al., "Learning from Partial Labels" (JMLR 2011) and the complementary
  labels of Kim et al., "NLNL: Negative Learning for Noisy Labels" (ICCV 2019):
  ``-log sum_{c in candidates} softmax(logits)_c`` on points without a training label
  whose candidate row rules at least one class out. OTOC writes the rows: a thing class
  is ruled out farther from every click of its class than such an object is wide
  (:func:`training.labels.thing_click_mask`), so the points the pseudo-label
  selection leaves out still learn what they are not.
- :class:`OffsetLoss` - instance offsets (PointGroup, Jiang et al., CVPR 2020): L1
  between the predicted offset and the vector to the point's instance centroid, on
  thing points with an instance id.
:func:`training.loss_registry.build_losses` makes the enabled ones from the ``losses``
section of the config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ws3d_ros.models.heads import classify, mlp


@dataclass
class LossInputs:
    """Per-sweep targets (N points)."""

    xyz: torch.Tensor  # (N, 3) float
    point_to_voxel: torch.Tensor  # (N,) int64
    teacher: torch.Tensor  # (N, D) float, zero rows where unseen
    seen: torch.Tensor  # (N,) bool: a camera with an image sees the point (in FOV)
    labels: torch.Tensor  # (N,) int64 training labels, -1 = unlabelled
    segments: torch.Tensor  # (N,) int64 object id for object distillation, -1 = none
    instances: torch.Tensor  # (N,) int64 ground-truth instance key for offsets, -1 = none
    text: torch.Tensor  # (C, D) unit text embeddings of the training classes
    #: (N, C) bool candidate classes of unlabelled points (all True: no information)
    candidates: torch.Tensor | None = None


def _zero(out: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return out["fused"].sum() * 0.0


def _pool(
    values: torch.Tensor, groups: torch.Tensor, num: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and count of ``values`` rows per group id in ``[0, num)``."""
    total = values.new_zeros((num, values.shape[1])).index_add(0, groups, values)
    count = values.new_zeros(num).index_add(0, groups, values.new_ones(len(groups)))
    return total, count


class VoxelDistillLoss(nn.Module):
    """Voxel-level CLIP distillation (2401.02402; OpenScene). See the module docstring."""

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        idx = torch.nonzero(x.seen).squeeze(1)
        if idx.numel() == 0:
            return _zero(out)
        vox = x.point_to_voxel[idx]
        uniq, groups = torch.unique(vox, return_inverse=True)
        student, _ = _pool(out["embed_3d"][idx], groups, len(uniq))
        teacher, _ = _pool(x.teacher[idx], groups, len(uniq))
        cos = F.cosine_similarity(student, teacher, dim=1, eps=1e-6)
        return (1.0 - cos).mean()


class ObjectDistillLoss(nn.Module):
    """Object-level (mask-pooled) CLIP distillation (2401.02402). See the module docstring.

    ``min_points``: a segment needs at least this many camera-seen points to be used.
    """

    def __init__(self, min_points: int = 5) -> None:
        super().__init__()
        self.min_points = int(min_points)

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        valid = x.segments >= 0
        if not bool((valid & x.seen).any()):
            return _zero(out)
        uniq, groups = torch.unique(x.segments[valid], return_inverse=True)
        num = len(uniq)
        student, _ = _pool(out["embed_3d"][valid], groups, num)
        seen_v = x.seen[valid]
        teacher, count = _pool(x.teacher[valid][seen_v], groups[seen_v], num)
        keep = count >= self.min_points
        if not bool(keep.any()):
            return _zero(out)
        cos = F.cosine_similarity(student[keep], teacher[keep], dim=1, eps=1e-6)
        return (1.0 - cos).mean()


class TextCELoss(nn.Module):
    """Cross-entropy of cosine-to-text logits on labelled points (2401.02402), optionally
    class-balanced (see the module docstring)."""

    def __init__(self, class_balance: float = 0.0) -> None:
        super().__init__()
        self.class_balance = float(class_balance)
        self.register_buffer("class_weights", torch.ones(0))

    def set_class_counts(self, counts: Sequence[float] | torch.Tensor) -> None:
        """Weights ``(total / count_k)^p`` normalised to mean 1 over the present classes
        (absent classes: 1). No-op when ``class_balance`` is 0."""
        if self.class_balance <= 0:
            return
        c = torch.as_tensor(counts, dtype=torch.float32).flatten()
        present = c > 0
        w = torch.ones_like(c)
        if bool(present.any()):
            w[present] = (c.sum() / c[present]) ** self.class_balance
            w[present] = w[present] / w[present].mean()
        self.class_weights = w.to(self.class_weights.device)

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        lab = x.labels
        ok = (lab >= 0) & (lab < x.text.shape[0])
        if not bool(ok.any()):
            return _zero(out)
        logits = classify(out["fused"][ok], x.text, out["temperature"])
        weight = None
        if self.class_weights.numel() == x.text.shape[0]:
            weight = self.class_weights.to(logits.dtype)
        return F.cross_entropy(logits, lab[ok], weight=weight)


class PartialLabelLoss(nn.Module):
    """Candidate-set loss on unlabelled points (module docstring): the probability mass
    the cosine-to-text classifier puts outside a point's candidate classes is pushed to
    zero; points with every class a candidate (or none) carry no information and are
    skipped."""

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        cand = x.candidates
        if cand is None:
            return _zero(out)
        ok = (x.labels < 0) & cand.any(1) & ~cand.all(1)
        if not bool(ok.any()):
            return _zero(out)
        logits = classify(out["fused"][ok], x.text, out["temperature"]).float()
        inside = logits.masked_fill(~cand[ok], float("-inf")).logsumexp(1)
        return (logits.logsumexp(1) - inside).mean()


class OneWayContrastiveLoss(nn.Module):
    """IGNet one-way supervised contrastive loss (out-of-FOV -> detached in-FOV prototypes).

    ``feature``: which output is contrasted (``fused`` embedding or the point
    ``features``); ``temperature``: softmax temperature over prototype similarities.
    """

    def __init__(self, temperature: float = 0.1, feature: str = "fused") -> None:
        super().__init__()
        if feature not in ("fused", "embed_3d", "features"):
            raise ValueError(f"contrastive feature must be fused|embed_3d|features, not {feature}")
        self.temperature = float(temperature)
        self.feature = feature

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        return self.loss(out[self.feature], x.labels, x.seen)

    def loss(self, feats: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        feats = F.normalize(feats, dim=1, eps=1e-6)
        labelled = labels >= 0
        anchor = labelled & seen
        query = labelled & ~seen
        if not bool(anchor.any()) or not bool(query.any()):
            return feats.sum() * 0.0
        classes, groups = torch.unique(labels[anchor], return_inverse=True)
        protos, _ = _pool(feats[anchor].detach(), groups, len(classes))
        protos = F.normalize(protos, dim=1, eps=1e-6)
        # Map each query label to its prototype row; queries of classes without one drop.
        lut = torch.full(
            (int(max(labels.max().item(), classes.max().item())) + 1,),
            -1,
            dtype=torch.long,
            device=labels.device,
        )
        lut[classes] = torch.arange(len(classes), device=labels.device)
        target = lut[labels[query]]
        ok = target >= 0
        if not bool(ok.any()):
            return feats.sum() * 0.0
        logits = feats[query][ok] @ protos.t() / self.temperature
        return F.cross_entropy(logits, target[ok])


class TeacherDistillLoss(nn.Module):
    """IGNet 2D-teacher feature distillation on in-FOV points (projection head + cosine)."""

    def __init__(self, in_channels: int, teacher_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.proj = mlp([in_channels, hidden, teacher_dim])

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        idx = torch.nonzero(x.seen).squeeze(1)
        if idx.numel() == 0:
            return _zero(out) + sum(p.sum() * 0.0 for p in self.proj.parameters())
        pred = self.proj(out["features"][idx])
        cos = F.cosine_similarity(pred, x.teacher[idx], dim=1, eps=1e-6)
        return (1.0 - cos).mean()


class OffsetLoss(nn.Module):
    """L1 offset-to-instance-centroid loss on thing points (PointGroup)."""

    def forward(self, out: Mapping[str, torch.Tensor], x: LossInputs) -> torch.Tensor:
        ok = x.instances >= 0
        if not bool(ok.any()):
            return out["offsets"].sum() * 0.0
        uniq, groups = torch.unique(x.instances[ok], return_inverse=True)
        total, count = _pool(x.xyz[ok], groups, len(uniq))
        centroid = total / count.clamp_min(1.0).unsqueeze(1)
        target = centroid[groups] - x.xyz[ok]
        return (out["offsets"][ok] - target).abs().sum(dim=1).mean()


LOSS_NAMES = (
    "voxel_distill",
    "object_distill",
    "text_ce",
    "contrastive",
    "teacher_distill",
    "offsets",
    "partial_label",
)
