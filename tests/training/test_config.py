"""Training configs: every packaged YAML parses; overrides and errors name the key."""

from __future__ import annotations

import pytest

from training.config import CONFIG_DIR, TrainConfig
from ws3d_ros.models.config import ConfigError

NAMES = [
    "distill_clip",
    "ignet_fovmix",
    "weak_clicks",
    "full_supervised",
    "demo_quick",
    "otoc",
    "ws3dpp",
]


@pytest.mark.parametrize("name", NAMES)
def test_packaged_configs_parse(name: str) -> None:
    cfg = TrainConfig.from_yaml(CONFIG_DIR / f"{name}.yaml")
    assert TrainConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    assert any(cfg.loss_on(k) for k in cfg.losses)
    # A bare name is looked up in training/configs.
    assert TrainConfig.from_yaml(f"{name}.yaml").to_dict() == cfg.to_dict()
    assert TrainConfig.from_yaml(name).to_dict() == cfg.to_dict()


def test_overrides_and_errors() -> None:
    cfg = TrainConfig.from_dict({}).with_overrides({"optim.lr": "0.001", "labels.mode": "clicks"})
    assert cfg.optim["lr"] == 0.001 and cfg.labels["mode"] == "clicks"
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        TrainConfig.from_dict({"optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"labels\.mode"):
        TrainConfig.from_dict({"labels": {"mode": "dense"}})
    with pytest.raises(ConfigError, match="voxel_sise"):
        TrainConfig.from_dict({"model": {"voxel_sise": 0.1}})


def test_otoc_section_validation() -> None:
    cfg = TrainConfig.from_yaml("otoc")
    assert cfg.raw["otoc"]["rounds"] == 3 and cfg.labels["mode"] == "clicks"
    assert TrainConfig.from_dict({}).raw["otoc"]["rounds"] == 0  # plain training
    assert cfg.with_overrides({"otoc.unary_weight": 0.25}).raw["otoc"]["unary_weight"] == 0.25
    with pytest.raises(ConfigError, match=r"optim\.ema_decay"):
        TrainConfig.from_dict({"optim": {"ema_decay": 1.0}})
    with pytest.raises(ConfigError, match=r"otoc\.method"):
        TrainConfig.from_dict({"otoc": {"method": "graphcut"}})
    with pytest.raises(ConfigError, match=r"otoc\.keep_fraction"):
        TrainConfig.from_dict({"otoc": {"keep_fraction": [0.5, 1.5]}})
    with pytest.raises(ConfigError, match=r"otoc\.unary_weight"):
        TrainConfig.from_dict({"otoc": {"unary_weight": -1}})
    with pytest.raises(ConfigError, match="class_balance"):
        TrainConfig.from_dict({"losses": {"text_ce": {"class_balance": -1}}})


def test_thing_radius_is_metres_or_per_class_metres() -> None:
    per_class = {"car": 6.0, "pedestrian": 1.0}
    cfg = TrainConfig.from_dict({"otoc": {"thing_radius": per_class}})
    assert cfg.raw["otoc"]["thing_radius"] == per_class
    assert TrainConfig.from_dict({"otoc": {"thing_radius": 2.5}}).raw["otoc"]["thing_radius"] == 2.5
    with pytest.raises(ConfigError, match=r"otoc\.thing_radius"):
        TrainConfig.from_dict({"otoc": {"thing_radius": -1}})
    with pytest.raises(ConfigError, match=r"otoc\.thing_radius"):
        TrainConfig.from_dict({"otoc": {"thing_radius": {"car": 0}}})
    with pytest.raises(ConfigError, match=r"otoc\.thing_radius"):
        TrainConfig.from_dict({"otoc": {"thing_radius": "wide"}})


def test_candidate_mass_is_a_share_of_the_propagated_mass() -> None:
    assert TrainConfig.from_dict({}).raw["otoc"]["candidate_mass"] == 1.0  # off
    cfg = TrainConfig.from_dict({"otoc": {"candidate_mass": 0.9}})
    assert cfg.raw["otoc"]["candidate_mass"] == 0.9
    per_round = TrainConfig.from_dict({"otoc": {"candidate_mass": [0.95, 0.95, 1.0]}})
    assert per_round.raw["otoc"]["candidate_mass"] == [0.95, 0.95, 1.0]
    for bad in (0, 1.5, -0.1, [], [0.9, 2.0]):
        with pytest.raises(ConfigError, match=r"otoc\.candidate_mass"):
            TrainConfig.from_dict({"otoc": {"candidate_mass": bad}})


def test_thing_ground_height_is_metres_or_off() -> None:
    assert TrainConfig.from_dict({}).raw["otoc"]["thing_ground_height"] == 0.0  # off
    assert TrainConfig.from_dict({"otoc": {"thing_ground_height": 0.05}}).raw["otoc"][
        "thing_ground_height"
    ] == pytest.approx(0.05)
    with pytest.raises(ConfigError, match=r"otoc\.thing_ground_height"):
        TrainConfig.from_dict({"otoc": {"thing_ground_height": -0.1}})


def test_the_shipped_otoc_configs_share_the_propagation_checks() -> None:
    """ws3dpp.yaml is OTOC plus losses: the same selection and the same click-region,
    radius and ground checks."""
    otoc, ws3dpp = TrainConfig.from_yaml("otoc"), TrainConfig.from_yaml("ws3dpp")
    for key in ("click_regions", "click_region_cell", "thing_radius", "ground_classes",
                "keep_fraction", "unary_weight", "pseudo_class_balance",
                "candidate_mass", "thing_ground_height"):  # fmt: skip
        assert otoc.raw["otoc"][key] == ws3dpp.raw["otoc"][key], key
