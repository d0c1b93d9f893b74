"""OTOC propagation on synthetic supervoxel graphs: labels spread along high-affinity
edges, stop at low ones, clicked supervoxels keep their labels; energy and selection."""

from __future__ import annotations

import math

import pytest
import torch

from training.otoc.propagation import (
    mean_field,
    potts_energy,
    propagate,
    prototype_attention,
    select_confident,
    threshold_from_probability,
)

# A chain 0-1-2-3-4-5 whose middle edge (2,3) is weak: two regions of three supervoxels.
EDGES = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
WEIGHTS = torch.tensor([1.0, 1.0, 0.01, 1.0, 1.0])
CLAMP = torch.tensor([0, -1, -1, -1, -1, 1])


def test_mean_field_spreads_along_strong_edges_and_stops_at_weak_ones() -> None:
    unary = torch.zeros(6, 3)
    q = mean_field(unary, EDGES, WEIGHTS, clamp=CLAMP, lam=4.0, iterations=30)
    assert torch.allclose(q.sum(1), torch.ones(6))
    assert q.argmax(1).tolist() == [0, 0, 0, 1, 1, 1]
    # Clicked supervoxels keep their one-hot label.
    assert q[0].tolist() == [1.0, 0.0, 0.0] and q[5].tolist() == [0.0, 1.0, 0.0]
    # Confidence decays with hops from the click but stays high inside a region.
    assert q[1, 0] > 0.9 and q[2, 0] > 0.8
    # Moving the weak edge moves the border.
    w = torch.tensor([1.0, 0.01, 1.0, 1.0, 1.0])
    assert mean_field(unary, EDGES, w, clamp=CLAMP, lam=4.0, iterations=30).argmax(1).tolist() == [
        0, 0, 1, 1, 1, 1,
    ]  # fmt: skip


def test_mean_field_lowers_the_potts_energy_and_respects_strong_unaries() -> None:
    g = torch.Generator().manual_seed(0)
    unary = torch.randn(6, 3, generator=g)
    q = mean_field(unary, EDGES, WEIGHTS, lam=2.0, iterations=20)
    e_mf = potts_energy(q.argmax(1), unary, EDGES, WEIGHTS, 2.0)
    e_unary = potts_energy(unary.argmax(1), unary, EDGES, WEIGHTS, 2.0)
    assert e_mf <= e_unary + 1e-6
    # A confident unary on an unclicked node beats a weak neighbour message.
    strong = torch.zeros(6, 3)
    strong[2, 2] = 20.0
    q = mean_field(strong, EDGES, WEIGHTS, clamp=CLAMP, lam=1.0, iterations=20)
    assert q[2].argmax() == 2 and q[0].argmax() == 0


def test_potts_energy_counts_cut_weights() -> None:
    unary = torch.zeros(6, 2)
    e_cut_weak = potts_energy(torch.tensor([0, 0, 0, 1, 1, 1]), unary, EDGES, WEIGHTS, 1.0)
    e_cut_strong = potts_energy(torch.tensor([0, 1, 1, 1, 1, 1]), unary, EDGES, WEIGHTS, 1.0)
    assert math.isclose(float(e_cut_weak), 0.01, rel_tol=1e-5) and float(e_cut_strong) == 1.0


def _two_cluster_embeddings() -> torch.Tensor:
    a = torch.tensor([1.0, 0.0, 0.0])
    b = torch.tensor([0.0, 1.0, 0.0])
    emb = torch.stack([a, a * 0.9 + b * 0.1, a * 0.8 + b * 0.2, b * 0.8 + a * 0.2, b, b])
    return torch.nn.functional.normalize(emb, dim=1)


def test_prototype_attention_assigns_by_prototype_and_keeps_clicks() -> None:
    emb = _two_cluster_embeddings()
    unary = torch.zeros(6, 3)
    a = prototype_attention(emb, unary, EDGES, WEIGHTS, clamp=CLAMP, tau=0.1, iterations=3)
    assert torch.allclose(a.sum(1), torch.ones(6), atol=1e-5)
    assert a.argmax(1).tolist() == [0, 0, 0, 1, 1, 1]
    assert a[0, 0] == 1.0 and a[5, 1] == 1.0
    # A class with no click and no bank prototype never wins without unary support.
    assert (a[:, 2] < 0.2).all()
    # With a bank prototype for class 2 and no clicks, supervoxels near it take it.
    bank = torch.zeros(3, 3)
    bank[2] = torch.tensor([0.0, 0.0, 1.0])
    emb2 = torch.cat([emb, torch.tensor([[0.0, 0.1, 1.0]])])
    emb2 = torch.nn.functional.normalize(emb2, dim=1)
    clamp2 = torch.cat([CLAMP, torch.tensor([-1])])
    a2 = prototype_attention(
        emb2, torch.zeros(7, 3), EDGES, WEIGHTS, clamp=clamp2, bank=bank,
        bank_valid=torch.tensor([False, False, True]),
    )  # fmt: skip
    assert a2[6].argmax() == 2


