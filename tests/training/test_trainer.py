"""The trainer: a run, exact resume after a kill, and 2-process DDP over gloo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from tests.training.conftest import TINY
from training.config import TrainConfig
from training.trainer import lr_lambda, train
from ws3d_ros.models.checkpoint import load_model, read_checkpoint


def _cfg(cache: Path, **overrides) -> TrainConfig:
    return TrainConfig.from_dict(TINY).with_overrides({"data.cache_dir": str(cache), **overrides})


def test_lr_schedule() -> None:
    assert lr_lambda(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_lambda(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_lambda(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert 0.1 < lr_lambda(50, 10, 100, 0.1) < 1.0


def test_kill_and_resume_equals_uninterrupted(
    tiny_bag: Path, cache_root: Path, tmp_path: Path
) -> None:
    cfg = _cfg(cache_root)
    full = train(cfg, [tiny_bag], tmp_path / "full", progress=False)
    assert full.step == 6
    part = train(cfg, [tiny_bag], tmp_path / "part", progress=False, stop_after=3)
    assert part.step == 3 and not (tmp_path / "part" / "model.pt").exists()
    assert read_checkpoint(tmp_path / "part" / "last.pt")["train_state"]["step"] == 3
    # A kill between a checkpoint's write and its rename leaves a temporary: the next
    # start removes it (its writer is gone).
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / "part" / f".last.pt.tmp{int(dead.stdout)}"
    orphan.write_bytes(b"half a checkpoint")
    resumed = train(cfg, [tiny_bag], tmp_path / "part", progress=False, resume=True)
    assert resumed.step == 6 and not orphan.exists()

    a = read_checkpoint(tmp_path / "full" / "model.pt")
    b = read_checkpoint(tmp_path / "part" / "model.pt")
    for k, v in a["net"].items():
        assert torch.equal(v, b["net"][k]), k
    assert a["meta"]["metrics"] == b["meta"]["metrics"]
    hist_a = a["meta"]["metrics"]
    assert np.isfinite(hist_a["loss"])
    # The run directory has what the docs promise, and the model loads with its vocabulary.
    run = tmp_path / "full"
    for name in ("last.pt", "model.pt", "curves.png", "history.json", "config.yaml", "tb"):
        assert (run / name).exists(), name
    loaded = load_model(run / "model.pt")
    assert loaded.meta["classes"][0] == "road" and "car" in loaded.meta["things"]
    assert loaded.meta["step"] == 6


def test_ddp_two_processes_gloo(tiny_bag: Path, cache_root: Path, tmp_path: Path) -> None:
    rendezvous = f"file://{tmp_path / 'rendezvous'}"  # a fresh file per test run
    from tests.training.ddp_worker import ddp_worker

    mp.spawn(
        ddp_worker,
        args=(2, rendezvous, str(tiny_bag), str(cache_root), str(tmp_path / "ddp")),
        nprocs=2,
        join=True,
    )
    ckpt = read_checkpoint(tmp_path / "ddp" / "model.pt")
    assert ckpt["meta"]["step"] == 3


def test_modality_dropout_drops_net_rows_not_teacher(tiny_bag: Path, cache_root: Path) -> None:
    from tests.training.test_cache import _build
    from training.trainer import make_sample

    cfg = _cfg(cache_root)
    mc = cfg.model_config()
    cache, _ = _build(tiny_bag, cache_root, cfg)
    frame = cache.load(cache.records[0])
    text = torch.zeros(13, 64)
    things = np.arange(8, 13)
    rng = np.random.default_rng(0)
    aug = {"modality_dropout": 1.0, "max_points": 500}
    s = make_sample(frame, mc, text, things, rng=rng, augment=aug)
    v = len(frame.clip_feats)
    assert (s.net_args[4] == v).all()  # every CLIP row dropped for the network
    assert s.targets.seen.any() and len(s.targets.seen) == 500  # teacher kept, points capped
    clean = make_sample(frame, mc, text, things, rng=None, augment=None)
    assert (clean.net_args[4] < v).sum() == frame.in_fov.sum()


def test_vocabulary_by_name_remaps_bag_labels(
    tiny_bag: Path, cache_root: Path, tmp_path: Path
) -> None:
    from training import trainer as trainer_mod

    seen_labels: list[np.ndarray] = []
    real = trainer_mod.make_sample

    def spy(frame, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen_labels.append(frame.train_labels.copy())
        return real(frame, *args, **kwargs)

    trainer_mod.make_sample = spy
    try:
        cfg = _cfg(cache_root, **{"train.steps": 1, "augment.fovmix_prob": 0.0})
        train(cfg, [tiny_bag], tmp_path / "voc", progress=False, classes=["car", "road"],
              things=["car"])  # fmt: skip
    finally:
        trainer_mod.make_sample = real
    meta = read_checkpoint(tmp_path / "voc" / "model.pt")["meta"]
    assert meta["classes"] == ["car", "road"] and meta["things"] == ["car"]
    lab = seen_labels[0]
    assert set(np.unique(lab).tolist()) <= {0, 1, 65535}
    assert (lab == 1).sum() > (lab == 0).sum() > 0  # road (bag id 0) -> 1, car (8) -> 0


def test_dense_labels_sample_the_candidate_points_too(tiny_bag: Path, cache_root: Path) -> None:
    """With pseudo labels denser than the point cap, the unlabelled points that carry a
    candidate set (the partial-label loss) are drawn by their share, not dropped."""
    from tests.training.test_cache import _build
    from training.trainer import make_sample

    cfg = _cfg(cache_root)
    mc = cfg.model_config()
    cache, _ = _build(tiny_bag, cache_root, cfg)
    frame = cache.load(cache.records[0])
    n = len(frame)
    text = torch.zeros(13, 64)
    labels = np.full(n, 65535, np.uint16)
    labels[: n * 3 // 4] = 0  # 75 % labelled road, the rest left out
    frame.train_labels = labels
    cand = np.ones((n, 13), bool)
    cand[n * 7 // 8 :, 8:] = False  # the last eighth: thing classes ruled out
    frame.train_candidates = np.packbits(cand, axis=1)
    aug = {"max_points": n // 4}
    s = make_sample(frame, mc, text, np.arange(8, 13), rng=np.random.default_rng(0), augment=aug)
    assert len(s.targets.labels) == n // 4
    unlabelled = s.targets.labels < 0
    ruled = ~s.targets.candidates.all(1)
    # Every unlabelled point drawn carries a candidate set; about 1/7 of the draw
    # (an eighth of the points among 7/8 with a training signal).
    assert bool((ruled == unlabelled).all())
    assert 0.09 < float(unlabelled.float().mean()) < 0.2
    # Without candidate sets the cap draws labelled points only (as for full labels).
    frame.train_candidates = None
    s = make_sample(frame, mc, text, np.arange(8, 13), rng=np.random.default_rng(0), augment=aug)
    assert bool((s.targets.labels >= 0).all())


def test_weight_average_is_the_saved_model_and_resumes_exactly(
    tiny_bag: Path, cache_root: Path, tmp_path: Path
) -> None:
    cfg = _cfg(cache_root, **{"optim.ema_decay": 0.9})
    full = train(cfg, [tiny_bag], tmp_path / "full", progress=False)
    assert full.step == 6
    last = read_checkpoint(tmp_path / "full" / "last.pt")
    model = read_checkpoint(tmp_path / "full" / "model.pt")
    shadow = last["train_state"]["ema"]["shadow"]
    assert last["train_state"]["ema"]["updates"] == 6
    differs = False
    for k, v in model["net"].items():
        assert torch.equal(v, shadow[k]), k  # model.pt holds the average ...
        if v.dtype.is_floating_point and not torch.equal(v, last["net"][k]):
            differs = True
    assert differs  # ... not the last weights
    train(cfg, [tiny_bag], tmp_path / "part", progress=False, stop_after=3)
    train(cfg, [tiny_bag], tmp_path / "part", progress=False, resume=True)
    again = read_checkpoint(tmp_path / "part" / "model.pt")
    for k, v in model["net"].items():
        assert torch.equal(v, again["net"][k]), k
