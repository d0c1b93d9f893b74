"""Model configuration: the typed form of ``config/model.yaml``.

Contract: :meth:`ModelConfig.from_dict` accepts the YAML mapping (every key optional,
defaults as documented in ``config/model.yaml``), rejects unknown keys and wrong types
with :class:`ConfigError` naming the key, and :meth:`ModelConfig.to_dict` round-trips.
A checkpoint stores ``to_dict()`` so a trained model rebuilds itself without the file.
No torch import: the runtime reads the config before choosing a backend.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ws3d_ros.errors import Ws3dError

PACKAGE_CONFIG = Path(__file__).resolve().parents[2] / "config" / "model.yaml"


class ConfigError(Ws3dError, ValueError):
    """A model/training configuration value is missing, unknown or of the wrong type."""


_DEFAULTS: dict[str, Any] = {
    "voxel_size": 0.1,
    "point_range": [-80.0, -80.0, -6.0, 80.0, 80.0, 6.0],
    "point_features": ["intensity"],
    # The intensity scale the network was trained on; every input is rescaled to it
    # (ws3d_ros.data.intensity). Checkpoints without the key were trained on [0, 1].
    "intensity_range": [0.0, 1.0],
    "lidar_encoder": {
        "type": "minkunet",
        "stem_channels": 32,
        "encoder_channels": [32, 64, 128, 256],
        "decoder_channels": [128, 96, 96, 96],
        "blocks_per_stage": 1,
    },
    "clip": {
        "model": "ViT-B-16",
        "pretrained": "openai",
        "image_size": [384, 1248],
        "templates": [
            "a photo of a {}.",
            "a photo of the {}.",
            "a rendering of a {}.",
            "{} in a street scene.",
        ],
    },
    "fusion": {"type": "concat_mlp", "channels": 128},
    "head": {"temperature": 0.07, "learn_temperature": True, "predict_offsets": True},
    "grouping": {"radius": 0.5, "min_points": 8},
}

FUSION_TYPES = ("concat_mlp", "gated")


def merge_config(
    defaults: Mapping[str, Any],
    given: Mapping[str, Any],
    path: str = "",
    *,
    what: str = "config",
    opaque: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``defaults`` updated with ``given``: unknown keys and non-mapping sections raise
    :class:`ConfigError` naming the dotted key. Sections in ``opaque`` (dotted paths) are
    taken whole, for another schema to validate (e.g. ``model`` inside a training config)."""
    if not isinstance(given, Mapping):
        raise ConfigError(f"{path or what} must be a mapping, found {type(given).__name__}")
    out = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            raise ConfigError(f"unknown {what} key {where!r}; known: {sorted(defaults)}")
        if where in opaque:
            if not isinstance(value or {}, Mapping):
                raise ConfigError(f"{where} must be a mapping")
            out[key] = copy.deepcopy(dict(value or {}))
        elif isinstance(defaults[key], Mapping):
            out[key] = merge_config(defaults[key], value or {}, where, what=what, opaque=opaque)
        else:
            out[key] = value
    return out


@dataclass
class ModelConfig:
    """Typed view of the model config (see ``config/model.yaml`` for every key)."""

    raw: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(_DEFAULTS))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ModelConfig:
        cfg = cls(merge_config(_DEFAULTS, data or {}))
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> ModelConfig:
        import yaml

        path = Path(path) if path else PACKAGE_CONFIG
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read model config {path}: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    def with_overrides(self, **sections: Mapping[str, Any]) -> ModelConfig:
        """A copy with some sections/keys replaced, e.g. ``clip={"pretrained": "random"}``."""
        data = self.to_dict()
        for key, value in sections.items():
            if isinstance(value, Mapping) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        return ModelConfig.from_dict(data)

    def validate(self) -> None:
        r = self.raw
        if not (isinstance(r["voxel_size"], int | float) and r["voxel_size"] > 0):
            raise ConfigError(f"voxel_size must be a positive number, found {r['voxel_size']!r}")
        pr = r["point_range"]
        if not (isinstance(pr, list | tuple) and len(pr) == 6):
            raise ConfigError(f"point_range must have 6 numbers, found {pr!r}")
        if any(lo >= hi for lo, hi in zip(pr[:3], pr[3:], strict=True)):
            raise ConfigError(f"point_range minimum must be below maximum, found {pr!r}")
        if not all(isinstance(f, str) for f in r["point_features"]):
            raise ConfigError(f"point_features must be field names, found {r['point_features']!r}")
        ir = r["intensity_range"]
        if not (
            isinstance(ir, list | tuple)
            and len(ir) == 2
            and all(isinstance(v, int | float) for v in ir)
            and ir[0] < ir[1]
        ):
            raise ConfigError(f"intensity_range must be [lo, hi] with lo < hi, found {ir!r}")
        if r["fusion"]["type"] not in FUSION_TYPES:
            raise ConfigError(
                f"fusion.type must be one of {FUSION_TYPES}, found {r['fusion']['type']!r}"
            )
        size = r["clip"]["image_size"]
        if not (isinstance(size, list | tuple) and len(size) == 2 and min(size) >= 16):
            raise ConfigError(f"clip.image_size must be [H, W] >= 16, found {size!r}")
        if r["head"]["temperature"] <= 0:
            raise ConfigError("head.temperature must be > 0")

    # Convenience accessors used across the runtime and training.
    @property
    def voxel_size(self) -> float:
        return float(self.raw["voxel_size"])

    @property
    def point_range(self) -> tuple[list[float], list[float]]:
        pr = [float(v) for v in self.raw["point_range"]]
        return pr[:3], pr[3:]

    @property
    def point_features(self) -> tuple[str, ...]:
        return tuple(self.raw["point_features"])

    @property
    def intensity_range(self) -> tuple[float, float]:
        lo, hi = self.raw["intensity_range"]
        return float(lo), float(hi)

    @property
    def lidar_encoder(self) -> dict[str, Any]:
        return dict(self.raw["lidar_encoder"])

    @property
    def clip(self) -> dict[str, Any]:
        return dict(self.raw["clip"])

    @property
    def fusion(self) -> dict[str, Any]:
        return dict(self.raw["fusion"])

    @property
    def head(self) -> dict[str, Any]:
        return dict(self.raw["head"])

    @property
    def grouping(self) -> dict[str, Any]:
        return dict(self.raw["grouping"])

    @property
    def point_in_channels(self) -> int:
        """Per-point input width: offset to voxel centre (3) + point features."""
        return 3 + len(self.point_features)

    @property
    def voxel_in_channels(self) -> int:
        """Per-voxel input width: mean point input + voxel-centre height."""
        return self.point_in_channels + 1
