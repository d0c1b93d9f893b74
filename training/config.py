"""Training configuration: the typed form of ``training/configs/*.yaml``.

Contract:
- A training YAML has the sections ``model`` (a :class:`ModelConfig` mapping, merged over
  ``config/model.yaml``'s defaults), ``data``, ``labels``, ``augment``, ``losses``,
  ``optim`` and ``train``; every key is optional and defaults to :data:`DEFAULTS`.
  Unknown keys and wrong types raise :class:`ConfigError` naming the key.
- Each loss of :mod:`training.losses` is switched on by a positive ``weight``.
- :meth:`TrainConfig.with_overrides` applies dotted ``key=value`` overrides (the CLI's
  ``--set`` and flags such as ``--steps``) and revalidates.
- :meth:`TrainConfig.to_dict` round-trips; the checkpoint stores it so a run can be
  reproduced and resumed.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ws3d_ros.models.config import ConfigError, ModelConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

LABEL_MODES = ("full", "none", "fraction", "clicks", "scribbles")
SEGMENT_SOURCES = ("instances", "supervoxels")

DEFAULTS: dict[str, Any] = {
    "model": {},
    "data": {
        # Frames of each bag whose time is in the last `val_fraction` of the bag are held
        # out for validation (deterministic); `val_bags` are held out whole.
        "val_fraction": 0.0,
        "val_bags": [],
        "num_shards": 4,
        "cache_dir": None,  # default: <RUN_DIR>/cache
        "max_frames_per_bag": 0,  # 0: all
        "frame_stride": 1,  # keep every k-th synchronised frame
        "supervoxel_size": 1.0,  # m, seed resolution of the cached over-segmentation
        "label_sidecars": None,  # SemanticKITTI labels/ dir when the bag has no labels topic
    },
    "labels": {
        "mode": "full",  # full | none | fraction | clicks | scribbles
        "fraction": 0.01,
        "clicks_per_object": 1,
        "scribble_width": 0.3,  # m, half-width of a scribble stroke
        "scribbles_per_object": 1,
        "seed": 0,
    },
    "augment": {
        "fovmix_prob": 0.0,
        "modality_dropout": 0.2,  # probability of dropping every CLIP row of a frame
        "row_dropout": 0.1,  # probability of dropping one CLIP row otherwise
        "rotate_z": True,
        "scale": [0.95, 1.05],
        "flip_y": True,
        # Train the point heads on at most this many random points of a sweep per step
        # (the voxel U-Net still sees every point; labelled points are always kept);
        # 0: all points. Cuts CPU time.
        "max_points": 0,
    },
    "losses": {
        "voxel_distill": {"weight": 1.0},
        "object_distill": {"weight": 0.5, "segments": "instances", "min_points": 5},
        "text_ce": {"weight": 1.0},
        "contrastive": {"weight": 0.0, "temperature": 0.1, "feature": "fused"},
        "teacher_distill": {"weight": 0.0, "teacher": "clip", "hidden": 64},
        "offsets": {"weight": 1.0},
    },
    "optim": {
        "lr": 0.003,
        "weight_decay": 0.01,
        "warmup_steps": 20,
        "min_lr_ratio": 0.05,
        "grad_clip": 10.0,
        "batch_frames": 1,
    },
    "train": {
        "steps": 300,
        "seed": 0,
        "checkpoint_every": 100,
        "log_every": 10,
        "eval_every": 0,  # 0: only at the end
        "eval_frames": 8,  # validation frames scored at each evaluation
        "amp": True,  # only ever used on CUDA
        "device": "auto",  # auto | cpu | cuda[:N]
        # torch intra-op threads on CPU (0: torch's default). 1 avoids OpenMP
        # oversubscription when other processes (or DDP ranks) share the cores.
        "cpu_threads": 1,
    },
}


def _merge(defaults: Mapping[str, Any], given: Mapping[str, Any], path: str) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise ConfigError(f"{path or 'config'} must be a mapping, found {type(given).__name__}")
    out = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            raise ConfigError(f"unknown training config key {where!r}; known: {sorted(defaults)}")
        if where == "model":  # validated by ModelConfig, not by these defaults
            if not isinstance(value or {}, Mapping):
                raise ConfigError("model must be a mapping of model config keys")
            out[key] = copy.deepcopy(dict(value or {}))
        elif isinstance(defaults[key], Mapping):
            out[key] = _merge(defaults[key], value or {}, where)
        else:
            out[key] = value
    return out


def _parse_scalar(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


@dataclass
class TrainConfig:
    """Typed view of a training YAML; ``raw`` holds the merged mapping."""

    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainConfig:
        cfg = cls(_merge(DEFAULTS, data or {}, ""))
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        path = Path(path)
        if not path.is_file():  # a packaged config by name: "demo_quick" or "demo_quick.yaml"
            for candidate in (CONFIG_DIR / path.name, CONFIG_DIR / f"{path.name}.yaml"):
                if candidate.is_file():
                    path = candidate
                    break
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from exc
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.raw)

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """``{"optim.lr": 1e-3, "labels.mode": "clicks"}`` (strings are parsed as YAML)."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            if isinstance(value, str):
                value = _parse_scalar(value)
            keys = dotted.split(".")
            node = data
            for k in keys[:-1]:
                if not isinstance(node.get(k), dict):
                    node[k] = {}
                node = node[k]
            node[keys[-1]] = value
        return TrainConfig.from_dict(data)

    def validate(self) -> None:
        self.model_config()  # raises ConfigError on a bad model section
        mode = self.labels["mode"]
        if mode not in LABEL_MODES:
            raise ConfigError(f"labels.mode must be one of {LABEL_MODES}, found {mode!r}")
        if not 0.0 < float(self.labels["fraction"]) <= 1.0:
            raise ConfigError("labels.fraction must be in (0, 1]")
        if int(self.labels["clicks_per_object"]) < 1:
            raise ConfigError("labels.clicks_per_object must be >= 1")
        seg = self.losses["object_distill"]["segments"]
        if seg not in SEGMENT_SOURCES:
            raise ConfigError(f"losses.object_distill.segments must be one of {SEGMENT_SOURCES}")
        if not 0.0 <= float(self.data["val_fraction"]) < 1.0:
            raise ConfigError("data.val_fraction must be in [0, 1)")
        if int(self.data["num_shards"]) < 1:
            raise ConfigError("data.num_shards must be >= 1")
        if int(self.train["steps"]) < 1:
            raise ConfigError("train.steps must be >= 1")
        for name, section in self.losses.items():
            if float(section.get("weight", 0.0)) < 0:
                raise ConfigError(f"losses.{name}.weight must be >= 0")
        for key in ("fovmix_prob", "modality_dropout", "row_dropout"):
            if not 0.0 <= float(self.augment[key]) <= 1.0:
                raise ConfigError(f"augment.{key} must be in [0, 1]")

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_yaml().with_overrides(**self.raw["model"])

    @property
    def data(self) -> dict[str, Any]:
        return self.raw["data"]

    @property
    def labels(self) -> dict[str, Any]:
        return self.raw["labels"]

    @property
    def augment(self) -> dict[str, Any]:
        return self.raw["augment"]

    @property
    def losses(self) -> dict[str, Any]:
        return self.raw["losses"]

    @property
    def optim(self) -> dict[str, Any]:
        return self.raw["optim"]

    @property
    def train(self) -> dict[str, Any]:
        return self.raw["train"]

    def loss_on(self, name: str) -> bool:
        return float(self.losses[name].get("weight", 0.0)) > 0.0
