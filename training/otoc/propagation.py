"""Label propagation on the supervoxel graph (One Thing One Click) and pseudo-label choice.

Paper: Liu et al., "One Thing One Click: A Self-Training Approach for Weakly Supervised
3D Semantic Segmentation", CVPR 2021: labels of the clicked supervoxels are spread over
the supervoxel graph by minimising an energy with unary terms from the 3D network and
pairwise terms from the relation network (graph propagation, Sec. 3.2), and its
transformer-style variant in which supervoxels attend to category prototypes
(One Thing One Click++, TPAMI extension: linear-complexity propagation). Both are
parameter-free here: the learned parts are the network (unaries) and the relation
network (embeddings / affinities), trained by the self-training rounds.

Contract (torch, any device; ``S`` supervoxels, ``C`` classes, ``E`` undirected edges):
- ``unary (S, C)``: per-class scores (the mean point log-probabilities of
  :func:`training.otoc.graph.pool_log_probs`; zeros = no opinion). ``clamp (S,)``:
  clicked class per supervoxel or ``-1``; clamped supervoxels keep their label (their
  distribution is one-hot at every iteration). ``edges (E, 2)``, ``weights (E,)`` >= 0.
- :func:`potts_energy` = ``-sum_i unary[i, y_i] + lam * sum_(ij) w_ij [y_i != y_j]``.
- :func:`mean_field` minimises that energy approximately with ``iterations`` of
  mean-field updates ``Q_i ~ exp(unary_i + lam * sum_j w_ij Q_j)`` (the Potts message;
  a synchronous update damped by ``damping``). Returns ``Q (S, C)`` (rows sum to 1).
  Labels travel along high-weight edges and stop at low-weight ones.
- :func:`prototype_attention`: prototypes ``P (C, D)`` start as the mean embedding of the
  clicked supervoxels of each class (else the memory bank's prototype, else absent);
  each iteration every supervoxel attends to the prototypes
  (``A = softmax(unary + emb P^T / tau)``), ``A`` is smoothed once over the graph by the
  edge weights, and each prototype is re-estimated as the ``A``-weighted mean of the
  supervoxel embeddings (clicked ones fixed; a class without a prototype gets none and
  scores below every prototype, so only its unary can select it). Cost
  ``O(S C D + E C)`` per iteration: linear in the number of supervoxels. Returns ``A (S, C)``.
- :func:`propagate` dispatches on ``method`` (``"crf"`` | ``"attention"``).
- :func:`select_confident`: pseudo label ``argmax Q`` where ``log max Q >= log_threshold``
  (a mean log-probability threshold, since the unaries are mean log-probabilities),
  ``-1`` elsewhere; clamped supervoxels always keep their click.
- :func:`class_thresholds` / :func:`select_per_class`: the per-class confidence rule of
  the self-training rounds. Over all supervoxels of a round (every frame), those whose
  argmax is class ``k`` are ranked by confidence and the top ``keep_fraction`` of them
  (by count) are kept (all-zero rows, supervoxels left without a label, are not
  ranked), so a rare class keeps its most confident share instead of
  vanishing under one global threshold that only frequent classes clear; ``floor`` is
  an absolute minimum probability on top. Clicked supervoxels are always kept.
"""

from __future__ import annotations

import math

import torch


def _one_hot_clamp(q: torch.Tensor, clamp: torch.Tensor | None) -> torch.Tensor:
    if clamp is None:
        return q
    ok = clamp >= 0
    if bool(ok.any()):
        q = q.clone()
        q[ok] = 0.0
        q[ok, clamp[ok]] = 1.0
    return q


