"""Training configuration: the typed form of ``training/configs/*.yaml``.

Contract:
- A training YAML has the sections ``model`` (a :class:`ModelConfig` mapping, merged over
  ``config/model.yaml``'s defaults), ``data``, ``labels``, ``augment``, ``losses``,
  ``optim`` and ``train``; every key is optional and defaults to :data:`DEFAULTS`.
  Unknown keys and wrong types raise :class:`ConfigError` naming the key.
- Each loss of :mod:`training.losses` (and the OTOC ``relation`` /
  WS3D++ ``boundary``, ``region_energy``, ``region_contrast``, ``text_align`` losses of
  :mod:`training.otoc.relation` / :mod:`training.ws3dpp`) is switched on by a positive
  ``weight``.
- ``labels.clicks_file`` (a clicks sidecar) and ``labels.pseudo_dir`` (OTOC pseudo
  labels) feed the training labels; ``train.init_from`` starts from a checkpoint's
  network weights; the ``otoc`` section drives One Thing One Click self-training
  (:mod:`training.otoc.self_training`; ``otoc.rounds > 0`` turns it on).
- :meth:`TrainConfig.with_overrides` applies dotted ``key=value`` overrides (the CLI's
  ``--set`` and flags such as ``--steps``) and revalidates.
- :meth:`TrainConfig.to_dict` round-trips; the checkpoint stores it so a run can be
  reproduced and resumed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ws3d_ros.models.config import ConfigError, ModelConfig, merge_config

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
        # m, voxel of the over-segmentation (indoor scans want ~0.05)
        "supervoxel_voxel_size": 0.2,
        "label_sidecars": None,  # SemanticKITTI labels/ dir when the bag has no labels topic
        # The sensor set (ws3d_ros.data.sensors; the same flags as ws3d infer/eval/info);
        # None: discovered from each bag / detected.
        "points": None,  # LiDAR topic
        "images": None,  # list of image topics (raw or compressed)
        "camera_info": None,  # list of camera_info topics, in images order
        "calibration": None,  # extrinsics YAML, KITTI calib.txt or nuScenes JSON
        "labels_topic": None,  # labels PointCloud2 (label [, instance])
        "label_map": None,  # learning map of raw label ids (config/label_maps/*.yaml)
        "intensity_range": None,  # [lo, hi] of the bags' intensity; None: detected
    },
    "labels": {
        "mode": "full",  # full | none | fraction | clicks | scribbles
        "fraction": 0.01,
        "clicks_per_object": 1,
        # clicks: a stuff region is a connected component (voxels of this size, m) of a
        # stuff class in the sweep; components under min_region_points get no click
        # (training.weak_labels.clicks_per_object). 0: one region per stuff class.
        "stuff_cell": 1.0,
        "min_region_points": 20,
        "scribble_width": 0.3,  # m, half-width of a scribble stroke
        "scribbles_per_object": 1,
        "seed": 0,
        # Issue 7: a clicks sidecar (ws3d_ros.data.clicks; rviz labeler or `ws3d clicks`)
        # whose clicks are the training labels of their sweeps (instead of GT draws), and
        # a directory of OTOC pseudo labels (<bag>@<stamp>.npy per cached frame) that
        # fill the points the weak labels leave unlabelled.
        "clicks_file": None,
        "pseudo_dir": None,
        # OTOC's initial labels: a click labels its whole supervoxel (the cache's
        # segments; training.weak_labels.expand_to_segments), before any pseudo labels.
        "expand_to_segments": False,
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
        # class_balance p: class weights (1 / frequency of the training labels)^p, so
        # with clicks it is OTOC's inverse click frequency (p = 1); 0: plain CE.
        "text_ce": {"weight": 1.0, "class_balance": 0.0},
        "contrastive": {"weight": 0.0, "temperature": 0.1, "feature": "fused"},
        "teacher_distill": {"weight": 0.0, "teacher": "clip", "hidden": 64},
        "offsets": {"weight": 1.0},
        # Candidate-set loss on the points without a training label, with one click per
        # object (labels.mode clicks): the thing classes otoc.thing_radius rules out away
        # from their clicks (round 0: per point; OTOC rounds: per supervoxel); no effect
        # without a thing radius.
        "partial_label": {"weight": 0.0},
        # One Thing One Click relation network (training.otoc.relation.RelationLoss).
        # detach_backbone: the relation MLP learns on the segmentation features without
        # its gradient reaching the 3D network (which then trains as without it).
        "relation": {
            "weight": 0.0,
            "hidden": 64,
            "dim": 32,
            "momentum": 0.9,
            "temperature": 0.1,
            "detach_backbone": False,
        },
        # WS3D++ region-aware losses (training.ws3dpp).
        "boundary": {"weight": 0.0, "hidden": 32, "cell": 0.3, "class_aware": True},
        "region_energy": {"weight": 0.0, "cell": 0.3},
        "region_contrast": {"weight": 0.0, "temperature": 0.1},
        "text_align": {
            "weight": 0.0,
            "temperature": 0.07,
            "scene_weight": 1.0,
            "region_weight": 1.0,
        },
    },
    "optim": {
        "lr": 0.003,
        "weight_decay": 0.01,
        "warmup_steps": 20,
        "min_lr_ratio": 0.05,
        "grad_clip": 10.0,
        # > 0: the saved model is the exponential moving average of the weights with this
        # decay (training.ema; 0.99 averages about the last 100 steps); 0: the last weights.
        "ema_decay": 0.0,
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
        # Start from this checkpoint's network weights (not its optimiser state): OTOC
        # self-training rounds fine-tune the previous round's model.
        "init_from": None,
    },
    # One Thing One Click self-training (training.otoc.self_training).
    "otoc": {
        # 0: plain training; R > 0: `ws3d train` runs rounds 0..R (clicks, then pseudo
        # labels propagated from the previous round) into RUN_DIR/round<r>.
        "rounds": 0,
        "method": "crf",  # crf | attention
        # Pseudo labels: per class, the keep_fraction most confident of the supervoxels
        # predicted as that class (over the round's frames), never below `confidence`.
        # unary_weight / keep_fraction: a number, or one per round 1..R (the last
        # repeats).
        "confidence": 0.5,
        "keep_fraction": 0.5,
        # With clicks spread over their supervoxels the round-0 network is a good unary
        # from round 1 on: on the simulated benchmark weight 0 (affinities alone) gave a
        # propagated field of 52 % accuracy / 37 mIoU, 0.5 gave 85 % / 55.
        "unary_weight": 0.5,
        "lam": 2.0,  # Potts weight of the CRF
        "iterations": 10,
        "affinity_tau": 0.2,
        "attention_tau": 0.1,
        "smoothing": 0.5,
        # One click per object: a thing class is only propagated to supervoxels within
        # this many metres (horizontally) of a click of that class in the sweep: one
        # number for every thing class, or {class name: metres} (about the widest such
        # object; others unlimited); 0 / {}: off. The points the pseudo labels leave out
        # get the classes it rules out as negatives when losses.partial_label.weight > 0.
        "thing_radius": 0.0,
        # Rounds >= 1: the points the pseudo labels leave out learn that their class is
        # among the fewest most probable classes of their supervoxel's propagated
        # distribution that hold this much of it (within the thing radius's classes;
        # 1.0: every class the radius permits; a number or one per round 1, 2, 3..).
        # Needs losses.partial_label.weight > 0.
        "candidate_mass": 1.0,
        # One click per object and per connected stuff region: a propagated region of a
        # class with no click of that class is dropped to its next-best class or left
        # unlabelled (training.otoc.click_regions). Only valid when every object of a
        # sweep was clicked. click_region_cell: region connectivity in metres (0:
        # labels.stuff_cell).
        "click_regions": False,
        "click_region_cell": 0.0,
        # Ground prior (training.otoc.ground_prior): supervoxels whose points lie at ground
        # level (>= ground_share of them within ground_height m of the lowest point in a
        # 3 x 3 window of ground_cell-m columns) take only these classes ([]: off).
        "ground_classes": [],
        "ground_height": 0.1,
        "ground_share": 0.9,
        "ground_cell": 2.0,
        # A thing label (a click spread over its supervoxel, a pseudo label) within this
        # many metres of the local ground (same window as the ground prior) is often the
        # ground under the object rather than its bottom: the point stays unlabelled and, in
        # rounds >= 1, learns "the thing or a ground class" (partial_label; ground_classes,
        # or every stuff class without them). Clicked points keep their click. 0: off.
        "thing_ground_height": 0.0,
        # losses.text_ce.class_balance of rounds >= 1 (pseudo labels are dense, so the
        # inverse point frequency is milder than round 0's inverse click frequency).
        "pseudo_class_balance": 0.5,
        # false: the last round trains without losses.relation (its relation network would
        # make no labels), so its loss is full supervision's plus the candidate sets.
        "last_round_relation": True,
        "finetune": True,  # start round r from round r-1's weights
        # Peak learning rate of rounds >= 1 relative to optim.lr when fine-tuning (a
        # trained network is nudged towards its new labels, not shaken up).
        "finetune_lr_scale": 1.0,
        "steps_per_round": 0,  # 0: train.steps
    },
}


def _parse_scalar(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


@dataclass
class TrainConfig:
    """Typed view of a training YAML; ``raw`` holds the merged mapping."""

    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainConfig:
        cfg = cls(merge_config(DEFAULTS, data or {}, what="training config", opaque=("model",)))
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
        if float(self.data["supervoxel_voxel_size"]) <= 0:
            raise ConfigError("data.supervoxel_voxel_size must be > 0")
        if int(self.data["num_shards"]) < 1:
            raise ConfigError("data.num_shards must be >= 1")
        if int(self.train["steps"]) < 1:
            raise ConfigError("train.steps must be >= 1")
        if not 0.0 <= float(self.optim["ema_decay"]) < 1.0:
            raise ConfigError("optim.ema_decay must be in [0, 1) (0: no weight average)")
        for name, section in self.losses.items():
            if float(section.get("weight", 0.0)) < 0:
                raise ConfigError(f"losses.{name}.weight must be >= 0")
        otoc = self.raw["otoc"]
        if otoc["method"] not in ("crf", "attention"):
            raise ConfigError(f"otoc.method must be crf or attention, found {otoc['method']!r}")
        if not 0.0 < float(otoc["confidence"]) <= 1.0:
            raise ConfigError("otoc.confidence must be in (0, 1]")
        for key, lo, hi in (("unary_weight", 0.0, math.inf), ("keep_fraction", 1e-9, 1.0)):
            vals = otoc[key] if isinstance(otoc[key], list) else [otoc[key]]
            if not vals or not all(
                isinstance(v, (int, float)) and lo <= float(v) <= hi for v in vals
            ):
                raise ConfigError(f"otoc.{key} must be a number or a list of numbers in "
                                  f"[{lo:g}, {hi:g}]")  # fmt: skip
        if float(self.losses["text_ce"].get("class_balance", 0.0)) < 0:
            raise ConfigError("losses.text_ce.class_balance must be >= 0")
        if float(otoc["thing_ground_height"]) < 0:
            raise ConfigError("otoc.thing_ground_height must be >= 0 m (0: off)")
        if float(otoc["click_region_cell"]) < 0:
            raise ConfigError("otoc.click_region_cell must be >= 0 m (0: labels.stuff_cell)")
        masses = otoc["candidate_mass"]
        masses = masses if isinstance(masses, list) else [masses]
        if not masses or not all(
            isinstance(v, (int, float)) and 0.0 < float(v) <= 1.0 for v in masses
        ):
            raise ConfigError("otoc.candidate_mass must be a number in (0, 1] (1: off) or a "
                              "list of them, one per round 1, 2, 3..")  # fmt: skip
        tr = otoc["thing_radius"]
        if isinstance(tr, dict):
            if not all(isinstance(v, (int, float)) and float(v) > 0 for v in tr.values()):
                raise ConfigError("otoc.thing_radius: every class's radius must be > 0 m")
        elif not isinstance(tr, (int, float)) or float(tr) < 0:
            raise ConfigError("otoc.thing_radius must be metres >= 0 or {class name: metres}")
        if int(otoc["rounds"]) < 0:
            raise ConfigError("otoc.rounds must be >= 0")
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


def sensors_of(data: Mapping[str, Any]) -> Any:
    """The :class:`~ws3d_ros.data.sensors.SensorSet` named by a config's ``data`` section."""
    from ws3d_ros.data.intensity import parse_range
    from ws3d_ros.data.sensors import SensorSet

    def topics(value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(t).strip() for t in items if str(t).strip())

    rng = data.get("intensity_range")
    return SensorSet(
        points=data.get("points"),
        images=topics(data.get("images")),
        camera_infos=topics(data.get("camera_info")),
        calibration=Path(data["calibration"]) if data.get("calibration") else None,
        labels=data.get("labels_topic"),
        label_sidecars=Path(data["label_sidecars"]) if data.get("label_sidecars") else None,
        label_map=Path(data["label_map"]) if data.get("label_map") else None,
        intensity_range=None if rng is None else parse_range(rng),
    )
