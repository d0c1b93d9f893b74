"""The worker of the 2-process DDP test, in a module of its own: ``mp.spawn`` pickles it
by name, and a child process imports it as ``tests.training.ddp_worker`` however pytest
named the test module (``training.test_trainer`` would find the real ``training``)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.training.conftest import TINY
from training.config import TrainConfig
from training.trainer import train
from ws3d_ros.models.checkpoint import load_model


def ddp_worker(rank: int, world: int, rendezvous: str, bag: str, cache: str, out: str) -> None:
    import torch.distributed as dist

    # File-based rendezvous: no port is picked in advance, so nothing can race for it.
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    overrides = {"data.cache_dir": cache, "train.steps": 3, "augment.fovmix_prob": 0.0}
    cfg = TrainConfig.from_dict(TINY).with_overrides(overrides)
    train(cfg, [bag], out, rank=rank, world=world, progress=False)
    net = load_model(Path(out) / "model.pt").net
    # Every rank ends with rank 0's weights (DDP keeps replicas identical).
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    assert all(torch.equal(gathered[0], g) for g in gathered)
    dist.destroy_process_group()