def _neighbour_sum(q: torch.Tensor, edges: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    msg = torch.zeros_like(q)
    if edges.numel() == 0:
        return msg
    i, j = edges[:, 0], edges[:, 1]
    w = weights.to(q.dtype).unsqueeze(1)
    msg.index_add_(0, i, w * q[j])
    msg.index_add_(0, j, w * q[i])
    return msg


def potts_energy(
    labels: torch.Tensor,
    unary: torch.Tensor,
    edges: torch.Tensor,
    weights: torch.Tensor,
    lam: float = 1.0,
) -> torch.Tensor:
    """Energy of a labelling (see the module docstring)."""
    u = -unary.gather(1, labels.unsqueeze(1)).sum()
    if edges.numel() == 0:
        return u
    cut = (labels[edges[:, 0]] != labels[edges[:, 1]]).to(unary.dtype)
    return u + lam * (weights.to(unary.dtype) * cut).sum()


def mean_field(
    unary: torch.Tensor,
    edges: torch.Tensor,
    weights: torch.Tensor,
    *,
    clamp: torch.Tensor | None = None,
    lam: float = 1.0,
    iterations: int = 10,
    damping: float = 0.5,
) -> torch.Tensor:
    """Mean-field CRF propagation (see the module docstring)."""
    q = _one_hot_clamp(torch.softmax(unary, dim=1), clamp)
    for _ in range(iterations):
        new = torch.softmax(unary + lam * _neighbour_sum(q, edges, weights), dim=1)
        q = _one_hot_clamp(damping * q + (1.0 - damping) * new, clamp)
    return q


def prototype_attention(
    emb: torch.Tensor,
    unary: torch.Tensor,
    edges: torch.Tensor,
    weights: torch.Tensor,
    *,
    clamp: torch.Tensor | None = None,
    bank: torch.Tensor | None = None,
    bank_valid: torch.Tensor | None = None,
    tau: float = 0.1,
    iterations: int = 3,
    smoothing: float = 0.5,
) -> torch.Tensor:
    """Supervoxel <-> category-prototype attention propagation (module docstring)."""
    c = unary.shape[1]
    protos = emb.new_zeros((c, emb.shape[1]))
    avail = torch.zeros(c, dtype=torch.bool, device=emb.device)
    if bank is not None and bank_valid is not None:
        protos[bank_valid] = bank[bank_valid].to(emb.dtype)
        avail |= bank_valid.to(emb.device)
    anchors = clamp is not None and bool((clamp >= 0).any())
    if anchors:
        assert clamp is not None
        for k in torch.unique(clamp[clamp >= 0]).tolist():
            protos[k] = emb[clamp == k].mean(0)
            avail[k] = True
    protos = torch.nn.functional.normalize(protos, dim=1, eps=1e-6)
    a = _one_hot_clamp(torch.softmax(unary, dim=1), clamp)
    for _ in range(max(iterations, 1)):
        sim = emb @ protos.t() / tau
        if bool(avail.any()):
            # A class without a prototype scores below every prototype (by the full
            # cosine range), so only unary evidence can pick it.
            floor = sim[:, avail].min(dim=1, keepdim=True).values - 2.0 / tau
            sim = torch.where(avail.unsqueeze(0), sim, floor)
        else:
            sim = torch.zeros_like(sim)
        a = torch.softmax(unary + sim, dim=1)
        # One hop of affinity-weighted smoothing over the graph.
        deg = _neighbour_sum(torch.ones_like(a[:, :1]), edges, weights)
        neigh = _neighbour_sum(a, edges, weights) / deg.clamp_min(1e-6)
        has = deg > 0
        a = torch.where(has, (1.0 - smoothing) * a + smoothing * neigh, a)
        a = _one_hot_clamp(a, clamp)
        # Prototypes attend back to the supervoxels (A-weighted means), clicks fixed.
        mass = a.sum(0)
        new = (a.t() @ emb) / mass.clamp_min(1e-6).unsqueeze(1)
        upd = (mass > 1e-6) & avail
        if anchors:
            assert clamp is not None
            clicked = torch.zeros(c, dtype=torch.bool, device=emb.device)
            clicked[torch.unique(clamp[clamp >= 0])] = True
            upd = upd & ~clicked
        protos = torch.where(upd.unsqueeze(1), torch.nn.functional.normalize(new, dim=1), protos)
    return a / a.sum(1, keepdim=True).clamp_min(1e-12)


def propagate(
    method: str,
    *,
    unary: torch.Tensor,
    edges: torch.Tensor,
    weights: torch.Tensor,
    emb: torch.Tensor | None = None,
    clamp: torch.Tensor | None = None,
    bank: torch.Tensor | None = None,
    bank_valid: torch.Tensor | None = None,
    **options: float,
) -> torch.Tensor:
    """``"crf"`` -> :func:`mean_field`; ``"attention"`` -> :func:`prototype_attention`."""
    if method == "crf":
        return mean_field(
            unary,
            edges,
            weights,
            clamp=clamp,
            lam=float(options.get("lam", 1.0)),
            iterations=int(options.get("iterations", 10)),
            damping=float(options.get("damping", 0.5)),
        )
    if method == "attention":
        if emb is None:
            raise ValueError("attention propagation needs the relation embeddings (emb)")
        return prototype_attention(
            emb,
            unary,
            edges,
            weights,
            clamp=clamp,
            bank=bank,
            bank_valid=bank_valid,
            tau=float(options.get("tau", 0.1)),
            iterations=int(options.get("iterations", 3)),
            smoothing=float(options.get("smoothing", 0.5)),
        )
    raise ValueError(f"propagation method must be 'crf' or 'attention', found {method!r}")


def select_confident(
    q: torch.Tensor, log_threshold: float, clamp: torch.Tensor | None = None
) -> torch.Tensor:
    """``(S,)`` pseudo labels (``-1`` = not confident); see the module docstring."""
    conf, lab = q.max(dim=1)
    keep = torch.log(conf.clamp_min(1e-12)) >= log_threshold
    out = torch.where(keep, lab, torch.full_like(lab, -1))
    if clamp is not None:
        out = torch.where(clamp >= 0, clamp, out)
    return out


def class_thresholds(
    qs: list[torch.Tensor] | torch.Tensor,
    keep_fraction: float,
    *,
    clamps: list[torch.Tensor] | torch.Tensor | None = None,
    floor: float = 0.0,
) -> torch.Tensor:
    """``(C,)`` probability thresholds: per class ``k``, the confidence of the
    ``keep_fraction`` quantile (from the top) of the unclamped supervoxels predicted ``k``
    (module docstring); classes predicted nowhere get ``1.0``; never below ``floor``."""
    q = torch.cat(list(qs)) if isinstance(qs, list) else qs
    conf, lab = q.max(dim=1)
    if clamps is not None:
        cl = torch.cat(list(clamps)) if isinstance(clamps, list) else clamps
        free = cl < 0
        conf, lab = conf[free], lab[free]
    live = conf > 0  # an all-zero row has no label to rank (click_regions drops)
    conf, lab = conf[live], lab[live]
    out = torch.ones(q.shape[1], dtype=q.dtype, device=q.device)
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], found {keep_fraction}")
    for k in range(q.shape[1]):
        ck = conf[lab == k]
        if ck.numel() == 0:
            continue
        n_keep = max(1, math.ceil(keep_fraction * ck.numel()))
        out[k] = torch.sort(ck, descending=True).values[n_keep - 1]
    return out.clamp_min(float(floor))


def select_per_class(
    q: torch.Tensor, thresholds: torch.Tensor, clamp: torch.Tensor | None = None
) -> torch.Tensor:
    """``(S,)`` pseudo labels: ``argmax Q`` where ``max Q >= thresholds[argmax]``, else
    ``-1``; clamped supervoxels keep their click."""
    conf, lab = q.max(dim=1)
    keep = (conf >= thresholds.to(q.dtype)[lab]) & (conf > 0)
    out = torch.where(keep, lab, torch.full_like(lab, -1))
    if clamp is not None:
        out = torch.where(clamp >= 0, clamp, out)
    return out


def threshold_from_probability(p: float) -> float:
    """``log p`` with a clear error outside ``(0, 1]``."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"confidence threshold must be in (0, 1], found {p}")
    return math.log(p)
