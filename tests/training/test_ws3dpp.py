"""WS3D++ losses: boundary targets, gradient paths, energy ordering, contrast, text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.loss_registry import build_losses
from training.losses import LossInputs
from training.ws3dpp import (
    WS3DPP_LOSSES,
    BoundaryLoss,
    RegionContrastLoss,
    RegionEnergyLoss,
    TextAlignLoss,
    boundary_targets,
    region_adjacency,
    region_energy,
)


def two_slabs(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on x in [0, 4): region 0 for x < 2, region 1 for x >= 2 (dense, 0.1 m)."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g) * torch.tensor([4.0, 1.0, 0.2])
    seg = (xyz[:, 0] >= 2.0).long()
    return xyz, seg


def inputs(xyz, seg, labels, c: int = 3, d: int = 8, seen=None) -> LossInputs:
    n = len(xyz)
    return LossInputs(
        xyz=xyz, point_to_voxel=torch.arange(n), teacher=torch.zeros(n, d),
        seen=torch.zeros(n, dtype=torch.bool) if seen is None else seen, labels=labels,
        segments=seg, instances=torch.full((n,), -1), text=torch.eye(c, d),
    )  # fmt: skip


def test_boundary_targets_and_adjacency() -> None:
    xyz, seg = two_slabs()
    pairs, border = region_adjacency(xyz, seg, cell=0.3)
    assert pairs.tolist() == [[0, 1]] and border.any()
    t = boundary_targets(xyz, seg, cell=0.3)
    near = (xyz[:, 0] - 2.0).abs()
    assert t[near < 0.2].min() == 1.0 and t[near > 0.7].max() == 0.0
    # Same known class on both sides: an over-segmentation border, not a boundary.
    t_same = boundary_targets(xyz, seg, region_labels=torch.tensor([1, 1]), cell=0.3)
    assert t_same.sum() == 0
    t_diff = boundary_targets(xyz, seg, region_labels=torch.tensor([0, 2]), cell=0.3)
    assert torch.equal(t_diff, t)


def test_boundary_loss_trains_head_and_reaches_backbone() -> None:
    xyz, seg = two_slabs()
    feats = torch.cat([xyz, (xyz[:, :1] - 2.0).abs()], 1).requires_grad_()
    mod = BoundaryLoss(4, hidden=16, cell=0.3, class_aware=False)
    x = inputs(xyz, seg, torch.full((len(xyz),), -1))
    opt = torch.optim.Adam(mod.parameters(), lr=0.05)
    first = float(mod({"features": feats, "fused": feats}, x).detach())
    for _ in range(80):
        loss = mod({"features": feats, "fused": feats}, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * first
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    prob = mod.predict(feats.detach())
    near = (xyz[:, 0] - 2.0).abs()
    assert prob[near < 0.1].mean() > prob[near > 0.8].mean() + 0.3


def test_energy_is_lower_for_label_maps_consistent_with_regions() -> None:
    xyz, seg = two_slabs()
    pairs = torch.tensor([[0, 1]])

    def energy(point_class: torch.Tensor, b: float) -> float:
        probs = F.one_hot(point_class, 3).float() * 0.9 + 0.1 / 3
        return float(region_energy(probs, seg, 2, pairs, torch.tensor([b])))

    consistent = seg.clone()  # one class per region, a change at the boundary
    split = (xyz[:, 0] >= 1.0).long()  # a change inside region 0
    merged = torch.zeros_like(seg)  # no change across a predicted boundary
    assert energy(consistent, 1.0) < energy(split, 1.0)
    assert energy(consistent, 1.0) < energy(merged, 1.0)
    # Without a predicted boundary, merging the regions is the low-energy map.
    assert energy(merged, 0.0) < energy(consistent, 0.0)


def test_region_energy_loss_gradient_flows_into_the_embeddings() -> None:
    xyz, seg = two_slabs()
    emb = F.normalize(torch.randn(len(xyz), 8), dim=1).requires_grad_()
    out = {"fused": emb, "features": emb, "temperature": torch.tensor(0.1)}
    x = inputs(xyz, seg, torch.full((len(xyz),), -1))
    bound = BoundaryLoss(8)
    loss = RegionEnergyLoss(bound, cell=0.3)(out, x)
    loss.backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    # The boundary head is only read (detached): no gradient into it from the energy.
    assert all(p.grad is None for p in bound.parameters())


def test_region_contrast_groups_same_class_regions() -> None:
    torch.manual_seed(0)
    n = 300
    xyz = torch.rand(n, 3) * 6
    seg = torch.arange(n) // 50  # 6 regions
    labels = torch.full((n,), -1)
    labels[torch.arange(6) * 50] = torch.tensor([0, 0, 1, 1, 2, 2])
    base = torch.randn(n, 16, requires_grad=True)
    mod = RegionContrastLoss(16, 8, temperature=0.2)
    opt = torch.optim.Adam([base, *mod.parameters()], lr=0.05)
    for _ in range(60):
        out = {"fused": F.normalize(base[:, :8], dim=1),
               "embed_3d": F.normalize(base[:, 8:], dim=1), "features": base}  # fmt: skip
        loss = mod(out, inputs(xyz, seg, labels, d=8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        from training.ws3dpp import _pool

        r = F.normalize(_pool(F.normalize(base[:, :8], dim=1), seg, 6), dim=1)
        sim = r @ r.t()
    assert sim[0, 1] > sim[0, 2] and sim[2, 3] > sim[2, 4] and sim[4, 5] > sim[4, 0]


def test_text_align_scene_and_region_terms() -> None:
    xyz, seg = two_slabs()
    n = len(xyz)
    labels = torch.full((n,), -1)
    labels[0 if seg[0] == 0 else 1] = 0
    labels[(seg == 1).nonzero()[0]] = 2
    emb = torch.randn(n, 8, requires_grad=True)
    mod = TextAlignLoss(temperature=0.1)
    opt = torch.optim.Adam([emb], lr=0.05)
    x = inputs(xyz, seg, labels)
    for _ in range(50):
        loss = mod({"embed_3d": F.normalize(emb, dim=1), "fused": emb}, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        from training.ws3dpp import _pool

        r = F.normalize(_pool(emb, seg, 2), dim=1) @ torch.eye(3, 8).t()
    assert r[0].argmax() == 0 and r[1].argmax() == 2
    # Without labels, words come from the camera teacher's region features.
    teacher = torch.zeros(n, 8)
    teacher[:, 1] = 1.0
    x2 = inputs(xyz, seg, torch.full((n,), -1), seen=torch.ones(n, dtype=torch.bool))
    x2.teacher = teacher
    e = torch.randn(n, 8, requires_grad=True)
    mod({"embed_3d": e, "fused": e}, x2).backward()
    assert e.grad is not None and e.grad.abs().sum() > 0


def test_build_switches_by_weight() -> None:
    mods, w = build_losses(
        {"boundary": {"weight": 0.5}, "region_energy": {"weight": 1.0},
         "region_contrast": {"weight": 0.0}, "text_align": {"weight": 0.2}},
        feature_channels=16, embed_dim=8, names=WS3DPP_LOSSES,
    )  # fmt: skip
    assert set(w) == {"boundary", "region_energy", "text_align"}
    assert mods["region_energy"].boundary is mods["boundary"]
    mods2, w2 = build_losses({}, feature_channels=16, embed_dim=8, names=WS3DPP_LOSSES)
    assert not w2 and len(mods2) == 0


@pytest.mark.parametrize("n", [0, 1])
def test_degenerate_inputs_give_connected_zero(n: int) -> None:
    xyz = torch.zeros(n, 3)
    seg = torch.full((n,), -1)
    emb = torch.zeros(n, 8, requires_grad=True)
    out = {"fused": emb, "embed_3d": emb, "features": emb, "temperature": torch.tensor(0.1)}
    x = inputs(xyz, seg, torch.full((n,), -1))
    for mod in (BoundaryLoss(8), RegionEnergyLoss(), RegionContrastLoss(8, 8), TextAlignLoss()):
        v = mod(out, x)
        assert float(v.detach()) == 0.0 and v.requires_grad
    assert np.isfinite(float(v.detach()))
