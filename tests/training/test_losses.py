"""Losses: values, switches, and the one-way gradient of the IGNet contrastive loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.loss_registry import build_losses
from training.losses import (
    LossInputs,
    ObjectDistillLoss,
    OffsetLoss,
    OneWayContrastiveLoss,
    PartialLabelLoss,
    TeacherDistillLoss,
    TextCELoss,
    VoxelDistillLoss,
)
from ws3d_ros.models.heads import classify


def _inputs(n: int = 60, d: int = 8, c: int = 4, seed: int = 0) -> tuple[dict, LossInputs]:
    g = torch.Generator().manual_seed(seed)
    teacher = F.normalize(torch.randn(n, d, generator=g), dim=1)
    seen = torch.arange(n) < n // 2
    teacher[~seen] = 0
    labels = torch.arange(n) % c
    out = {
        "fused": F.normalize(torch.randn(n, d, generator=g), dim=1).requires_grad_(),
        "embed_3d": F.normalize(torch.randn(n, d, generator=g), dim=1).requires_grad_(),
        "offsets": torch.randn(n, 3, generator=g).requires_grad_(),
        "features": torch.randn(n, 16, generator=g).requires_grad_(),
        "temperature": torch.tensor(0.07),
    }
    x = LossInputs(
        xyz=torch.randn(n, 3, generator=g),
        point_to_voxel=torch.arange(n) // 3,
        teacher=teacher,
        seen=seen,
        labels=labels,
        segments=torch.arange(n) // 10,
        instances=torch.where(labels == 1, torch.arange(n) // 20, -1),
        text=F.normalize(torch.randn(c, d, generator=g), dim=1),
    )
    return out, x


def test_contrastive_gradient_only_reaches_out_of_fov_points() -> None:
    _, x = _inputs()
    feats = torch.randn(60, 8, requires_grad=True)
    loss = OneWayContrastiveLoss(temperature=0.1).loss(feats, x.labels, x.seen)
    assert loss.item() > 0
    loss.backward()
    grad = feats.grad.norm(dim=1)
    assert (grad[~x.seen] > 0).all()  # out-of-FOV points are pulled
    assert (grad[x.seen] == 0).all()  # in-FOV anchors (prototypes) get nothing


def test_contrastive_pulls_toward_prototypes() -> None:
    _, x = _inputs()
    feats = torch.randn(60, 8, requires_grad=True)
    mod = OneWayContrastiveLoss(temperature=0.1)
    opt = torch.optim.SGD([feats], lr=0.5)
    first = mod.loss(feats, x.labels, x.seen).item()
    for _ in range(20):
        opt.zero_grad()
        mod.loss(feats, x.labels, x.seen).backward()
        opt.step()
    assert mod.loss(feats, x.labels, x.seen).item() < first


def test_distillation_is_zero_when_student_equals_teacher() -> None:
    out, x = _inputs()
    out["embed_3d"] = x.teacher.clone().requires_grad_()
    assert VoxelDistillLoss()(out, x).item() < 1e-5
    assert abs(ObjectDistillLoss(min_points=1)(out, x).item()) < 1e-5
    out2, x2 = _inputs()
    loss = VoxelDistillLoss()(out2, x2)
    loss.backward()
    # Only camera-seen points are distilled.
    assert (out2["embed_3d"].grad[~x2.seen] == 0).all()
    assert out2["embed_3d"].grad[x2.seen].abs().sum() > 0


def test_losses_without_targets_are_connected_zeros() -> None:
    out, x = _inputs()
    x.seen = torch.zeros_like(x.seen)
    x.labels = torch.full_like(x.labels, -1)
    x.instances = torch.full_like(x.instances, -1)
    for mod in (
        VoxelDistillLoss(),
        ObjectDistillLoss(),
        TextCELoss(),
        OneWayContrastiveLoss(),
        TeacherDistillLoss(16, 8, hidden=8),
        OffsetLoss(),
        PartialLabelLoss(),
    ):
        value = mod(out, x)
        assert value.item() == 0.0 and value.requires_grad


def test_supervised_losses_decrease() -> None:
    out, x = _inputs()
    ce = TextCELoss()(out, x)
    assert ce.item() > 0
    # Perfect embeddings (the text rows) give a small CE.
    out["fused"] = x.text[x.labels].clone()
    assert TextCELoss()(out, x).item() < ce.item()
    # Offsets to the exact centroid give zero offset loss.
    ok = x.instances >= 0
    target = torch.zeros(60, 3)
    for i in x.instances[ok].unique():
        m = x.instances == i
        target[m] = x.xyz[m].mean(0) - x.xyz[m]
    out["offsets"] = target
    assert OffsetLoss()(out, x).item() < 1e-5


def test_build_losses_follows_weights() -> None:
    cfg = TrainConfig.from_dict(
        {"losses": {"voxel_distill": {"weight": 0}, "contrastive": {"weight": 0.3}}}
    )
    mods, weights = build_losses(cfg.losses, feature_channels=16, embed_dim=8)
    assert "voxel_distill" not in mods and weights["contrastive"] == 0.3
    assert set(mods) == set(weights)
    for mod in mods.values():
        assert mod.__class__.__doc__


def test_text_ce_class_balance_is_inverse_frequency() -> None:
    """OTOC's class-balanced CE: weights (1/freq)^p, mean 1 over present classes; with
    one label of class 0 and nine of class 1 the rare class weighs 9x (p = 1)."""
    out, x = _inputs(n=10, c=2)
    x.labels = torch.tensor([0] + [1] * 9)
    plain = TextCELoss()(out, x)
    bal = TextCELoss(class_balance=1.0)
    bal.set_class_counts([1.0, 9.0, 0.0][:2])
    w = bal.class_weights
    assert torch.allclose(w[0] / w[1], torch.tensor(9.0)) and torch.isclose(
        w.mean(), torch.tensor(1.0)
    )
    logits = classify(out["fused"], x.text, out["temperature"])
    expected = F.cross_entropy(logits, x.labels, weight=w)
    assert torch.isclose(bal(out, x), expected)
    assert not torch.isclose(bal(out, x), plain)
    off = TextCELoss(class_balance=0.0)
    off.set_class_counts([1.0, 9.0])  # no-op
    assert torch.isclose(off(out, x), plain)
    # The weights are a buffer: saved and restored with the loss state (--resume).
    again = TextCELoss(class_balance=1.0)
    again.set_class_counts([5.0, 5.0])
    again.load_state_dict(bal.state_dict())
    assert torch.equal(again.class_weights, w)


def test_partial_label_loss_is_the_mass_outside_the_candidates() -> None:
    """-log of the probability mass on a point's candidate classes, over the unlabelled
    points whose candidates rule something out; labelled points, all-True rows (no
    information) and all-False rows are skipped; gradient moves the mass into the set."""
    out, x = _inputs(n=6, c=4)
    x.labels = torch.tensor([-1, -1, -1, -1, 2, -1])
    cand = torch.ones(6, 4, dtype=torch.bool)
    cand[0, 1:] = False  # only class 0
    cand[1, 3] = False  # anything but class 3
    cand[3] = False  # nothing: skipped (not an error in the data)
    cand[4, 0] = False  # labelled: CE's business
    cand[5, 2] = False
    x.candidates = cand
    loss = PartialLabelLoss()(out, x)
    p = classify(out["fused"], x.text, out["temperature"]).softmax(1)
    mass = torch.stack([p[0, 0], p[1, :3].sum(), p[5, [0, 1, 3]].sum()])
    expect = -torch.log(mass).mean()
    torch.testing.assert_close(loss, expect)
    # Without candidates (or with no informative row) it is a connected zero.
    x.candidates = None
    assert PartialLabelLoss()(out, x).item() == 0.0
    x.candidates = torch.ones(6, 4, dtype=torch.bool)
    assert PartialLabelLoss()(out, x).item() == 0.0
    # A gradient step raises the mass on the candidates.
    x.candidates = cand
    fused = out["fused"].detach().clone().requires_grad_()
    before = PartialLabelLoss()({**out, "fused": fused}, x)
    before.backward()
    with torch.no_grad():
        stepped = fused - 0.05 * fused.grad
    assert PartialLabelLoss()({**out, "fused": stepped}, x) < before


def test_every_config_loss_has_one_factory_with_config_defaults() -> None:
    """One name -> factory map over the config's losses (in build order: the base losses,
    WS3D++, relation); a section given only its weight takes every other parameter from
    the config defaults."""
    from training.config import DEFAULTS
    from training.loss_registry import LOSS_FACTORIES, loss_params

    assert set(LOSS_FACTORIES) == set(DEFAULTS["losses"])
    p = loss_params({"relation": {"weight": 0.5}}, "relation")
    assert p == {**DEFAULTS["losses"]["relation"], "weight": 0.5}
    every = {name: {"weight": 1.0} for name in LOSS_FACTORIES}
    mods, weights = build_losses(every, feature_channels=16, embed_dim=8, num_classes=3)
    assert list(mods) == list(LOSS_FACTORIES) and set(weights) == set(LOSS_FACTORIES)
    assert mods["region_energy"].boundary is mods["boundary"]
    assert mods["relation"].detach_backbone is DEFAULTS["losses"]["relation"]["detach_backbone"]
