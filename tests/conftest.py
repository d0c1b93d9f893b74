"""Shared fixtures: a tiny model (random CLIP + small U-Net), its export, a simulated frame.

The tiny model runs the same code as the real one (same classes, same export path); only
widths and the CLIP tower size differ, so the suite stays fast on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_OVERRIDES = {
    "voxel_size": 0.2,
    "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [192, 624]},
    "lidar_encoder": {
        "stem_channels": 16,
        "encoder_channels": [16, 32, 64],
        "decoder_channels": [32, 32, 32],
    },
    "fusion": {"channels": 32},
}


@pytest.fixture(scope="session")
def tiny_config():
    from ws3d_ros.models.config import ModelConfig

    return ModelConfig.from_dict({}).with_overrides(**TINY_OVERRIDES)


@pytest.fixture(scope="session")
def street_classes() -> tuple[list[str], list[str]]:
    from ws3d_ros.sim.classes import STREET_CLASSES

    return [c.name for c in STREET_CLASSES], [c.name for c in STREET_CLASSES if c.thing]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_config, street_classes) -> Path:
    import torch

    from ws3d_ros.models.checkpoint import build_model, save_checkpoint

    torch.manual_seed(0)
    classes, things = street_classes
    path = tmp_path_factory.mktemp("tiny") / "checkpoint.pt"
    return save_checkpoint(
        path, build_model(tiny_config), meta={"classes": classes, "things": things}
    )


@pytest.fixture(scope="session")
def sim_frame():
    """One 32-beam street sweep with its front camera and ground truth."""
    from ws3d_ros.sim.rig import SimConfig, Simulator

    return Simulator(SimConfig(frames=1, lidar_beams=32, seed=3)).frame(0).to_frame()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_checkpoint, sim_frame, street_classes) -> Path:
    from ws3d_ros.runtime.export import export_model

    out = tmp_path_factory.mktemp("tiny_export") / "model"
    export_model(tiny_checkpoint, out, frame=sim_frame, classes=street_classes[0])
    return out
