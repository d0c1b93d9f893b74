"""One Thing One Click iterative self-training: train -> propagate -> pseudo labels -> retrain.

Paper: Liu et al., "One Thing One Click: A Self-Training Approach for Weakly Supervised
3D Semantic Segmentation", CVPR 2021 (Sec. 3.4, iterative training: the network and the
relation network are trained on the clicks, labels are propagated over the supervoxel
graph, confident supervoxels become pseudo labels of the next round).

Contract:
- :func:`pseudo_labels_for_frame` runs the network on one cached frame (no
  augmentation), builds its supervoxel graph (:func:`training.otoc.graph.build_graph`,
  the same over-segmentation as the cache's ``segments``), takes unaries from the pooled
  point log-probabilities and edge affinities from the relation network (or, without
  one, from the pooled fused embeddings), propagates the frame's clicks with
  :func:`training.otoc.propagation.propagate` and keeps the confident supervoxels
  (:func:`~training.otoc.propagation.select_confident`). Clicked points keep their click.
  Returns per-point labels (uint16, 65535 = none) and the propagated probabilities.
- :func:`pseudo_label_stats`: ``coverage`` (labelled fraction of the ground-truth-known
  points), ``accuracy`` and ``miou`` over the covered points (classes present in either).
- :func:`otoc_instances`: instance ids of the propagated thing classes with
  :func:`ws3d_ros.geometry.instances.group_instances` (``dual_set=True``: PointGroup's
  clustering on original and offset-shifted coordinates).
- :func:`run_self_training` runs the rounds through :func:`training.trainer.train`: round
  0 trains on the clicks; round ``r >= 1`` writes ``round{r}/pseudo/<frame>.npy`` from the
  round ``r-1`` model and retrains with ``labels.pseudo_dir`` (clicks always win over
  pseudo labels) for ``otoc.steps_per_round`` steps (round 0: ``train.steps``),
  starting from the previous weights when ``otoc.finetune``. Each
  round's pseudo-label coverage / accuracy / mIoU go to ``rounds.json`` and the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.otoc.graph import (
    SupervoxelGraph,
    build_graph,
    points_from_sv,
    pool_log_probs,
    pool_mean,
    sv_labels_from_points,
)
from training.otoc.propagation import propagate, select_confident, threshold_from_probability
from training.otoc.relation import RelationLoss, affinity
from ws3d_ros.geometry.instances import group_instances

log = logging.getLogger(__name__)

UNKNOWN = 65535

#: Defaults of the ``otoc`` options (the config's ``otoc`` section).
OTOC_DEFAULTS: dict[str, Any] = {
    "rounds": 3,
    "method": "crf",  # crf | attention
    "confidence": 0.9,  # keep a supervoxel when max propagated probability >= this
    "unary_weight": 1.0,
    "lam": 2.0,  # Potts weight of the CRF
    "iterations": 10,
    "affinity_tau": 0.2,
    "attention_tau": 0.1,
    "smoothing": 0.5,
    "finetune": True,  # start round r from round r-1's weights
    "steps_per_round": 0,  # 0: train.steps
}


@dataclass
class FramePseudo:
    labels: np.ndarray  # (N,) uint16 pseudo labels (65535 none)
    graph: SupervoxelGraph
    probs: np.ndarray  # (S, C) propagated distribution
    offsets: np.ndarray  # (N, 3) predicted instance offsets


def frame_intensity(points: np.ndarray) -> np.ndarray | None:
    names = points.dtype.names or ()
    return points["intensity"] if "intensity" in names else None


@torch.no_grad()
def pseudo_labels_for_frame(
    net: nn.Module,
    frame: Any,
    clicks: np.ndarray,
    *,
    model_config: Any,
    text: torch.Tensor,
    relation: RelationLoss | None = None,
    options: dict[str, Any] | None = None,
    supervoxel_size: float = 1.0,
    device: torch.device | str = "cpu",
) -> FramePseudo:
    """Propagated pseudo labels of one cached frame (see the module docstring)."""
    from training.trainer import make_sample
    from ws3d_ros.models.heads import classify

    opt = {**OTOC_DEFAULTS, **(options or {})}
    graph = build_graph(frame.xyz, frame_intensity(frame.points), seed_resolution=supervoxel_size)
    was = net.training
    net.eval()
    s = make_sample(
        frame, model_config, text, np.zeros(0, np.int64), rng=None, augment=None,
        segments_from="supervoxels", device=device,
    )  # fmt: skip
    out = net.embed(*s.net_args)
    net.train(was)
    logits = classify(out["fused"], text, out["temperature"]).float()
    p2s = torch.as_tensor(graph.point_to_sv, device=logits.device)
    num_classes = text.shape[0]
    unary = pool_log_probs(logits, p2s, graph.num) * float(opt["unary_weight"])
    clicks = np.asarray(clicks).astype(np.int64)
    clicks[clicks == UNKNOWN] = -1
    clamp_np = sv_labels_from_points(clicks, graph.point_to_sv, graph.num, num_classes)
    clamp = torch.as_tensor(clamp_np, device=logits.device)
    edges = graph.edges_torch(logits.device)
    bank = bank_valid = None
    if relation is not None:
        emb = relation.net(pool_mean(out["features"].float(), p2s, graph.num))
        bank, bank_valid = relation.bank.prototypes, relation.bank.valid
    else:
        emb = torch.nn.functional.normalize(pool_mean(out["fused"].float(), p2s, graph.num), dim=1)
    weights = affinity(emb, edges, float(opt["affinity_tau"]))
    q = propagate(
        str(opt["method"]),
        unary=unary,
        edges=edges,
        weights=weights,
        emb=emb,
        clamp=clamp,
        bank=bank,
        bank_valid=bank_valid,
        lam=float(opt["lam"]),
        iterations=float(opt["iterations"]),
        tau=float(opt["attention_tau"]),
        smoothing=float(opt["smoothing"]),
    )
    sv_pseudo = select_confident(q, threshold_from_probability(float(opt["confidence"])), clamp)
    pts = points_from_sv(sv_pseudo.cpu().numpy(), graph.point_to_sv, fill=-1)
    labels = np.where(pts >= 0, pts, UNKNOWN).astype(np.uint16)
    clicked = clicks >= 0
    labels[clicked] = clicks[clicked].astype(np.uint16)
    return FramePseudo(labels, graph, q.cpu().numpy(), out["offsets"].float().cpu().numpy())


def pseudo_label_stats(pseudo: np.ndarray, gt: np.ndarray, num_classes: int) -> dict[str, float]:
    """Coverage, accuracy and mIoU of pseudo labels against ground truth (module doc)."""
    known = gt != UNKNOWN
    cov = known & (pseudo != UNKNOWN)
    n_known = int(known.sum())
    if n_known == 0:
        return {"coverage": 0.0, "accuracy": float("nan"), "miou": float("nan")}
    p = pseudo[cov].astype(np.int64)
    g = gt[cov].astype(np.int64)
    ok = (p < num_classes) & (g < num_classes)
    conf = np.bincount(g[ok] * num_classes + p[ok], minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return {
        "coverage": float(cov.sum() / n_known),
        "accuracy": float(tp.sum() / max(conf.sum(), 1)),
        "miou": float((tp[present] / union[present]).mean()) if present.any() else float("nan"),
    }


def otoc_instances(
    xyz: np.ndarray,
    offsets: np.ndarray | None,
    labels: np.ndarray,
    thing_ids: Sequence[int],
    *,
    radius: float = 0.5,
    min_points: int = 8,
) -> np.ndarray:
    """Instance ids of propagated thing labels (dual-set grouping, module docstring)."""
    return group_instances(
        xyz, offsets, labels, list(thing_ids), radius=radius, min_points=min_points, dual_set=True
    )


def load_relation(last_pt: Path, in_channels: int, num_classes: int, section: dict[str, Any]):
    """The trained :class:`RelationLoss` of a run's ``last.pt`` (None if it has none)."""
    from ws3d_ros.models.checkpoint import read_checkpoint

    state = (read_checkpoint(last_pt).get("train_state") or {}).get("losses") or {}
    sub = {k[len("relation.") :]: v for k, v in state.items() if k.startswith("relation.")}
    if not sub:
        return None
    rel = RelationLoss(
        in_channels,
        num_classes,
        hidden=int(section.get("hidden", 64)),
        dim=int(section.get("dim", 32)),
        momentum=float(section.get("momentum", 0.9)),
        temperature=float(section.get("temperature", 0.1)),
    )
    rel.load_state_dict(sub)
    return rel.eval()