def test_prototype_attention_is_linear_in_supervoxels() -> None:
    # No (S, S) matrix: 200k supervoxels in a chain run in well under a second.
    s = 200_000
    emb = torch.nn.functional.normalize(torch.randn(s, 16), dim=1)
    edges = torch.stack([torch.arange(s - 1), torch.arange(1, s)], 1)
    clamp = torch.full((s,), -1)
    clamp[:10] = torch.arange(10) % 4
    a = prototype_attention(emb, torch.zeros(s, 4), edges, torch.ones(s - 1), clamp=clamp)
    assert a.shape == (s, 4)


def test_propagate_dispatch_and_selection() -> None:
    unary = torch.zeros(6, 3)
    q = propagate("crf", unary=unary, edges=EDGES, weights=WEIGHTS, clamp=CLAMP, lam=4.0,
                  iterations=30)  # fmt: skip
    sel = select_confident(q, threshold_from_probability(0.9), CLAMP)
    assert sel[0] == 0 and sel[5] == 1
    assert set(sel.tolist()) <= {-1, 0, 1}
    # Uniform rows are never confident; clicks always survive.
    flat = torch.full((6, 3), 1 / 3)
    assert select_confident(flat, math.log(0.5), CLAMP).tolist() == [0, -1, -1, -1, -1, 1]
    with pytest.raises(ValueError, match="attention"):
        propagate("attention", unary=unary, edges=EDGES, weights=WEIGHTS)
    with pytest.raises(ValueError, match="crf"):
        propagate("nope", unary=unary, edges=EDGES, weights=WEIGHTS)
    with pytest.raises(ValueError, match="threshold"):
        threshold_from_probability(0.0)


def test_per_class_thresholds_keep_rare_classes() -> None:
    """A global 0.9 threshold drops the rare, less confident class; the per-class rule
    keeps the top share of each class; clicks always stay."""
    from training.otoc.propagation import class_thresholds, select_per_class

    conf_a = torch.linspace(0.95, 0.99, 8)  # frequent, confident class 0
    conf_b = torch.tensor([0.6, 0.7, 0.8, 0.55])  # rare class 1, never above 0.9
    q = torch.zeros(12, 2)
    q[:8, 0], q[:8, 1] = conf_a, 1 - conf_a
    q[8:, 1], q[8:, 0] = conf_b, 1 - conf_b
    clamp = torch.full((12,), -1)
    clamp[0] = 1  # a click that disagrees with the propagation wins
    assert (select_confident(q, math.log(0.9))[8:] == -1).all()
    th = class_thresholds(q, 0.5, clamps=clamp)
    out = select_per_class(q, th, clamp)
    assert out[0] == 1
    assert sorted(torch.nonzero(out[8:] == 1).squeeze(1).tolist()) == [1, 2]  # 0.7, 0.8
    assert int((out[1:8] == 0).sum()) == 4  # half of the 7 unclamped class-0 ones
    assert class_thresholds(q, 1.0, clamps=clamp, floor=0.58)[1] == 0.58
    with pytest.raises(ValueError, match="keep_fraction"):
        class_thresholds(q, 0.0)


def test_rows_without_a_label_are_not_ranked_or_kept() -> None:
    """All-zero rows (supervoxels left unlabelled by otoc.click_regions) neither count
    towards a class' keep fraction nor get a pseudo label, even at a zero threshold."""
    from training.otoc.propagation import class_thresholds, select_per_class

    q = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.0, 0.0], [0.0, 0.0]])
    th = class_thresholds(q, 0.5)
    assert th[0] == pytest.approx(0.9)  # the top half of the 2 live class-0 rows
    out = select_per_class(q, torch.zeros(2))
    assert out.tolist() == [0, 0, -1, -1]
