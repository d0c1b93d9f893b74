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
from training.labels import UNKNOWN, frame_train_labels, resolve_thing_radius, vocabulary_lut
from training.loss_registry import build_losses, loss_params
from training.samples import Sample, make_sample
from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.config import ModelConfig

log = logging.getLogger(__name__)

LAST = "last.pt"
MODEL = "model.pt"


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
    trainer = Trainer(
        cfg, bags, run_dir, resume=resume, rank=rank, world=world, progress=progress,
        classes=classes, things=things,
    )  # fmt: skip
    return trainer.run(stop_after)


@dataclass
class _Data:
    """The model and the frames of one rank, with the vocabulary they are trained on."""

    loaded: Any  # ws3d_ros.models.checkpoint.LoadedModel
    net: nn.Module
    model_cfg: ModelConfig
    cache: FrameCache
    class_names: list[str]
    thing_names: list[str]
    thing_mask: list[bool]
    thing_ids: np.ndarray
    frames: list[CachedFrame]
    val_frames: list[CachedFrame]
    labelled: int  # training-labelled points of this rank's frames


@dataclass
class _Optimisation:
    """The trainable state: loss modules, optimiser, schedule, scaler, weight average."""

    losses: nn.ModuleDict
    module: TrainModule
    trainable: list[nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: WeightAverage | None
    use_amp: bool


class Trainer:
    """One run of :func:`train`: setup (``__init__``), the step loop (:meth:`run`) and
    checkpointing (:meth:`checkpoint`). The setup order is part of the seeded run (the
    torch RNG initialises the network and then the loss modules)."""

    def __init__(
        self,
        cfg: TrainConfig,
        bags: Sequence[str | Path],
        run_dir: str | Path,
        *,
        resume: bool = False,
        rank: int | None = None,
        world: int | None = None,
        progress: bool = True,
        classes: Sequence[str] | None = None,
        things: Sequence[str] | None = None,
    ) -> None:
        from ws3d_ros.models.checkpoint import remove_orphaned_temps

        self.t_start = time.perf_counter()
        self.cfg, self.bags, self.run_dir = cfg, list(bags), Path(run_dir)
        self.resume, self.progress = resume, progress
        self.device = _device(str(cfg.train["device"]))
        if self.device.type == "cpu" and int(cfg.train["cpu_threads"]) > 0:
            torch.set_num_threads(int(cfg.train["cpu_threads"]))
        self.rank, self.world = _init_distributed(rank, world, self.device)
        self.is_main = self.rank == 0
        self.seed = int(cfg.train["seed"])
        self.steps = int(cfg.train["steps"])
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for orphan in remove_orphaned_temps(self.run_dir):
                log.info("removed %s (a checkpoint write that was killed)", orphan.name)
        if resume and not (self.run_dir / LAST).is_file():
            raise Ws3dError(f"--resume: no {LAST} in {self.run_dir}")
        # Read (and check) the resume state before any expensive work.
        resume_ckpt = _resume_state(self.run_dir / LAST) if resume else None
        self.data = self._load_data(classes, things)
        self.text = self._encode_text()
        self.optim = self._build_optimisation()
        self.history: list[dict[str, Any]] = []
        self.start = 0
        if resume_ckpt is not None:
            self._restore(resume_ckpt)
        self.ddp: nn.Module = self.optim.module
        if self.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.optim.module, find_unused_parameters=True
            )
        self.writer = None
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(self.run_dir / "tb"), purge_step=self.start if resume else None
            )
            (self.run_dir / "config.yaml").write_text(_yaml(cfg.to_dict()))
        self.meta_base = {
            "classes": self.data.class_names,
            "things": self.data.thing_names,
            "colors": self.data.cache.meta.get("colors") or [],
            "train_config": cfg.to_dict(),
            "bags": [str(Path(b).resolve()) for b in self.bags],
        }

    # ------------------------------------------------------------------ setup
    def _build_model(self) -> tuple[Any, ModelConfig]:
        from ws3d_ros.models.checkpoint import build_model, read_checkpoint

        cfg = self.cfg
        model_cfg = cfg.model_config()
        torch.manual_seed(self.seed)
        loaded = build_model(model_cfg, device=str(self.device))
        assert loaded.net is not None
        if cfg.train.get("init_from") and not self.resume:
            init = read_checkpoint(Path(cfg.train["init_from"]))
            if init["net"] is None:
                raise Ws3dError(f"train.init_from {cfg.train['init_from']} holds no 3D network")
            loaded.net.load_state_dict(init["net"])
            if self.is_main:
                log.info("network weights from %s", cfg.train["init_from"])
        return loaded, model_cfg

    def _build_cache(self, loaded: Any, model_cfg: ModelConfig) -> FrameCache:
        """The frame cache of the bags: rank 0 builds, the others reuse the keyed directory."""
        from ws3d_ros.runtime.backends import TorchBackend

        data = self.cfg.data
        cache_root = Path(data["cache_dir"]) if data["cache_dir"] else self.run_dir / "cache"
        teacher_backend = TorchBackend(loaded, str(self.device))
        cache_kwargs = dict(
            teacher=teacher_backend.clip_features,
            clip_hash=clip_fingerprint(loaded.clip.model),
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
        if self.is_main:
            cache = build_cache(
                self.bags, model_cfg, cache_root, progress=self.progress, **cache_kwargs
            )
        _barrier(self.world)
        if not self.is_main:
            cache = build_cache(self.bags, model_cfg, cache_root, progress=False, **cache_kwargs)
        assert cache is not None
        return cache

    def _load_data(self, classes: Sequence[str] | None, things: Sequence[str] | None) -> _Data:
        cfg = self.cfg
        loaded, model_cfg = self._build_model()
        cache = self._build_cache(loaded, model_cfg)
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
            cache.records, float(cfg.data["val_fraction"]), list(cfg.data["val_bags"])
        )
        shards = set(cache.shards_for_rank(self.rank, self.world))
        my_recs = [r for r in train_recs if r.shard in shards]
        if not my_recs:
            raise Ws3dError(f"rank {self.rank}: no training frames in shards {sorted(shards)}")
        lut = vocabulary_lut(cache.class_names, class_names)

        def load(rec: Any) -> CachedFrame:
            f = cache.load(rec)
            if lut is not None and f.labels is not None:
                f.labels = lut[f.labels]
            return f

        lab = cfg.labels
        radius = None  # one click per object: thing classes ruled out away from their clicks
        if lab["mode"] == "clicks" and loss_params(cfg.losses, "partial_label")["weight"] > 0:
            radius = resolve_thing_radius(cfg.raw["otoc"]["thing_radius"], class_names, thing_ids)
        frames: list[CachedFrame] = []
        for r in my_recs:
            f = load(r)
            frame_train_labels(f, cfg, class_names, thing_ids, radius)
            frames.append(f)
        labelled = sum(int((f.train_labels != UNKNOWN).sum()) for f in frames)
        total_pts = sum(len(f) for f in frames)
        n_val = int(cfg.train["eval_frames"])
        val_frames = [load(r) for r in val_recs[:n_val]] if self.is_main else []
        if self.is_main:
            log.info(
                "training on %d frames (rank 0 of %d), %d val frames; labels %s: %d of %d points",
                len(frames), self.world, len(val_frames), lab["mode"], labelled, total_pts,
            )  # fmt: skip
        net = loaded.net
        return _Data(
            loaded, net, model_cfg, cache, class_names, thing_names, thing_mask,
            thing_ids, frames, val_frames, labelled,
        )  # fmt: skip

    def _encode_text(self) -> torch.Tensor:
        """Text embeddings of the training vocabulary (frozen)."""
        from ws3d_ros.models.clip.text import TextEncoder

        loaded, names = self.data.loaded, self.data.class_names
        templates = list(self.data.model_cfg.clip["templates"])
        encoder = TextEncoder(loaded.clip.model, loaded.clip.tokenizer, device=self.device)
        if names:
            return encoder.encode(names, templates).clone().to(self.device)
        return torch.zeros((0, loaded.embed_dim), device=self.device)

    def _class_counts(self) -> np.ndarray:
        """Training-label counts per class over every rank's frames."""
        n = len(self.data.class_names)
        counts = np.zeros(n, np.float64)
        for f in self.data.frames:
            tl = f.train_labels
            if tl is not None:
                tl = tl[tl < n]
                counts += np.bincount(tl, minlength=n)[:n]
        if self.world > 1:
            tc = torch.as_tensor(counts, device=self.device)
            dist.all_reduce(tc)
            counts = tc.cpu().numpy()
        return counts

    def _build_optimisation(self) -> _Optimisation:
        cfg, d, device = self.cfg, self.data, self.device
        losses, weights = build_losses(
            cfg.losses,
            feature_channels=int(d.model_cfg.fusion["channels"]),
            embed_dim=d.loaded.embed_dim,
            num_classes=len(d.class_names),
        )
        if "text_ce" in losses and loss_params(cfg.losses, "text_ce")["class_balance"] > 0:
            losses["text_ce"].set_class_counts(self._class_counts())
            if self.is_main:
                w = losses["text_ce"].class_weights.tolist()
                log.info("text_ce class weights: %s", ", ".join(f"{x:.2f}" for x in w))
        if not weights:
            raise Ws3dError("every loss has weight 0; enable at least one in the config's losses")
        if "text_ce" in weights and d.labelled == 0:
            mode = cfg.labels["mode"]
            log.warning("text_ce is on but no point has a training label (labels.mode %s)", mode)
        module = TrainModule(d.net, losses.to(device), weights).to(device)
        module.train()
        trainable = [p for p in module.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            trainable, lr=float(cfg.optim["lr"]), weight_decay=float(cfg.optim["weight_decay"])
        )
        warmup, steps = int(cfg.optim["warmup_steps"]), self.steps
        min_ratio = float(cfg.optim["min_lr_ratio"])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_lambda(s, warmup, steps, min_ratio)
        )
        use_amp = bool(cfg.train["amp"]) and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        ema_decay = float(cfg.optim["ema_decay"])
        ema = WeightAverage(d.net, ema_decay) if ema_decay > 0 else None
        return _Optimisation(losses, module, trainable, opt, sched, scaler, ema, use_amp)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        """The state of a ``last.pt`` (checked by :func:`_resume_state`) into this run."""
        o, state = self.optim, ckpt["train_state"]
        self.data.net.load_state_dict(ckpt["net"])
        o.losses.load_state_dict(state["losses"])
        o.opt.load_state_dict(state["optimizer"])
        o.sched.load_state_dict(state["scheduler"])
        o.scaler.load_state_dict(state["scaler"])
        if o.ema is not None:
            if not state.get("ema"):
                raise Ws3dError(f"{self.run_dir / LAST} has no weight average (optim.ema_decay)")
            o.ema.load_state_dict(state["ema"])
        _set_rng_state(state["rng"])
        self.history = list(state["history"])
        self.start = int(state["step"])
        if self.is_main:
            log.info("resumed from %s at step %d", self.run_dir / LAST, self.start)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, step: int, final: bool) -> None:
        """``last.pt`` (with ``train_state``), at the end ``model.pt``, curves and history;
        rank 0 only."""
        from ws3d_ros.models.checkpoint import save_checkpoint

        if not self.is_main:
            return
        o, loaded, run_dir = self.optim, self.data.loaded, self.run_dir
        meta = {**self.meta_base, "step": step, "metrics": _last_metrics(self.history)}
        state = {
            "step": step,
            "optimizer": o.opt.state_dict(),
            "scheduler": o.sched.state_dict(),
            "scaler": o.scaler.state_dict(),
            "losses": o.losses.state_dict(),
            "rng": _rng_state(),
            "history": self.history,
            "ema": o.ema.state_dict() if o.ema is not None else None,
        }
        save_checkpoint(run_dir / LAST, loaded, meta=meta, extra={"train_state": state})
        if final:
            if o.ema is not None:  # the run's model is the weight average
                with o.ema.swapped(self.data.net):
                    save_checkpoint(run_dir / MODEL, loaded, meta=meta)
            else:
                save_checkpoint(run_dir / MODEL, loaded, meta=meta)
        write_curves(self.history, run_dir / "curves.png")
        (run_dir / "history.json").write_text(json.dumps(self.history, indent=1))

    # ------------------------------------------------------------------ step loop
    def _batch(self, step: int, rng: np.random.Generator) -> list[Sample]:
        """The samples of ``step``: a pure function of ``(seed, step, rank)``."""
        d, frames, aug = self.data, self.data.frames, self.aug
        batch = []
        for j in range(self.per_step):
            i = step * self.per_step + j
            epoch, pos = divmod(i, len(frames))
            order = np.random.default_rng([self.seed, epoch, self.rank, 7]).permutation(len(frames))
            frame = frames[order[pos]]
            if len(frames) > 1 and rng.random() < float(aug.get("fovmix_prob", 0.0)):
                other = frames[(order[pos] + 1 + rng.integers(len(frames) - 1)) % len(frames)]
                frame = fovmix(frame, other, rng)
            batch.append(
                make_sample(
                    frame,
                    d.model_cfg,
                    self.text,
                    d.thing_ids if self.cfg.labels["mode"] == "full" else np.zeros(0, np.int64),
                    rng=rng,
                    augment=aug,
                    segments_from=self.seg_from,
                    device=self.device,
                )
            )
        return batch

    def _optimise(self, batch: list[Sample]) -> None:
        """One optimiser step on ``batch``; its losses summed into ``self.running``."""
        o = self.optim
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=o.use_amp):
            loss, parts = self.ddp(batch)
        o.opt.zero_grad(set_to_none=True)
        o.scaler.scale(loss).backward()
        o.scaler.unscale_(o.opt)
        torch.nn.utils.clip_grad_norm_(o.trainable, float(self.cfg.optim["grad_clip"]))
        o.scaler.step(o.opt)
        o.scaler.update()
        o.sched.step()
        if o.ema is not None:
            o.ema.update(self.data.net)
        self.running["loss"] = self.running.get("loss", 0.0) + float(loss.detach())
        for k, v in parts.items():
            self.running[f"loss_{k}"] = self.running.get(f"loss_{k}", 0.0) + float(v)
        self.n_run += 1

    def _log(self, done: int, bar: Any) -> None:
        entry = {"step": done, "lr": self.optim.sched.get_last_lr()[0]}
        entry.update({k: v / self.n_run for k, v in self.running.items()})
        self.history.append(entry)
        if self.writer is not None:
            for k, v in entry.items():
                if k != "step":
                    self.writer.add_scalar(f"train/{k}", v, done)
        bar.set_postfix(loss=f"{entry['loss']:.3f}")
        self.running, self.n_run = {}, 0

    def _validate(self, done: int) -> None:
        d, ema = self.data, self.optim.ema
        with ema.swapped(d.net) if ema is not None else nullcontext(d.net) as scored:
            m = evaluate_frames(
                scored, d.val_frames, d.model_cfg, self.text, d.class_names, d.thing_mask,
                self.device,
            )  # fmt: skip
        if not m:
            return
        self.history.append(
            {
                "step": done,
                "val_miou": m["all"],
                "val_miou_in_fov": m["in_fov"],
                "val_miou_out_fov": m["out_fov"],
            }
        )
        if self.writer is not None:
            for k, v in m.items():
                if v is not None:
                    self.writer.add_scalar(f"val/miou_{k}", v, done)

    def _result(self, step: int) -> RunResult:
        seconds = time.perf_counter() - self.t_start
        return RunResult(
            self.run_dir, step, _last_metrics(self.history), seconds, self.data.cache.root
        )

    def run(self, stop_after: int | None = None) -> RunResult:
        """The step loop from ``self.start`` to ``train.steps`` (or ``stop_after``)."""
        from tqdm import tqdm

        cfg, steps, start = self.cfg, self.steps, self.start
        self.per_step = int(cfg.optim["batch_frames"])
        self.aug = dict(cfg.augment)
        self.seg_from = str(loss_params(cfg.losses, "object_distill")["segments"])
        if cfg.labels["mode"] != "full" and self.seg_from == "instances":
            self.seg_from = "supervoxels"  # ground-truth masks are not available to weak training
        log_every = max(int(cfg.train["log_every"]), 1)
        eval_every = int(cfg.train["eval_every"])
        ckpt_every = max(int(cfg.train["checkpoint_every"]), 1)
        show = self.progress and self.is_main
        bar = tqdm(total=steps, initial=start, desc="train", unit="step", disable=not show)
        self.running: dict[str, float] = {}
        self.n_run = 0
        for step in range(start, steps):
            rng = np.random.default_rng([self.seed, step, self.rank])
            torch.manual_seed(self.seed * 1_000_003 + step * 97 + self.rank)
            self._optimise(self._batch(step, rng))
            done = step + 1
            if done % log_every == 0 or done == steps:
                self._log(done, bar)
            validate = (eval_every and done % eval_every == 0) or done == steps
            if self.is_main and self.data.val_frames and validate:
                self._validate(done)
            bar.update(1)
            if done % ckpt_every == 0 or done == steps:
                self.checkpoint(done, final=done == steps)
            _barrier(self.world)
            if stop_after is not None and done >= stop_after and done < steps:
                self._close(bar)
                return self._result(done)
        self._close(bar)
        if start >= steps and self.is_main:
            self.checkpoint(steps, final=True)
        return self._result(steps)

    def _close(self, bar: Any) -> None:
        bar.close()
        if self.writer is not None:
            self.writer.close()


def _last_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for h in history:
        out.update({k: v for k, v in h.items() if k != "step"})
    return out


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