def safe_key(key: str) -> str:
    """A file name for a frame key ``<bag>:<stamp>``."""
    return key.replace("/", "_").replace(":", "@")


def run_self_training(
    cfg: Any,
    bags: Sequence[str | Path],
    run_dir: str | Path,
    *,
    rounds: int | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """OTOC rounds 0..R (see the module docstring); returns one dict per round."""
    from training.cache import FrameCache, split_frames
    from training.trainer import train
    from training.weak_labels import frame_rng, weak_labels
    from ws3d_ros.models.checkpoint import load_model
    from ws3d_ros.models.clip.text import TextEncoder

    run_dir = Path(run_dir)
    opts = {**OTOC_DEFAULTS, **dict(cfg.raw.get("otoc") or {})}
    rounds = int(opts["rounds"] if rounds is None else rounds)
    cache_dir = cfg.data["cache_dir"] or str(run_dir / "cache")
    base = cfg.with_overrides({"data.cache_dir": cache_dir, "labels.mode": "clicks"})
    first_steps = int(base.train["steps"])
    steps = int(opts["steps_per_round"]) or first_steps
    history: list[dict[str, Any]] = []
    prev: Path | None = None
    for r in range(rounds + 1):
        rdir = run_dir / f"round{r}"
        over: dict[str, Any] = {"train.steps": first_steps if r == 0 else steps}
        entry: dict[str, Any] = {"round": r}
        if r > 0:
            assert prev is not None
            loaded = load_model(prev / "model.pt")
            net = loaded.net
            assert net is not None
            meta = loaded.meta
            classes = list(meta["classes"])
            model_cfg = base.model_config()
            text = TextEncoder(loaded.clip.model, loaded.clip.tokenizer).encode(
                classes, list(model_cfg.clip["templates"])
            )
            relation = load_relation(
                prev / "last.pt",
                int(model_cfg.fusion["channels"]),
                len(classes),
                dict(base.losses.get("relation") or {}),
            )
            index = sorted(Path(cache_dir).glob("*/index.json"), key=lambda p: p.stat().st_mtime)
            cache = FrameCache.open(index[-1].parent)
            train_recs, _ = split_frames(
                cache.records, float(base.data["val_fraction"]), list(base.data["val_bags"])
            )
            pdir = rdir / "pseudo"
            pdir.mkdir(parents=True, exist_ok=True)
            lab = base.labels
            stats: list[dict[str, float]] = []
            for rec in train_recs:
                f = cache.load(rec)
                clicks = weak_labels(
                    "clicks", f.labels, f.instances, f.xyz, frame_rng(int(lab["seed"]), f.key),
                    clicks=int(lab["clicks_per_object"]),
                )  # fmt: skip
                fp = pseudo_labels_for_frame(
                    net, f, clicks, model_config=model_cfg, text=text, relation=relation,
                    options=opts, supervoxel_size=float(base.data["supervoxel_size"]),
                )  # fmt: skip
                np.save(pdir / f"{safe_key(f.key)}.npy", fp.labels)
                if f.labels is not None:
                    stats.append(pseudo_label_stats(fp.labels, f.labels, len(classes)))
            for k in ("coverage", "accuracy", "miou"):
                vals = [s[k] for s in stats if np.isfinite(s[k])]
                entry[f"pseudo_{k}"] = float(np.mean(vals)) if vals else None
            log.info("OTOC round %d pseudo labels: %s", r, entry)
            over["labels.pseudo_dir"] = str(pdir)
            if opts["finetune"]:
                over["train.init_from"] = str(prev / "model.pt")
        res = train(base.with_overrides(over), bags, rdir, progress=progress)
        entry["metrics"] = res.metrics
        entry["seconds"] = res.seconds
        history.append(entry)
        (run_dir / "rounds.json").write_text(json.dumps(history, indent=1, default=str))
        prev = rdir
    return history
