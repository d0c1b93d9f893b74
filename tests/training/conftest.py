"""Shared fixtures of the training tests: a tiny simulated bag and a tiny config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ws3d_ros.cli.main import main as cli_main

#: A network and crop small enough that a training step takes a few ms on one core.
TINY: dict[str, Any] = {
    "model": {
        "voxel_size": 0.5,
        "point_range": [-16.0, -16.0, -4.0, 16.0, 16.0, 6.0],
        "lidar_encoder": {
            "stem_channels": 8,
            "encoder_channels": [8, 16],
            "decoder_channels": [16, 8],
            "blocks_per_stage": 1,
        },
        "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [64, 192]},
        "fusion": {"type": "concat_mlp", "channels": 16},
    },
    "data": {"num_shards": 2, "supervoxel_size": 2.0},
    "augment": {"fovmix_prob": 0.5, "modality_dropout": 0.3},
    "losses": {
        "voxel_distill": {"weight": 0.5},
        "object_distill": {"weight": 0.25},
        "text_ce": {"weight": 1.0},
        "contrastive": {"weight": 0.2},
        "teacher_distill": {"weight": 0.2, "hidden": 16},
        "offsets": {"weight": 0.5},
    },
    "optim": {"lr": 0.003, "warmup_steps": 2},
    "train": {"steps": 6, "checkpoint_every": 3, "log_every": 1, "device": "cpu"},
}


@pytest.fixture(scope="session")
def tiny_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 simulated sweeps (32 beams, one camera) with ground truth and classes.yaml."""
    out = tmp_path_factory.mktemp("trainbag") / "bag"
    code = cli_main(["sim", "--out", str(out), "--frames", "4", "--lidar-beams", "32", "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache root shared by the tests (same bag + config -> the same cache)."""
    return tmp_path_factory.mktemp("cache")
