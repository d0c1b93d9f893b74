"""OTOC relation network, prototype bank and graph pooling."""

from __future__ import annotations

import numpy as np
import torch

from training.losses import LossInputs
from training.otoc.graph import build_graph, points_from_sv, pool_log_probs, sv_labels_from_points
from training.otoc.relation import PrototypeBank, RelationLoss, affinity, prototype_contrastive


def test_bank_momentum_update() -> None:
    bank = PrototypeBank(3, 2, momentum=0.5)
    bank.update(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, -1]))
    assert bank.valid.tolist() == [True, False, False]
    assert torch.allclose(bank.prototypes[0], torch.tensor([1.0, 0.0]))
    bank.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    expect = torch.nn.functional.normalize(torch.tensor([0.5, 0.5]), dim=0)
    assert torch.allclose(bank.prototypes[0], expect, atol=1e-6)
    assert "prototypes" in bank.state_dict() and "valid" in bank.state_dict()


def test_contrastive_pulls_embeddings_to_their_prototype() -> None:
    protos = torch.eye(3)
    emb = torch.nn.functional.normalize(torch.tensor([[0.6, 0.8, 0.0]]), dim=1).requires_grad_()
    loss = prototype_contrastive(emb, torch.tensor([0]), protos, torch.ones(3, dtype=torch.bool))
    loss.backward()
    # Gradient descent moves the embedding toward prototype 0, away from 1.
    assert emb.grad[0, 0] < 0 and emb.grad[0, 1] > 0
    # Fewer than two prototypes: no contrast, zero loss (still in the graph).
    one = torch.tensor([True, False, False])
    z = prototype_contrastive(emb, torch.tensor([0]), protos, one)
    assert float(z.detach()) == 0.0 and z.requires_grad


def test_affinity_is_high_for_similar_and_low_for_dissimilar() -> None:
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0.99, 0.1], [-1.0, 0]]), dim=1)
    w = affinity(emb, torch.tensor([[0, 1], [0, 2]]), tau=0.2)
    assert w[0] > 0.9 and w[1] < 1e-3


def test_relation_loss_trains_and_updates_bank() -> None:
    torch.manual_seed(0)
    n = 60
    feats = torch.randn(n, 8, requires_grad=True)
    seg = torch.arange(n) // 10  # 6 segments
    labels = torch.full((n,), -1)
    labels[torch.tensor([0, 10, 20, 30, 40, 50])] = torch.tensor([0, 0, 1, 1, 2, 2])
    x = LossInputs(
        xyz=torch.zeros(n, 3), point_to_voxel=torch.arange(n), teacher=torch.zeros(n, 4),
        seen=torch.zeros(n, dtype=torch.bool), labels=labels, segments=seg,
        instances=torch.full((n,), -1), text=torch.eye(3, 4),
    )  # fmt: skip
    mod = RelationLoss(8, 3, hidden=16, dim=8, momentum=0.5)
    opt = torch.optim.Adam(mod.parameters(), lr=0.01)
    first = None
    for _ in range(60):
        loss = mod({"features": feats}, x)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert mod.bank.valid.all()
    assert float(loss.detach()) < first
    assert feats.grad is not None and feats.grad.abs().sum() > 0  # backbone gets gradient
    # detach_backbone (losses.relation.detach_backbone): the MLP still learns, the
    # features get no gradient.
    feats.grad = None
    cut = RelationLoss(8, 3, hidden=16, dim=8, momentum=0.5, detach_backbone=True)
    cut({"features": feats}, x).backward()
    assert feats.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in cut.net.parameters())


def test_graph_pooling_and_majority_labels() -> None:
    rng = np.random.default_rng(0)
    shift = np.array([5.0, 0.0, 0.0])
    xyz = np.concatenate([rng.uniform(0, 1, (200, 3)), rng.uniform(0, 1, (200, 3)) + shift])
    g = build_graph(xyz, seed_resolution=1.0)
    assert g.num >= 2 and g.point_to_sv.min() >= 0
    assert g.edges.shape[1] == 2 and np.all(g.edges[:, 0] < g.edges[:, 1])
    logits = torch.zeros(400, 2)
    logits[:, 1] = 5.0
    unary = pool_log_probs(logits, torch.as_tensor(g.point_to_sv), g.num)
    assert unary.shape == (g.num, 2) and (unary.argmax(1) == 1).all()
    pts = np.full(400, -1)
    pts[0], pts[1], pts[2] = 1, 1, 0
    sv = sv_labels_from_points(pts, g.point_to_sv, g.num, 2)
    s0 = g.point_to_sv[0]
    if g.point_to_sv[1] == s0 and g.point_to_sv[2] == s0:
        assert sv[s0] == 1
    assert (sv >= 0).sum() >= 1
    back = points_from_sv(sv, g.point_to_sv)
    assert back.shape == (400,) and back[0] == sv[s0]


def test_config_switches_the_relation_detach() -> None:
    from training.config import TrainConfig
    from training.loss_registry import build_losses

    for flag in (False, True):
        cfg = TrainConfig.from_dict(
            {"losses": {"relation": {"weight": 0.5, "detach_backbone": flag}}}
        )
        mods, weights = build_losses(
            cfg.losses, feature_channels=8, embed_dim=4, num_classes=3, names=["relation"]
        )
        assert weights["relation"] == 0.5 and mods["relation"].detach_backbone is flag
