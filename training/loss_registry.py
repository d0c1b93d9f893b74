"""Every training loss by config name: one name -> factory map.

:data:`LOSS_FACTORIES` maps each ``losses.<name>`` section of the training config to the
factory of its ``nn.Module``, in the order the trainer builds them (the order is part of
the seeded run: each module's initial weights come from the torch RNG in turn). A
factory takes the section's parameters — the config's :data:`training.config.DEFAULTS`
overlaid by the given section, so no default lives here — and a :class:`LossContext`.
:func:`build_losses` makes the enabled ones (weight > 0) with their weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from training.config import DEFAULTS
from training.losses import (
    ObjectDistillLoss,
    OffsetLoss,
    OneWayContrastiveLoss,
    PartialLabelLoss,
    TeacherDistillLoss,
    TextCELoss,
    VoxelDistillLoss,
)
from training.otoc.relation import RelationLoss
from training.ws3dpp import BoundaryLoss, RegionContrastLoss, RegionEnergyLoss, TextAlignLoss


@dataclass
class LossContext:
    """What a loss factory may need beyond its config section."""

    feature_channels: int  # the network's per-point feature width (fusion.channels)
    embed_dim: int  # the CLIP embedding width (the teacher features, the text words)
    num_classes: int = 0  # the training vocabulary's size
    built: dict[str, nn.Module] = field(default_factory=dict)  # the losses made so far


LossFactory = Callable[[Mapping[str, Any], LossContext], nn.Module]


def _teacher_distill(p: Mapping[str, Any], ctx: LossContext) -> nn.Module:
    teacher = str(p["teacher"])
    if teacher != "clip":
        raise ValueError(
            f"losses.teacher_distill.teacher {teacher!r}: the cache holds the 'clip' "
            "teacher; add another 2D teacher in training.cache.TEACHERS first"
        )
    return TeacherDistillLoss(ctx.feature_channels, ctx.embed_dim, hidden=int(p["hidden"]))


def relation_loss(p: Mapping[str, Any], ctx: LossContext) -> RelationLoss:
    """One Thing One Click's relation network (also rebuilt to load a trained one)."""
    return RelationLoss(
        ctx.feature_channels,
        ctx.num_classes,
        hidden=int(p["hidden"]),
        dim=int(p["dim"]),
        momentum=float(p["momentum"]),
        temperature=float(p["temperature"]),
        detach_backbone=bool(p["detach_backbone"]),
    )


LOSS_FACTORIES: dict[str, LossFactory] = {
    "voxel_distill": lambda p, ctx: VoxelDistillLoss(),
    "object_distill": lambda p, ctx: ObjectDistillLoss(min_points=int(p["min_points"])),
    "text_ce": lambda p, ctx: TextCELoss(class_balance=float(p["class_balance"])),
    "contrastive": lambda p, ctx: OneWayContrastiveLoss(
        temperature=float(p["temperature"]), feature=str(p["feature"])
    ),
    "teacher_distill": _teacher_distill,
    "offsets": lambda p, ctx: OffsetLoss(),
    "partial_label": lambda p, ctx: PartialLabelLoss(),
    # WS3D++ (training.ws3dpp); region_energy uses the boundary network when it is on.
    "boundary": lambda p, ctx: BoundaryLoss(
        ctx.feature_channels,
        hidden=int(p["hidden"]),
        cell=float(p["cell"]),
        class_aware=bool(p["class_aware"]),
    ),
    "region_energy": lambda p, ctx: RegionEnergyLoss(
        ctx.built.get("boundary"), cell=float(p["cell"])
    ),
    "region_contrast": lambda p, ctx: RegionContrastLoss(
        ctx.feature_channels, ctx.embed_dim, temperature=float(p["temperature"])
    ),
    "text_align": lambda p, ctx: TextAlignLoss(
        temperature=float(p["temperature"]),
        scene_weight=float(p["scene_weight"]),
        region_weight=float(p["region_weight"]),
    ),
    "relation": relation_loss,
}


def loss_params(section: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``losses.<name>`` of ``section`` over the config defaults of that loss."""
    return {**DEFAULTS["losses"][name], **dict(section.get(name) or {})}


def build_losses(
    section: Mapping[str, Any],
    *,
    feature_channels: int,
    embed_dim: int,
    num_classes: int = 0,
    names: Iterable[str] | None = None,
) -> tuple[nn.ModuleDict, dict[str, float]]:
    """The enabled losses (weight > 0) of the config's ``losses`` and their weights, in
    :data:`LOSS_FACTORIES` order (``names``: only those)."""
    wanted = set(LOSS_FACTORIES if names is None else names)
    ctx = LossContext(feature_channels, embed_dim, num_classes)
    mods = nn.ModuleDict()
    weights: dict[str, float] = {}
    for name, factory in LOSS_FACTORIES.items():
        if name not in wanted:
            continue
        params = loss_params(section, name)
        weight = float(params.pop("weight"))
        if weight <= 0:
            continue
        mods[name] = ctx.built[name] = factory(params, ctx)
        weights[name] = weight
    return mods, weights
