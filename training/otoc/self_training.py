"""One Thing One Click iterative self-training: train -> propagate -> pseudo labels -> retrain.

Paper: Liu et al., "One Thing One Click: A Self-Training Approach for Weakly Supervised
3D Semantic Segmentation", CVPR 2021 (Sec. 3.4, iterative training: the network and the
relation network are trained on the clicks, labels are propagated over the supervoxel
graph, confident supervoxels become pseudo labels of the next round).

Contract:
- :func:`propagate_frame` runs the network on one cached frame (no augmentation; the
  points inside the network's range), builds its supervoxel graph
  (:func:`training.otoc.graph.build_graph`, the same over-segmentation as the cache's
  ``segments``), takes unaries from the pooled point log-probabilities times the round's
  unary weight and edge affinities from the relation network (or, without one, from the
  pooled fused embeddings), and propagates the frame's clicks with
  :func:`training.otoc.propagation.propagate` (clicked supervoxels fixed); then the
  one-click-per-object checks (``otoc.thing_radius``, ``otoc.click_regions``). Returns
  the propagated ``(S, C)`` distribution, the graph and the clamp.
- Pseudo labels (:func:`labels_from_selection`) are supervoxel-granular: a supervoxel
  whose ``argmax`` clears its class threshold labels all its points; the thresholds
  (:func:`training.otoc.propagation.class_thresholds`) keep, per class, the
  ``otoc.keep_fraction`` most confident supervoxels predicted as that class over all the
  round's frames (so rare classes survive), never below ``otoc.confidence``. Clicked
  points keep their click. :func:`pseudo_labels_for_frame` does both for one frame.
- :func:`pseudo_label_stats`: ``coverage`` (labelled fraction of the ground-truth-known
  points), ``accuracy`` and ``miou`` over the covered points (classes present in either),
  and ``scene_miou`` over all known points, an unlabelled point counting as a miss of its
  class (what share of the dense truth the pseudo labels recover).
  :func:`dense_labels` is the propagated field before selection (every supervoxel's
  ``argmax``); its accuracy / mIoU (``dense_*`` in ``rounds.json``) rate the propagation
  at full coverage, independent of how much the keep fraction lets through.
- :func:`otoc_instances`: instance ids of the propagated thing classes with
  :func:`ws3d_ros.geometry.instances.group_instances` (``dual_set=True``: PointGroup's
  clustering on original and offset-shifted coordinates).
- :func:`run_self_training` runs the rounds through :func:`training.trainer.train`: round
  0 trains on the clicks (``train.steps``; class-balanced CE when
  ``losses.text_ce.class_balance`` > 0); round ``r >= 1`` writes
  ``round{r}/pseudo/<frame>.npy`` from the round ``r-1`` model and relation network
  (:func:`write_pseudo_labels`, unary weight and keep fraction of round ``r`` from the
  ``otoc`` values, a number or one per round; with ``otoc.thing_radius`` or
  ``otoc.candidate_mass`` < 1 also ``<frame>.candidates.npy``, the packed per-point
  candidate classes of :func:`point_candidates` for the trainer's ``partial_label``
  loss, with their count and accuracy in the round's statistics; with
  ``otoc.thing_ground_height`` > 0 the thing-labelled points at ground level leave the
  pseudo labels for "their thing or a ground class", :func:`release_ground_things`,
  counted as ``ground_thing_points``) and retrains with
  ``labels.pseudo_dir`` (clicks always win over pseudo labels) for
  ``otoc.steps_per_round`` steps, starting from the previous weights when
  ``otoc.finetune``. Each round's pseudo-label coverage / accuracy / mIoU (pooled over
  the training frames) go to ``RUN_DIR/rounds.json`` and the log; ``RUN_DIR/model.pt``
  is the last round's model. ``resume`` keeps finished rounds. ``RUN_DIR/rounds.png``
  shows one training sweep's labels round by round (:func:`write_rounds_picture`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.config import DEFAULTS as CONFIG_DEFAULTS
from training.labels import (
    CANDIDATES_SUFFIX,
    apply_label_config,
    resolve_ground_classes,
    resolve_thing_radius,
    safe_key,
    thing_click_mask,
)
from training.loss_registry import LossContext, loss_params, relation_loss
from training.otoc.click_regions import enforce_click_regions
from training.otoc.graph import (
    SupervoxelGraph,
    build_graph,
    points_from_sv,
    pool_log_probs,
    pool_mean,
    sv_labels_from_points,
)
from training.otoc.ground_prior import (
    ground_level_thing_points,
    ground_supervoxels,
    restrict_to_ground_classes,
)
from training.otoc.propagation import class_thresholds, propagate, select_per_class
from training.otoc.relation import RelationLoss, affinity
from training.samples import make_sample
from training.trainer import train
from ws3d_ros.geometry.instances import group_instances
from ws3d_ros.labels import UNKNOWN_LABEL

log = logging.getLogger(__name__)

UNKNOWN = UNKNOWN_LABEL
#: Defaults of the ``otoc`` options: the config's ``otoc`` section, documented in
#: training.config (one table for both).
OTOC_DEFAULTS: dict[str, Any] = copy.deepcopy(CONFIG_DEFAULTS["otoc"])


def round_value(value: Any, r: int) -> float:
    """``value`` for round ``r >= 1``: a number, or a list indexed by ``r - 1`` whose
    last entry repeats."""
    if isinstance(value, (list, tuple)):
        return float(value[min(max(r - 1, 0), len(value) - 1)])
    return float(value)


@dataclass
class FramePseudo:
    labels: np.ndarray  # (N,) uint16 pseudo labels (65535 none)
    graph: SupervoxelGraph
    probs: np.ndarray  # (S, C) propagated distribution
    offsets: np.ndarray  # (N, 3) predicted instance offsets (zeros on cropped points)
    clamp: np.ndarray | None = None  # (S,) clicked class per supervoxel, -1 none
    allowed: np.ndarray | None = None  # (S, C) bool: classes the thing radius permits


def frame_intensity(points: np.ndarray) -> np.ndarray | None:
    names = points.dtype.names or ()
    return points["intensity"] if "intensity" in names else None


@torch.no_grad()
def propagate_frame(
    net: nn.Module,
    frame: Any,
    clicks: np.ndarray,
    *,
    model_config: Any,
    text: torch.Tensor,
    relation: RelationLoss | None = None,
    options: dict[str, Any] | None = None,
    unary_weight: float | None = None,
    supervoxel_size: float = 1.0,
    supervoxel_voxel: float = 0.2,
    device: torch.device | str = "cpu",
    thing_ids: Sequence[int] = (),
    ground_ids: Sequence[int] = (),
    thing_radius: np.ndarray | None = None,
) -> FramePseudo:
    """Propagated distribution of one cached frame's supervoxels; ``labels`` hold only
    the clicks (selection is :func:`labels_from_selection`). With ``otoc.thing_radius``
    > 0 the thing classes ``thing_ids`` are masked out beyond that radius of their
    clicks (:func:`thing_click_mask`) and the rows renormalised; with
    ``otoc.click_regions`` every labelled region must hold a click of its class
    (:func:`training.otoc.click_regions.enforce_click_regions`; unsupported supervoxels
    end with an all-zero row: no label; a stuff region continues through thing-labelled
    points). With ``ground_ids`` (the ``otoc.ground_classes``) supervoxels at ground
    level can only take those classes (:mod:`training.otoc.ground_prior`), applied
    before the click-region check."""
    from ws3d_ros.models.heads import classify

    opt = {**OTOC_DEFAULTS, **(options or {})}
    uw = round_value(opt["unary_weight"], 1) if unary_weight is None else float(unary_weight)
    graph = build_graph(
        frame.xyz,
        frame_intensity(frame.points),
        seed_resolution=supervoxel_size,
        voxel_size=supervoxel_voxel,
    )
    was = net.training
    net.eval()
    s = make_sample(
        frame, model_config, text, np.zeros(0, np.int64), rng=None, augment=None,
        segments_from="supervoxels", device=device,
    )  # fmt: skip
    out = net.embed(*s.net_args)
    net.train(was)
    # The network sees the points inside its range (``s.kept``); the graph covers all.
    kept = s.kept if s.kept is not None else np.arange(len(frame))
    logits = classify(out["fused"], text, out["temperature"]).float()
    p2s = torch.as_tensor(graph.point_to_sv[kept], device=logits.device)
    unary = pool_log_probs(logits, p2s, graph.num) * uw
    num_classes = text.shape[0]
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
    radius = thing_radius
    if radius is None:
        value = opt.get("thing_radius")
        if isinstance(value, dict) and value:
            raise ValueError(
                "a per-class otoc.thing_radius needs the class names: pass "
                "thing_radius=resolve_thing_radius(value, classes, thing_ids)"
            )
        radius = resolve_thing_radius(value, range(num_classes), thing_ids)
    allowed = None
    if radius is not None and len(thing_ids) and graph.centroids is not None:
        allowed = thing_click_mask(graph.centroids, frame.xyz, clicks, thing_ids, num_classes,
                                   radius)  # fmt: skip
        q = q * torch.as_tensor(allowed, dtype=q.dtype, device=q.device)
        q = q / q.sum(1, keepdim=True).clamp_min(1e-12)
    if len(ground_ids):
        on_ground = ground_supervoxels(
            frame.xyz, graph.point_to_sv, graph.num, height=float(opt["ground_height"]),
            share=float(opt["ground_share"]), cell=float(opt["ground_cell"]),
        )  # fmt: skip
        q_np = restrict_to_ground_classes(q.cpu().numpy(), on_ground, ground_ids, clamp_np)
        q = torch.as_tensor(q_np, device=q.device)
    if opt.get("click_regions"):
        cell = float(opt.get("click_region_cell") or 0.0) or 1.0
        q_np = enforce_click_regions(q.cpu().numpy(), graph.point_to_sv, frame.xyz, clicks,
                                     cell=cell, thing_ids=thing_ids)  # fmt: skip
        q = torch.as_tensor(q_np, device=q.device)
    offsets = np.zeros((len(frame), 3), np.float32)
    offsets[kept] = out["offsets"].float().cpu().numpy()
    labels = np.where(clicks >= 0, clicks, UNKNOWN).astype(np.uint16)
    return FramePseudo(labels, graph, q.cpu().numpy(), offsets, clamp_np, allowed)


def labels_from_selection(fp: FramePseudo, thresholds: np.ndarray, clicks: np.ndarray) -> None:
    """Fill ``fp.labels``: per supervoxel ``argmax`` where it clears its class threshold
    (:func:`~training.otoc.propagation.select_per_class`), broadcast to the points (the
    pseudo labels are supervoxel-granular); clicked points keep their click."""
    sv = select_per_class(
        torch.as_tensor(fp.probs),
        torch.as_tensor(thresholds, dtype=torch.float32),
        None if fp.clamp is None else torch.as_tensor(fp.clamp),
    )
    pts = points_from_sv(sv.numpy(), fp.graph.point_to_sv, fill=-1)
    labels = np.where(pts >= 0, pts, UNKNOWN).astype(np.uint16)
    c = np.asarray(clicks).astype(np.int64)
    clicked = (c >= 0) & (c != UNKNOWN)
    labels[clicked] = c[clicked].astype(np.uint16)
    fp.labels = labels


def pseudo_labels_for_frame(
    net: nn.Module,
    frame: Any,
    clicks: np.ndarray,
    *,
    model_config: Any,
    text: torch.Tensor,
    relation: RelationLoss | None = None,
    options: dict[str, Any] | None = None,
    unary_weight: float | None = None,
    keep_fraction: float | None = None,
    supervoxel_size: float = 1.0,
    device: torch.device | str = "cpu",
) -> FramePseudo:
    """Propagated pseudo labels of one frame alone: :func:`propagate_frame`, then the
    per-class thresholds of this frame's supervoxels (:func:`class_thresholds`)."""
    opt = {**OTOC_DEFAULTS, **(options or {})}
    fp = propagate_frame(
        net, frame, clicks, model_config=model_config, text=text, relation=relation,
        options=opt, unary_weight=unary_weight, supervoxel_size=supervoxel_size,
        device=device,
    )  # fmt: skip
    kf = round_value(opt["keep_fraction"], 1) if keep_fraction is None else keep_fraction
    th = class_thresholds(
        torch.as_tensor(fp.probs), kf, clamps=torch.as_tensor(fp.clamp),
        floor=float(opt["confidence"]),
    )  # fmt: skip
    labels_from_selection(fp, th.numpy(), clicks)
    return fp


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
    # Scene mIoU: the unlabelled known points count as misses of their class.
    g_all = gt[known].astype(np.int64)
    gt_count = np.bincount(g_all[g_all < num_classes], minlength=num_classes)[:num_classes]
    union_all = conf.sum(0) + gt_count - tp
    present_all = union_all > 0
    return {
        "coverage": float(cov.sum() / n_known),
        "accuracy": float(tp.sum() / max(conf.sum(), 1)),
        "miou": float((tp[present] / union[present]).mean()) if present.any() else float("nan"),
        "scene_miou": float((tp[present_all] / union_all[present_all]).mean())
        if present_all.any()
        else float("nan"),
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
    params = loss_params({"relation": section}, "relation")
    rel = relation_loss(params, LossContext(in_channels, 0, num_classes))
    rel.load_state_dict(sub)
    return rel.eval()


def run_self_training(
    cfg: Any,
    bags: Sequence[str | Path],
    run_dir: str | Path,
    *,
    rounds: int | None = None,
    progress: bool = False,
    resume: bool = False,
    classes: Sequence[str] | None = None,
    things: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """OTOC rounds 0..R (see the module docstring); returns one dict per round.

    Round ``r``'s network unary weight and per-class keep fraction are
    ``round_value(otoc.unary_weight, r)`` / ``round_value(otoc.keep_fraction, r)``.
    ``resume``: rounds whose ``model.pt`` exists are kept,
    an interrupted round continues from its ``last.pt``. ``RUN_DIR/model.pt`` is a copy of
    the last round's model."""
    import shutil

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    opts = {**OTOC_DEFAULTS, **dict(cfg.raw.get("otoc") or {})}
    rounds = int(opts["rounds"] if rounds is None else rounds)
    if classes is not None and rounds > 0:  # fail before round 0
        resolve_ground_classes(opts.get("ground_classes"), classes)
        if things is not None:  # else the bags' classes.yaml names them (train())
            thing_ids = [list(classes).index(t) for t in things if t in classes]
            resolve_thing_radius(opts.get("thing_radius"), classes, thing_ids)
    cache_dir = cfg.data["cache_dir"] or str(run_dir / "cache")
    base = cfg.with_overrides(
        {"data.cache_dir": cache_dir, "labels.mode": "clicks", "otoc.rounds": 0}
    )
    first_steps = int(base.train["steps"])
    steps = int(opts["steps_per_round"]) or first_steps
    done_file = run_dir / "rounds.json"
    previous = json.loads(done_file.read_text()) if resume and done_file.is_file() else []
    history: list[dict[str, Any]] = []
    prev: Path | None = None
    for r in range(rounds + 1):
        rdir = run_dir / f"round{r}"
        finished = [h for h in previous if h.get("round") == r]
        if resume and finished and (rdir / "model.pt").is_file():
            history.append(finished[0])
            prev = rdir
            continue
        over: dict[str, Any] = {"train.steps": first_steps if r == 0 else steps}
        entry: dict[str, Any] = {"round": r}
        if r > 0:
            assert prev is not None
            # The frame cache the rounds train on (train() resolves it from bags + model).
            cache_root = next((h["cache"] for h in reversed(history) if h.get("cache")), None)
            if cache_root is None:
                raise FileNotFoundError(f"{run_dir}/rounds.json names no frame cache")
            entry.update(
                write_pseudo_labels(base, prev, rdir / "pseudo", opts, r, Path(cache_root))
            )
            log.info(
                "OTOC round %d pseudo labels: coverage %s, accuracy %s, mIoU %s "
                "(scene mIoU, misses counted, %s); "
                "propagated field (all points) accuracy %s, mIoU %s "
                "(unary weight %.2f, keep fraction %.2f)",
                r, _pct(entry["pseudo_coverage"]), _pct(entry["pseudo_accuracy"]),
                _pct(entry["pseudo_miou"]), _pct(entry["pseudo_scene_miou"]),
                _pct(entry["dense_accuracy"]),
                _pct(entry["dense_miou"]), entry["unary_weight"], entry["keep_fraction"],
            )  # fmt: skip
            over["labels.pseudo_dir"] = str(rdir / "pseudo")
            if float(base.losses["text_ce"].get("class_balance", 0.0)) > 0:
                over["losses.text_ce.class_balance"] = float(opts["pseudo_class_balance"])
            if r == rounds and not opts["last_round_relation"]:
                over["losses.relation.weight"] = 0.0
            if opts["finetune"]:
                over["train.init_from"] = str(prev / "model.pt")
                over["optim.lr"] = float(base.optim["lr"]) * float(opts["finetune_lr_scale"])
        res = train(
            base.with_overrides(over),
            bags,
            rdir,
            progress=progress,
            resume=resume and (rdir / "last.pt").is_file(),
            classes=classes,
            things=things,
        )
        entry["cache"] = str(res.cache_dir) if res.cache_dir else None
        entry["metrics"] = res.metrics
        entry["seconds"] = res.seconds
        history.append(entry)
        done_file.write_text(json.dumps(history, indent=1, default=str))
        prev = rdir
    if prev is not None:
        shutil.copyfile(prev / "model.pt", run_dir / "model.pt")
    picture = write_rounds_picture(base, run_dir, history, things or ())
    if picture is not None:
        log.info("OTOC pseudo labels round by round: %s", picture)
    return history


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def write_pseudo_labels(
    cfg: Any, prev: Path, out_dir: Path, opts: dict[str, Any], r: int, cache_root: Path
) -> dict[str, Any]:
    """Round ``r``'s pseudo labels from the round ``r-1`` run ``prev`` over the frame
    cache at ``cache_root`` (the one the rounds train on): propagate every training
    frame, per-class thresholds over all of them, ``<out_dir>/<frame>.npy`` (and
    ``<frame>.candidates.npy`` with a thing radius or a candidate mass < 1).
    Returns the round's statistics (ground truth permitting)."""
    from training.cache import split_frames
    from ws3d_ros.models.checkpoint import load_model
    from ws3d_ros.models.clip.text import TextEncoder

    loaded = load_model(prev / "model.pt")
    net = loaded.net
    assert net is not None
    classes = list(loaded.meta["classes"])
    thing_ids = [classes.index(t) for t in loaded.meta.get("things") or [] if t in classes]
    ground_ids = resolve_ground_classes(opts.get("ground_classes"), classes)
    radius = resolve_thing_radius(opts.get("thing_radius"), classes, thing_ids)
    model_cfg = cfg.model_config()
    text = TextEncoder(loaded.clip.model, loaded.clip.tokenizer).encode(
        classes, list(model_cfg.clip["templates"])
    )
    relation = load_relation(
        prev / "last.pt",
        int(model_cfg.fusion["channels"]),
        len(classes),
        dict(cfg.losses.get("relation") or {}),
    )
    from training.cache import FrameCache

    cache = FrameCache.open(cache_root)
    lut = None
    if cache.class_names and classes != cache.class_names:
        lut = np.full(65536, UNKNOWN, np.uint16)
        for k, name in enumerate(cache.class_names):
            if name in classes:
                lut[k] = classes.index(name)
    train_recs, _ = split_frames(
        cache.records, float(cfg.data["val_fraction"]), list(cfg.data["val_bags"])
    )
    lab = cfg.labels
    if not float(opts.get("click_region_cell") or 0.0):
        opts = {**opts, "click_region_cell": float(lab.get("stuff_cell") or 1.0)}
    uw = round_value(opts["unary_weight"], r)
    kf = round_value(opts["keep_fraction"], r)
    mass = round_value(opts.get("candidate_mass", 1.0), r)
    props: list[tuple[Any, FramePseudo, np.ndarray]] = []
    for rec in train_recs:
        f = cache.load(rec)
        if lut is not None and f.labels is not None:
            f.labels = lut[f.labels]
        clicks = frame_clicks(f, lab, classes)
        fp = propagate_frame(
            net, f, clicks, model_config=model_cfg, text=text, relation=relation,
            options=opts, unary_weight=uw, supervoxel_size=float(cfg.data["supervoxel_size"]),
            supervoxel_voxel=float(cfg.data["supervoxel_voxel_size"]),
            thing_ids=thing_ids, ground_ids=ground_ids, thing_radius=radius,
        )  # fmt: skip
        props.append((f, fp, clicks))
    th = class_thresholds(
        [torch.as_tensor(fp.probs) for _, fp, _ in props],
        kf,
        clamps=[torch.as_tensor(fp.clamp) for _, fp, _ in props],
        floor=float(opts["confidence"]),
    ).numpy()
    out_dir.mkdir(parents=True, exist_ok=True)
    all_pseudo, all_dense, all_gt = [], [], []
    informative = known = hits = released = 0
    for f, fp, clicks in props:
        labels_from_selection(fp, th, clicks)
        cand = point_candidates(fp, mass)
        cand, demoted = release_ground_things(
            fp, cand, f.xyz, clicks, thing_ids, ground_ids, len(classes),
            height=float(opts.get("thing_ground_height") or 0.0), cell=float(opts["ground_cell"]),
        )  # fmt: skip
        released += demoted
        np.save(out_dir / f"{safe_key(f.key)}.npy", fp.labels)
        if cand is not None:
            np.save(out_dir / f"{safe_key(f.key)}{CANDIDATES_SUFFIX}", np.packbits(cand, axis=1))
            left = (fp.labels == UNKNOWN) & ~cand.all(1)
            informative += int(left.sum())
            if f.labels is not None:
                g = f.labels[left].astype(np.int64)
                ok = g < len(classes)
                known += int(ok.sum())
                hits += int(cand[np.flatnonzero(left)[ok], g[ok]].sum())
        if f.labels is not None:
            all_pseudo.append(fp.labels)
            all_dense.append(dense_labels(fp, clicks))
            all_gt.append(f.labels)
    entry: dict[str, Any] = {"unary_weight": uw, "keep_fraction": kf, "classes": classes,
                             "candidate_mass": mass,
                             "thresholds": [round(float(t), 4) for t in th],
                             "candidate_points": informative,
                             "ground_thing_points": released}  # fmt: skip
    if known:
        # Share of the unlabelled points with candidates whose true class is among them.
        entry["candidate_accuracy"] = hits / known
    if all_gt:
        st = pseudo_label_stats(np.concatenate(all_pseudo), np.concatenate(all_gt), len(classes))
        for k in ("coverage", "accuracy", "miou", "scene_miou"):
            entry[f"pseudo_{k}"] = st[k] if np.isfinite(st[k]) else None
        gt = np.concatenate(all_gt)
        st = pseudo_label_stats(np.concatenate(all_dense), gt, len(classes))
        for k in ("accuracy", "miou"):
            entry[f"dense_{k}"] = st[k] if np.isfinite(st[k]) else None
    else:
        entry.update(pseudo_coverage=None, pseudo_accuracy=None, pseudo_miou=None,
                     pseudo_scene_miou=None, dense_accuracy=None, dense_miou=None)  # fmt: skip
    return entry


def point_candidates(fp: FramePseudo, mass: float = 1.0) -> np.ndarray | None:
    """``(N, C)`` bool candidate classes per point from its supervoxel: the classes the
    thing radius permits (``fp.allowed``) and, with ``mass < 1``, of those only the
    fewest most probable under the propagated distribution ``fp.probs`` whose
    probabilities sum to at least ``mass`` (the top class always; a supervoxel with no
    propagated mass keeps the radius's classes). Points outside the graph: every class.
    None when neither restricts anything (no radius, ``mass`` 1). The trainer's
    ``partial_label`` loss uses the rows of the points the pseudo labels leave out."""
    if fp.allowed is None and mass >= 1.0:
        return None
    shape = np.shape(fp.probs)
    allowed = np.ones(shape, bool) if fp.allowed is None else np.asarray(fp.allowed)
    if mass < 1.0:
        p = np.where(allowed, np.asarray(fp.probs, np.float64), 0.0)
        total = p.sum(1, keepdims=True)
        order = np.argsort(-p, axis=1, kind="stable")
        ranked = np.take_along_axis(p, order, 1) / np.maximum(total, 1e-12)
        # a class is in when the mass of the classes ranked above it is still < mass
        before = np.cumsum(ranked, 1) - ranked
        top = np.zeros_like(allowed)
        np.put_along_axis(top, order, before < mass, 1)
        allowed = np.where(total > 0, allowed & top, allowed)
    p2s = np.asarray(fp.graph.point_to_sv)
    cand = np.ones((len(p2s), allowed.shape[1]), bool)
    ing = p2s >= 0
    cand[ing] = allowed[p2s[ing]]
    return cand


def release_ground_things(
    fp: FramePseudo,
    cand: np.ndarray | None,
    xyz: np.ndarray,
    clicks: np.ndarray,
    thing_ids: Sequence[int],
    ground_ids: Sequence[int],
    num_classes: int,
    *,
    height: float,
    cell: float = 2.0,
) -> tuple[np.ndarray | None, int]:
    """``otoc.thing_ground_height``: the pseudo-labelled thing points within ``height`` m
    of the local ground (:func:`training.otoc.ground_prior.ground_level_thing_points`;
    clicked points excepted) leave ``fp.labels`` (in place) and their candidate rows
    become their thing class plus the ground classes (every non-thing class without
    ``ground_ids``). Returns the candidates (created when ``cand`` is None and a point
    moved) and the number of points moved."""
    low = ground_level_thing_points(xyz, fp.labels, thing_ids, height=height, cell=cell)
    c = np.asarray(clicks).astype(np.int64)
    low &= ~((c >= 0) & (c != UNKNOWN))
    idx = np.flatnonzero(low)
    if not len(idx):
        return cand, 0
    if cand is None:
        cand = np.ones((len(fp.labels), num_classes), bool)
    rows = np.zeros(num_classes, bool)
    if len(ground_ids):
        rows[list(ground_ids)] = True
    else:
        rows[:] = True
        rows[list(thing_ids)] = False
    cand[idx] = rows
    cand[idx, fp.labels[idx].astype(np.int64)] = True
    fp.labels[idx] = UNKNOWN
    return cand, len(idx)


def frame_clicks(frame: Any, lab: dict[str, Any], classes: list[str]) -> np.ndarray:
    """The clicks of one cached frame (``labels`` section: the clicks sidecar, else the
    ground-truth draw the trainer makes), as class ids into ``classes``."""
    from training.weak_labels import frame_rng, weak_labels

    if lab.get("clicks_file"):
        apply_label_config(frame, {"clicks_file": lab["clicks_file"]}, classes)
        return frame.train_labels
    return weak_labels(
        "clicks", frame.labels, frame.instances, frame.xyz,
        frame_rng(int(lab["seed"]), frame.key), clicks=int(lab["clicks_per_object"]),
        stuff_cell=float(lab["stuff_cell"]), min_region_points=int(lab["min_region_points"]),
    )  # fmt: skip


def write_rounds_picture(
    cfg: Any, run_dir: Path, history: Sequence[dict[str, Any]], things: Sequence[str] = ()
) -> Path | None:
    """``RUN/rounds.png`` (:mod:`training.otoc.picture`) for the first training sweep:
    ground truth, round-0 labels and each round's pseudo labels. None without a round
    >= 1 (nothing propagated yet)."""
    import cv2

    from training.cache import FrameCache, split_frames
    from training.otoc.picture import rounds_picture
    from training.weak_labels import expand_to_segments

    later = [h for h in history if h.get("round", 0) >= 1 and h.get("classes")]
    cache_root = next((h["cache"] for h in history if h.get("cache")), None)
    if not later or cache_root is None:
        return None
    classes = list(later[0]["classes"])
    cache = FrameCache.open(Path(cache_root))
    recs, _ = split_frames(
        cache.records, float(cfg.data["val_fraction"]), list(cfg.data["val_bags"])
    )
    if not recs:
        return None
    f = cache.load(recs[0])
    if f.labels is not None and cache.class_names and cache.class_names != classes:
        lut = np.full(65536, UNKNOWN, np.uint16)
        for k, name in enumerate(cache.class_names):
            if name in classes:
                lut[k] = classes.index(name)
        f.labels = lut[f.labels]
    panels: list[tuple[str, np.ndarray]] = []
    if f.labels is not None:
        panels.append(("ground truth", f.labels))
    lab = cfg.labels
    clicks = np.asarray(frame_clicks(f, lab, classes), np.uint16)
    n_clicks = int((clicks != UNKNOWN).sum())
    if lab.get("expand_to_segments"):
        clicks = expand_to_segments(clicks, f.segments)
    panels.append(
        (
            f"round 0: {n_clicks} clicks"
            + (", spread over their supervoxels" if lab.get("expand_to_segments") else ""),
            clicks,
        )
    )
    for h in later:
        path = run_dir / f"round{h['round']}" / "pseudo" / f"{safe_key(f.key)}.npy"
        if path.is_file():
            cov = h.get("pseudo_coverage")
            extra = "" if cov is None else f" ({100 * cov:.0f}% of points)"
            panels.append((f"round {h['round']} pseudo labels{extra}", np.load(path)))
    image = rounds_picture(f.xyz, panels, classes, things)
    out = run_dir / "rounds.png"
    cv2.imwrite(str(out), image[:, :, ::-1])
    return out


def dense_labels(fp: FramePseudo, clicks: np.ndarray) -> np.ndarray:
    """The propagated field before selection: every supervoxel's ``argmax`` on all its
    points (clicked points keep their click). Its mIoU against ground truth measures the
    propagation itself, at full coverage, whatever share the selection keeps."""
    probs = np.asarray(fp.probs)
    sv = np.where(probs.max(1) > 0, probs.argmax(1), -1)  # an all-zero row: no label
    pts = points_from_sv(sv, fp.graph.point_to_sv, fill=-1)
    labels = np.where(pts >= 0, pts, UNKNOWN).astype(np.uint16)
    c = np.asarray(clicks).astype(np.int64)
    clicked = (c >= 0) & (c != UNKNOWN)
    labels[clicked] = c[clicked].astype(np.uint16)
    return labels
