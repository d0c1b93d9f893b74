"""The training loop of ``ws3d train``: cached frames -> losses -> AdamW -> checkpoints.

Contract:
- :func:`train` builds (or reuses) the frame cache of the bags (:mod:`training.cache`;
  rank 0 builds, the other ranks wait), splits it by bag/time, and trains the
  :class:`~ws3d_ros.models.network.PanopticNet` of the config for ``train.steps`` optimiser
  steps of ``optim.batch_frames`` frames each, with AdamW and a linear-warmup cosine
  schedule (down to ``optim.min_lr_ratio``), gradient clipping, and AMP (float16 autocast +
  GradScaler) only on CUDA.
- Data order and augmentation are pure functions of ``(train.seed, step, rank)``: frame
  order is a per-epoch permutation, and each step draws its randomness (FOVMix partner,
  rotation/flip/scale, modality dropout) from ``numpy.random.default_rng([seed, step,
  rank])``. Together with the optimiser, scheduler, loss-module, GradScaler and torch RNG
  states stored in the checkpoint's ``train_state``, ``--resume`` from a checkpoint at
  step ``s`` continues exactly as the uninterrupted run would have (same final weights).
- Modality dropout: with probability ``augment.modality_dropout`` a frame's CLIP rows are
  all dropped (its points take the LiDAR-only path); otherwise each row is dropped with
  probability ``augment.row_dropout``. The teacher features the losses use are not dropped.
- Outputs in ``RUN_DIR``: ``last.pt`` (atomic, every ``train.checkpoint_every`` steps and
  at the end; holds ``train_state``), ``model.pt`` (the final model, no optimiser state;
  what ``ws3d infer/eval/export`` take), ``tb/`` TensorBoard scalars, ``curves.png`` (loss
  and validation mIoU curves), ``history.json``, ``config.yaml`` (the resolved config).
  Checkpoint ``meta`` holds ``classes``, ``things``, ``colors``, ``step``, ``metrics`` and
  the training config.
- Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) or with ``rank``/``world`` given,
  one process per rank joins a process group (gloo on CPU, nccl on CUDA), reads the cache
  shards ``rank::world`` only, and wraps the model in DistributedDataParallel. Rank 0
  alone writes files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from training.cache import CachedFrame, FrameCache, build_cache, clip_fingerprint, split_frames
from training.config import TrainConfig, sensors_of
from training.ema import WeightAverage
from training.fovmix import fovmix
from training.losses import LossInputs, build_losses
from training.weak_labels import frame_rng, weak_labels
from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.config import ModelConfig

log = logging.getLogger(__name__)

UNKNOWN = 65535
LAST = "last.pt"
MODEL = "model.pt"


# --------------------------------------------------------------------------- samples
@dataclass
class Sample:
    """Network inputs and loss targets of one (augmented) sweep, as tensors."""

    net_args: tuple[Any, ...]  # voxel_feats, point_feats, point_to_voxel, clip, index, sparse
    targets: LossInputs
    labels_gt: np.ndarray | None = None  # (N,) uint16 dense ground truth of kept points
    in_fov: np.ndarray | None = None
    kept: np.ndarray | None = None  # (N,) indices of the frame's points the sample holds


def _augment_points(points: np.ndarray, rng: np.random.Generator, aug: dict) -> np.ndarray:
    pts = points.copy()
    x = pts["x"].astype(np.float64)
    y = pts["y"].astype(np.float64)
    z = pts["z"].astype(np.float64)
    if aug.get("flip_y") and rng.random() < 0.5:
        y = -y
    if aug.get("rotate_z"):
        a = rng.uniform(-np.pi, np.pi)
        c, s = math.cos(a), math.sin(a)
        x, y = c * x - s * y, s * x + c * y
    lo, hi = aug.get("scale") or (1.0, 1.0)
    k = rng.uniform(float(lo), float(hi))
    pts["x"], pts["y"], pts["z"] = x * k, y * k, z * k
    return pts


def make_sample(
    frame: CachedFrame,
    config: ModelConfig,
    text: torch.Tensor,
    things: np.ndarray,
    *,
    rng: np.random.Generator | None,
    augment: dict | None,
    segments_from: str = "instances",
    device: torch.device | str = "cpu",
) -> Sample:
    """One cached (maybe FOVMix-ed) frame -> network inputs + loss targets.

    ``rng``/``augment`` None: no augmentation and no modality dropout (evaluation).
    """
    from ws3d_ros.models.inputs import prepare_geometry

    points = frame.points
    if rng is not None and augment:
        points = _augment_points(points, rng, augment)
    geom = prepare_geometry(points, config)
    kept = geom.kept
    v = len(frame.clip_feats)
    index = frame.clip_index[kept]
    teacher_table = np.concatenate(
        [frame.clip_feats.astype(np.float32), np.zeros((1, frame.clip_feats.shape[1]), np.float32)]
    )
    teacher = teacher_table[np.minimum(index, v)]
    seen = index < v
    net_index = index.copy()
    if rng is not None and augment:
        if rng.random() < float(augment.get("modality_dropout", 0.0)):
            net_index[:] = v
        else:
            drop = rng.random(len(net_index)) < float(augment.get("row_dropout", 0.0))
            net_index[drop] = v
    n = len(kept)
    train_labels = (
        frame.train_labels[kept].astype(np.int64)
        if frame.train_labels is not None
        else np.full(n, UNKNOWN, np.int64)
    )
    train_labels[train_labels == UNKNOWN] = -1
    candidates = None
    if frame.train_candidates is not None:
        candidates = np.unpackbits(
            frame.train_candidates[kept], axis=1, count=text.shape[0]
        ).astype(bool)
    gt = frame.labels[kept] if frame.labels is not None else None
    inst = frame.instances[kept] if frame.instances is not None else None
    if inst is not None and gt is not None:
        is_thing = np.isin(gt, things) & (inst > 0)
        inst_key = np.where(is_thing, (gt.astype(np.int64) << 32) | inst.astype(np.int64), -1)
    else:
        inst_key = np.full(n, -1, np.int64)
    if segments_from == "instances" and gt is not None:
        # Ground-truth object masks: thing instances, and one region per stuff class.
        stuff = (gt != UNKNOWN) & ~np.isin(gt, things)
        seg = np.where(stuff, gt.astype(np.int64) << 32, inst_key)
    else:
        seg = frame.segments[kept].astype(np.int64)

    point_to_voxel = geom.point_to_voxel
    point_feats = geom.point_feats
    xyz = geom.xyz
    limit = int((augment or {}).get("max_points", 0) or 0)
    if rng is not None and limit and n > limit:
        # Labelled points are always kept (weak labels are few); the rest is sampled.
        labelled = np.flatnonzero(train_labels >= 0)
        rest = np.flatnonzero(train_labels < 0)
        k = max(limit - len(labelled), 0)
        if len(labelled) >= limit:
            # Dense (pseudo) labels: the unlabelled points with a candidate set (the
            # partial-label loss) are drawn with them, by their share.
            signal = labelled
            if candidates is not None:
                ruled = np.flatnonzero((train_labels < 0) & ~candidates.all(1))
                signal = np.sort(np.r_[labelled, ruled])
            sub = np.sort(rng.choice(signal, size=limit, replace=False))
        else:
            sub = np.sort(np.r_[labelled, rng.choice(rest, size=min(k, len(rest)), replace=False)])
        point_to_voxel, point_feats, xyz = point_to_voxel[sub], point_feats[sub], xyz[sub]
        net_index, teacher, seen = net_index[sub], teacher[sub], seen[sub]
        train_labels, inst_key, seg = train_labels[sub], inst_key[sub], seg[sub]
        candidates = candidates[sub] if candidates is not None else None
        gt = gt[sub] if gt is not None else None

    def t(a: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    net_args = (
        t(geom.voxel_feats),
        t(point_feats),
        t(point_to_voxel, torch.long),
        t(frame.clip_feats.astype(np.float32)),
        t(net_index, torch.long),
        geom.sparse.to_torch(device),
    )
    targets = LossInputs(
        xyz=t(xyz),
        point_to_voxel=net_args[2],
        teacher=t(teacher),
        seen=t(seen, torch.bool),
        labels=t(train_labels, torch.long),
        segments=t(seg, torch.long),
        instances=t(inst_key, torch.long),
        text=text,
        candidates=None if candidates is None else t(candidates, torch.bool),
    )
    return Sample(net_args, targets, gt, seen, kept)


# --------------------------------------------------------------------------- model
class TrainModule(nn.Module):
    """The network plus the trainable loss modules; forward = weighted loss of samples."""

    def __init__(self, net: nn.Module, losses: nn.ModuleDict, weights: dict[str, float]):
        super().__init__()
        self.net = net
        self.losses = losses
        self.weights = dict(weights)

    def forward(self, samples: Sequence[Sample]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = None
        parts: dict[str, torch.Tensor] = {}
        for s in samples:
            out = self.net.embed(*s.net_args)
            for name, mod in self.losses.items():
                value = mod(out, s.targets) / len(samples)
                parts[name] = parts.get(name, 0.0) + value.detach()
                term = self.weights[name] * value
                total = term if total is None else total + term
        assert total is not None
        return total, parts


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warmup to 1 over ``warmup`` steps, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class RunResult:
    run_dir: Path
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cache_dir: Path | None = None  # the frame cache the run trained on


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


RESUME_KEYS = ("step", "optimizer", "scheduler", "scaler", "losses", "rng", "history")


def _resume_state(path: Path) -> dict[str, Any]:
    """``path`` (a ``last.pt``) read safely, with every key ``--resume`` needs checked."""
    from ws3d_ros.models.checkpoint import CheckpointError, read_checkpoint

    ckpt = read_checkpoint(path)
    state = ckpt.get("train_state")
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path} has no train_state to resume from")
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: train_state lacks {', '.join(missing)}")
    if ckpt["net"] is None:
        raise CheckpointError(f"{path} holds no 3D network weights")
    rng = state["rng"]
    if not isinstance(rng, dict) or "torch" not in rng or "python" not in rng:
        raise CheckpointError(f"{path}: train_state.rng lacks the torch/python states")
    return ckpt


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_frames(
    net: nn.Module,
    frames: Sequence[CachedFrame],
    config: ModelConfig,
    text: torch.Tensor,
    class_names: Sequence[str],
    thing_mask: Sequence[bool],
    device: torch.device,
) -> dict[str, Any]:
    """Semantic mIoU (all / in-FOV / out-of-FOV) of the network on cached frames."""
    from ws3d_ros.eval.metrics import PanopticEvaluator
    from ws3d_ros.models.heads import classify

    ev = PanopticEvaluator(list(class_names), list(thing_mask))
    was = net.training
    net.eval()
    things = np.flatnonzero(np.asarray(thing_mask))
    for f in frames:
        if f.labels is None:
            continue
        s = make_sample(f, config, text, things, rng=None, augment=None, device=device)
        out = net.embed(*s.net_args)
        pred = classify(out["fused"], text, out["temperature"]).argmax(1).cpu().numpy()
        zeros = np.zeros(len(pred), np.uint32)
        ev.add(s.labels_gt, zeros, pred.astype(np.uint16), zeros, in_fov=s.in_fov)
    net.train(was)
    if ev.frames == 0:
        return {}
    res = ev.result()
    return {split: (res[split] or {}).get("miou") for split in ("all", "in_fov", "out_fov")}


# --------------------------------------------------------------------------- plotting
def write_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Loss parts and validation mIoU against step, as a PNG (matplotlib Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    logs = [h for h in history if "loss" in h]
    if logs:
        steps = [h["step"] for h in logs]
        for key in sorted({k for h in logs for k in h if k.startswith(("loss", "lr"))}):
            if key == "lr":
                continue
            ax1.plot(steps, [h.get(key, np.nan) for h in logs], label=key)
        ax1.set_yscale("log")
        ax1.legend(fontsize=7)
    ax1.set_xlabel("step")
    ax1.set_title("training losses")
    evals = [h for h in history if "val_miou" in h]
    if evals:
        for key in ("val_miou", "val_miou_in_fov", "val_miou_out_fov"):
            ax2.plot(
                [h["step"] for h in evals],
                [h.get(key) if h.get(key) is not None else np.nan for h in evals],
                marker="o",
                label=key,
            )
        ax2.legend(fontsize=7)
    ax2.set_xlabel("step")
    ax2.set_title("validation mIoU")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- main loop
def _init_distributed(rank: int | None, world: int | None, device: torch.device) -> tuple[int, int]:
    if world is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    rank = rank or 0
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world)
    return rank, world


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def train(
    cfg: TrainConfig,
    bags: Sequence[str | Path],
    run_dir: str | Path,
    *,
    resume: bool = False,
    rank: int | None = None,
    world: int | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    classes: Sequence[str] | None = None,
    things: Sequence[str] | None = None,
) -> RunResult:
    """Train (see the module docstring). ``stop_after``: exit after that step's checkpoint
    logic, as if killed there (used to test ``resume``)."""
    from tqdm import tqdm

    from ws3d_ros.models.checkpoint import (
        build_model,
        read_checkpoint,
        remove_orphaned_temps,
        save_checkpoint,
    )
    from ws3d_ros.models.clip.text import TextEncoder
    from ws3d_ros.runtime.backends import TorchBackend

    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    device = _device(str(cfg.train["device"]))
    if device.type == "cpu" and int(cfg.train["cpu_threads"]) > 0:
        torch.set_num_threads(int(cfg.train["cpu_threads"]))
    rank, world = _init_distributed(rank, world, device)
    is_main = rank == 0
    seed = int(cfg.train["seed"])
    steps = int(cfg.train["steps"])
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        for orphan in remove_orphaned_temps(run_dir):
            log.info("removed %s (a checkpoint write that was killed)", orphan.name)
    if resume and not (run_dir / LAST).is_file():
        raise Ws3dError(f"--resume: no {LAST} in {run_dir}")
    # Read (and check) the resume state before any expensive work.
    resume_ckpt = _resume_state(run_dir / LAST) if resume else None

    model_cfg = cfg.model_config()
    torch.manual_seed(seed)
    loaded = build_model(model_cfg, device=str(device))
    net = loaded.net
    assert net is not None
    if cfg.train.get("init_from") and not resume:
        init = read_checkpoint(Path(cfg.train["init_from"]))
        if init["net"] is None:
            raise Ws3dError(f"train.init_from {cfg.train['init_from']} holds no 3D network")
        net.load_state_dict(init["net"])
        if is_main:
            log.info("network weights from %s", cfg.train["init_from"])

    # ---- cache (rank 0 builds, others reuse the same keyed directory)
    data = cfg.data
    cache_root = Path(data["cache_dir"]) if data["cache_dir"] else run_dir / "cache"
    teacher_backend = TorchBackend(loaded, str(device))
    clip_hash = clip_fingerprint(loaded.clip.model)
    cache_kwargs = dict(
        teacher=teacher_backend.clip_features,
        clip_hash=clip_hash,
        embed_dim=loaded.embed_dim,
        num_shards=int(data["num_shards"]),
        supervoxel_size=float(data["supervoxel_size"]),
        supervoxel_voxel=float(data["supervoxel_voxel_size"]),
        sensors=sensors_of(data),
        max_frames_per_bag=int(data["max_frames_per_bag"]),
        frame_stride=int(data["frame_stride"]),
        label_sidecars=data["label_sidecars"],
    )
    cache: FrameCache | None = None
    if is_main:
        cache = build_cache(bags, model_cfg, cache_root, progress=progress, **cache_kwargs)
    _barrier(world)
    if not is_main:
        cache = build_cache(bags, model_cfg, cache_root, progress=False, **cache_kwargs)
    assert cache is not None
    del teacher_backend

    class_names = list(classes or cache.class_names)
    thing_names = list(things if things is not None else cache.thing_names)
    if not class_names and cfg.labels["mode"] != "none":
        raise Ws3dError(
            f"labels.mode {cfg.labels['mode']} needs class names: the bags have no "
            "classes.yaml and the labels no label map; pass --classes (and --things) "
            "or --label-map"
        )
    if not class_names:  # distillation only: the vocabulary is chosen at inference
        log.info("no class names: training without labels (distillation only)")
    thing_mask = [n in thing_names for n in class_names]
    thing_ids = np.flatnonzero(np.asarray(thing_mask))
    train_recs, val_recs = split_frames(
        cache.records, float(data["val_fraction"]), list(data["val_bags"])
    )
    shards = set(cache.shards_for_rank(rank, world))
    my_recs = [r for r in train_recs if r.shard in shards]
    if not my_recs:
        raise Ws3dError(f"rank {rank}: no training frames in shards {sorted(shards)}")
    lab = cfg.labels
    # Labels hold the bag's class ids; a vocabulary given by name is remapped onto them
    # (a bag class missing from it becomes unknown).
    lut = None
    if cache.class_names and class_names != cache.class_names:
        lut = np.full(65536, UNKNOWN, np.uint16)
        for k, name in enumerate(cache.class_names):
            if name in class_names:
                lut[k] = class_names.index(name)

    def load(rec: Any) -> CachedFrame:
        f = cache.load(rec)
        if lut is not None and f.labels is not None:
            f.labels = lut[f.labels]
        return f

    radius = None  # one click per object: thing classes ruled out away from their clicks
    if lab["mode"] == "clicks" and float(cfg.losses["partial_label"].get("weight", 0.0)) > 0:
        from training.otoc.self_training import resolve_thing_radius

        radius = resolve_thing_radius(cfg.raw["otoc"]["thing_radius"], class_names, thing_ids)
    frames: list[CachedFrame] = []
    for r in my_recs:
        f = load(r)
        f.train_labels = weak_labels(
            lab["mode"],
            f.labels,
            f.instances,
            f.xyz,
            frame_rng(int(lab["seed"]), f.key),
            fraction=float(lab["fraction"]),
            clicks=int(lab["clicks_per_object"]),
            stuff_cell=float(lab["stuff_cell"]),
            min_region_points=int(lab["min_region_points"]),
            scribble_width=float(lab["scribble_width"]),
            scribbles_per_object=int(lab["scribbles_per_object"]),
        )
        _label_efficient_labels(
            f, lab, class_names, thing_ids=thing_ids, thing_radius=radius,
            thing_ground_height=float(cfg.raw["otoc"]["thing_ground_height"]),
            ground_cell=float(cfg.raw["otoc"]["ground_cell"]),
        )  # fmt: skip
        frames.append(f)
    labelled = sum(int((f.train_labels != UNKNOWN).sum()) for f in frames)
    total_pts = sum(len(f) for f in frames)
    val_frames = [load(r) for r in val_recs[: int(cfg.train["eval_frames"])]] if is_main else []
    if is_main:
        log.info(
            "training on %d frames (rank 0 of %d), %d val frames; labels %s: %d of %d points",
            len(frames), world, len(val_frames), lab["mode"], labelled, total_pts,
        )  # fmt: skip

    # ---- text embeddings of the training vocabulary (frozen)
    templates = list(model_cfg.clip["templates"])
    encoder = TextEncoder(loaded.clip.model, loaded.clip.tokenizer, device=device)
    if class_names:
        text = encoder.encode(class_names, templates).clone().to(device)
    else:
        text = torch.zeros((0, loaded.embed_dim), device=device)

    # ---- model, losses, optimiser
    feat_ch = int(model_cfg.fusion["channels"])
    losses, weights = build_losses(
        cfg.losses, feature_channels=feat_ch, teacher_dim=loaded.embed_dim
    )
    extra, extra_w = _label_efficient_losses(
        cfg.losses, feat_ch, loaded.embed_dim, len(class_names)
    )
    for name, mod in extra.items():
        losses[name] = mod
    weights.update(extra_w)
    if "text_ce" in losses and float(cfg.losses["text_ce"].get("class_balance", 0.0)) > 0:
        counts = np.zeros(len(class_names), np.float64)
        for f in frames:
            tl = f.train_labels
            if tl is not None:
                tl = tl[tl < len(class_names)]
                counts += np.bincount(tl, minlength=len(class_names))[: len(class_names)]
        if world > 1:
            tc = torch.as_tensor(counts, device=device)
            dist.all_reduce(tc)
            counts = tc.cpu().numpy()
        losses["text_ce"].set_class_counts(counts)
        if is_main:
            w = losses["text_ce"].class_weights.tolist()
            log.info("text_ce class weights: %s", ", ".join(f"{x:.2f}" for x in w))
    if not weights:
        raise Ws3dError("every loss has weight 0; enable at least one in the config's losses")
    if "text_ce" in weights and labelled == 0:
        log.warning("text_ce is on but no point has a training label (labels.mode %s)", lab["mode"])
    module = TrainModule(net, losses.to(device), weights).to(device)
    module.train()
    trainable = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        trainable, lr=float(cfg.optim["lr"]), weight_decay=float(cfg.optim["weight_decay"])
    )
    warmup = int(cfg.optim["warmup_steps"])
    min_ratio = float(cfg.optim["min_lr_ratio"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, warmup, steps, min_ratio))
    use_amp = bool(cfg.train["amp"]) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    ema_decay = float(cfg.optim["ema_decay"])
    ema = WeightAverage(net, ema_decay) if ema_decay > 0 else None
    history: list[dict[str, Any]] = []
    start = 0
    if resume_ckpt is not None:
        ckpt = resume_ckpt
        state = ckpt["train_state"]
        net.load_state_dict(ckpt["net"])
        losses.load_state_dict(state["losses"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            if not state.get("ema"):
                raise Ws3dError(f"{run_dir / LAST} has no weight average (optim.ema_decay)")
            ema.load_state_dict(state["ema"])
        _set_rng_state(state["rng"])
        history = list(state["history"])
        start = int(state["step"])
        if is_main:
            log.info("resumed from %s at step %d", run_dir / LAST, start)
    ddp: nn.Module = module
    if world > 1:
        ddp = nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)

    writer = None
    if is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tb"), purge_step=start if resume else None)
        (run_dir / "config.yaml").write_text(_yaml(cfg.to_dict()))

    meta_base = {
        "classes": class_names,
        "things": thing_names,
        "colors": cache.meta.get("colors") or [],
        "train_config": cfg.to_dict(),
        "bags": [str(Path(b).resolve()) for b in bags],
    }

    def checkpoint(step: int, final: bool) -> None:
        if not is_main:
            return
        meta = {**meta_base, "step": step, "metrics": _last_metrics(history)}
        state = {
            "step": step,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(),
            "losses": losses.state_dict(),
            "rng": _rng_state(),
            "history": history,
            "ema": ema.state_dict() if ema is not None else None,
        }
        save_checkpoint(run_dir / LAST, loaded, meta=meta, extra={"train_state": state})
        if final:
            if ema is not None:  # the run's model is the weight average
                with ema.swapped(net):
                    save_checkpoint(run_dir / MODEL, loaded, meta=meta)
            else:
                save_checkpoint(run_dir / MODEL, loaded, meta=meta)
        write_curves(history, run_dir / "curves.png")
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))

    per_step = int(cfg.optim["batch_frames"])
    aug = dict(cfg.augment)
    seg_from = str(cfg.losses["object_distill"].get("segments", "instances"))
    if lab["mode"] != "full" and seg_from == "instances":
        seg_from = "supervoxels"  # ground-truth masks are not available to weak training
    log_every = max(int(cfg.train["log_every"]), 1)
    eval_every = int(cfg.train["eval_every"])
    ckpt_every = max(int(cfg.train["checkpoint_every"]), 1)
    bar = tqdm(
        total=steps, initial=start, desc="train", unit="step", disable=not (progress and is_main)
    )
    running: dict[str, float] = {}
    n_run = 0
    step = start
    for step in range(start, steps):
        rng = np.random.default_rng([seed, step, rank])
        torch.manual_seed(seed * 1_000_003 + step * 97 + rank)
        batch = []
        for j in range(per_step):
            i = step * per_step + j
            epoch, pos = divmod(i, len(frames))
            order = np.random.default_rng([seed, epoch, rank, 7]).permutation(len(frames))
            frame = frames[order[pos]]
            if len(frames) > 1 and rng.random() < float(aug.get("fovmix_prob", 0.0)):
                other = frames[(order[pos] + 1 + rng.integers(len(frames) - 1)) % len(frames)]
                frame = fovmix(frame, other, rng)
            batch.append(
                make_sample(
                    frame,
                    model_cfg,
                    text,
                    thing_ids if lab["mode"] == "full" else np.zeros(0, np.int64),
                    rng=rng,
                    augment=aug,
                    segments_from=seg_from,
                    device=device,
                )
            )
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            loss, parts = ddp(batch)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(trainable, float(cfg.optim["grad_clip"]))
        scaler.step(opt)
        scaler.update()
        sched.step()
        if ema is not None:
            ema.update(net)
        running["loss"] = running.get("loss", 0.0) + float(loss.detach())
        for k, v in parts.items():
            running[f"loss_{k}"] = running.get(f"loss_{k}", 0.0) + float(v)
        n_run += 1
        done = step + 1
        if done % log_every == 0 or done == steps:
            entry = {"step": done, "lr": sched.get_last_lr()[0]}
            entry.update({k: v / n_run for k, v in running.items()})
            history.append(entry)
            if writer is not None:
                for k, v in entry.items():
                    if k != "step":
                        writer.add_scalar(f"train/{k}", v, done)
            bar.set_postfix(loss=f"{entry['loss']:.3f}")
            running, n_run = {}, 0
        if is_main and val_frames and ((eval_every and done % eval_every == 0) or done == steps):
            with ema.swapped(net) if ema is not None else nullcontext(net) as scored:
                m = evaluate_frames(
                    scored, val_frames, model_cfg, text, class_names, thing_mask, device
                )
            if m:
                history.append(
                    {
                        "step": done,
                        "val_miou": m["all"],
                        "val_miou_in_fov": m["in_fov"],
                        "val_miou_out_fov": m["out_fov"],
                    }
                )
                if writer is not None:
                    for k, v in m.items():
                        if v is not None:
                            writer.add_scalar(f"val/miou_{k}", v, done)
        bar.update(1)
        if done % ckpt_every == 0 or done == steps:
            checkpoint(done, final=done == steps)
        _barrier(world)
        if stop_after is not None and done >= stop_after and done < steps:
            bar.close()
            if writer is not None:
                writer.close()
            return RunResult(
                run_dir, done, _last_metrics(history), time.perf_counter() - t_start, cache.root
            )
    bar.close()
    if writer is not None:
        writer.close()
    if start >= steps and is_main:
        checkpoint(steps, final=True)
    return RunResult(
        run_dir, steps, _last_metrics(history), time.perf_counter() - t_start, cache.root
    )


# --------------------------------------------------------------------------- issue 7
def _label_efficient_labels(
    frame: CachedFrame,
    lab: dict,
    class_names: list[str],
    *,
    thing_ids: Sequence[int] = (),
    thing_radius: np.ndarray | None = None,
    thing_ground_height: float = 0.0,
    ground_cell: float = 2.0,
) -> None:
    """Clicks file / OTOC pseudo labels into ``frame.train_labels`` (config ``labels``).
    With ``thing_ground_height`` > 0 (``otoc.thing_ground_height``) the points a click
    of a thing class spreads to over its supervoxel (``labels.expand_to_segments``) stay
    unlabelled where they lie that close to the local ground
    (:func:`training.otoc.ground_prior.ground_level_thing_points`): the supervoxel
    holds the ground under the object too; the clicked point keeps its label.
    Candidate classes of the unlabelled points into ``frame.train_candidates`` (packed
    bits): with ``thing_radius`` (``(C,)`` metres, one click per object) each point's
    thing classes without a click of theirs within that radius
    (:func:`training.otoc.self_training.thing_click_mask`, per point); a pseudo-label
    directory's ``<frame>.candidates.npy`` (the same test per supervoxel, written by
    :func:`training.otoc.self_training.write_pseudo_labels`) replaces them."""
    if lab.get("clicks_file"):
        from ws3d_ros.data.clicks import by_sweep, labels_for_sweep, read_clicks

        groups = _clicks_by_sweep(str(lab["clicks_file"]), read_clicks, by_sweep)
        bag, _, stamp = frame.key.rpartition(":")
        mine = groups.get((bag, int(stamp)), [])
        frame.train_labels = labels_for_sweep(mine, frame.xyz, class_names)
    clicks = frame.train_labels  # before the supervoxel spread and the pseudo labels
    if lab.get("expand_to_segments") and frame.train_labels is not None:
        from training.weak_labels import expand_to_segments

        frame.train_labels = expand_to_segments(frame.train_labels, frame.segments)
        if thing_ground_height > 0 and len(thing_ids):
            from training.otoc.ground_prior import ground_level_thing_points

            low = ground_level_thing_points(
                frame.xyz, frame.train_labels, thing_ids, height=thing_ground_height,
                cell=ground_cell,
            )  # fmt: skip
            low &= clicks == UNKNOWN
            frame.train_labels = np.where(low, UNKNOWN, frame.train_labels).astype(np.uint16)
    if lab.get("pseudo_dir"):
        from training.otoc.self_training import CANDIDATES_SUFFIX, safe_key

        path = Path(lab["pseudo_dir"]) / f"{safe_key(frame.key)}.npy"
        if path.is_file():
            pseudo = np.load(path)
            if len(pseudo) != len(frame):
                raise Ws3dError(f"{path} has {len(pseudo)} labels for {len(frame)} points")
            base = frame.train_labels
            if base is None:
                base = np.full(len(frame), UNKNOWN, np.uint16)
            frame.train_labels = np.where(base != UNKNOWN, base, pseudo).astype(np.uint16)
            cand_path = path.with_name(safe_key(frame.key) + CANDIDATES_SUFFIX)
            if cand_path.is_file():
                cand = np.load(cand_path)
                width = (len(class_names) + 7) // 8
                if cand.shape != (len(frame), width) or cand.dtype != np.uint8:
                    raise Ws3dError(
                        f"{cand_path} holds {cand.dtype} {cand.shape}, not packed candidate "
                        f"bits ({len(frame)}, {width}) uint8 for {len(class_names)} classes"
                    )
                frame.train_candidates = cand
    if (
        thing_radius is not None
        and clicks is not None
        and len(thing_ids)
        and frame.train_candidates is None
    ):
        from training.otoc.self_training import thing_click_mask

        xyz = frame.xyz
        allowed = thing_click_mask(xyz, xyz, clicks, thing_ids, len(class_names), thing_radius)
        frame.train_candidates = np.packbits(allowed, axis=1)


_CLICKS: dict[str, Any] = {}


def _clicks_by_sweep(path: str, read: Any, group: Any) -> dict:
    if path not in _CLICKS:
        _CLICKS.clear()
        _CLICKS[path] = group(read(path))
    return _CLICKS[path]


def _label_efficient_losses(
    section: dict, feature_channels: int, embed_dim: int, num_classes: int
) -> tuple[nn.ModuleDict, dict[str, float]]:
    """OTOC relation loss + WS3D++ losses enabled in the config's ``losses``."""
    from training.otoc.relation import RelationLoss
    from training.ws3dpp import build_ws3dpp_losses

    mods, weights = build_ws3dpp_losses(
        section, feature_channels=feature_channels, embed_dim=embed_dim
    )
    rel = dict(section.get("relation") or {})
    if float(rel.get("weight", 0.0)) > 0:
        mods["relation"] = RelationLoss(
            feature_channels,
            num_classes,
            hidden=int(rel.get("hidden", 64)),
            dim=int(rel.get("dim", 32)),
            momentum=float(rel.get("momentum", 0.9)),
            temperature=float(rel.get("temperature", 0.1)),
            detach_backbone=bool(rel.get("detach_backbone", False)),
        )
        weights["relation"] = float(rel["weight"])
    return mods, weights


def _last_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for h in history:
        out.update({k: v for k, v in h.items() if k != "step"})
    return out


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
