"""ModelConfig: the shipped YAML parses, overrides work, bad keys are named."""

from __future__ import annotations

import pytest

from ws3d_ros.models.config import PACKAGE_CONFIG, ConfigError, ModelConfig


def test_package_config_matches_defaults() -> None:
    from_file = ModelConfig.from_yaml(PACKAGE_CONFIG)
    assert from_file.to_dict() == ModelConfig.from_dict({}).to_dict()
    assert from_file.point_in_channels == 4 and from_file.voxel_in_channels == 5


def test_overrides_and_roundtrip() -> None:
    cfg = ModelConfig.from_dict({}).with_overrides(
        clip={"pretrained": "random"}, lidar_encoder={"encoder_channels": [8, 16]}
    )
    assert cfg.clip["pretrained"] == "random" and cfg.clip["model"] == "ViT-B-16"
    assert ModelConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"voxel": 0.1}, "unknown config key 'voxel'"),
        ({"clip": {"modle": "x"}}, "unknown config key 'clip.modle'"),
        ({"voxel_size": -1}, "voxel_size"),
        ({"point_range": [0, 0, 0, 0, 1, 1]}, "point_range"),
        ({"fusion": {"type": "sum"}}, "fusion.type"),
        ({"clip": {"image_size": [8]}}, "image_size"),
        ({"clip": "ViT"}, "clip must be a mapping"),
    ],
)
def test_bad_config_names_the_key(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict(data)
