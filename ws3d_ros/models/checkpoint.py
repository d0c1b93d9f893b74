"""The project's model checkpoint: what ``ws3d train`` writes and every backend loads.

Contract:
- A checkpoint is one ``torch.save`` file holding ``format`` (``ws3d-checkpoint/1``), the
  model ``config`` (:meth:`ModelConfig.to_dict`), ``embed_dim``, the 3D network's
  ``state_dict`` (or ``None`` for a CLIP-only model), the CLIP spec (``config.clip``) and,
  when CLIP was random-initialised, the CLIP weights themselves (random weights cannot
  be re-downloaded; real pretrained weights are NOT copied: they load from the user's
  cache by tag or path), plus free-form ``meta`` (training step, vocabulary, metrics).
- :func:`save_checkpoint` writes atomically (temporary file + rename), so a kill mid-write
  never leaves a truncated checkpoint behind.
- :func:`load_model` rebuilds :class:`LoadedModel` (network in eval mode, CLIP towers);
  a missing, foreign or corrupt file raises :class:`CheckpointError` saying which.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.config import ModelConfig

FORMAT = "ws3d-checkpoint/1"


class CheckpointError(Ws3dError):
    """A checkpoint is missing, unreadable or not a ws3d_ros checkpoint."""


@dataclass
class LoadedModel:
    config: ModelConfig
    clip: Any  # ws3d_ros.models.clip.loader.LoadedClip
    net: torch.nn.Module | None
    embed_dim: int
    meta: dict[str, Any] = field(default_factory=dict)


def clip_embed_dim(clip_model: torch.nn.Module) -> int:
    proj = getattr(clip_model, "text_projection", None)
    if isinstance(proj, torch.Tensor):
        return int(proj.shape[1])
    if isinstance(proj, torch.nn.Linear):
        return int(proj.out_features)
    return int(clip_model.visual.output_dim)


def load_clip_for(config: ModelConfig, *, device: str = "cpu", state: dict | None = None) -> Any:
    from ws3d_ros.models.clip.loader import load_clip

    spec = config.clip
    clip = load_clip(spec["model"], str(spec["pretrained"]), device=device)
    if state is not None:
        clip.model.load_state_dict(state)
    clip.model.eval()
    for p in clip.model.parameters():
        p.requires_grad_(False)
    return clip


def build_model(config: ModelConfig, *, device: str = "cpu", with_net: bool = True) -> LoadedModel:
    """A fresh model (random 3D weights) for ``config``."""
    from ws3d_ros.models.network import PanopticNet

    clip = load_clip_for(config, device=device)
    dim = clip_embed_dim(clip.model)
    net = PanopticNet(config, dim).to(device) if with_net else None
    return LoadedModel(config, clip, net, dim)


def save_checkpoint(
    path: str | Path,
    model: LoadedModel,
    *,
    meta: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    random_clip = str(model.config.clip["pretrained"]).strip().lower() == "random"
    payload = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "embed_dim": model.embed_dim,
        "net": None if model.net is None else model.net.state_dict(),
        "clip_state": model.clip.model.state_dict() if random_clip else None,
        "meta": dict(meta or {}),
        **(extra or {}),
    }
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt zip, pickle error, truncated file
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ws3d_ros checkpoint (format {FORMAT})")
    return data


def load_model(path: str | Path, *, device: str = "cpu") -> LoadedModel:
    data = read_checkpoint(path)
    config = ModelConfig.from_dict(data["config"])
    clip = load_clip_for(config, device=device, state=data.get("clip_state"))
    dim = int(data["embed_dim"])
    net = None
    if data.get("net") is not None:
        from ws3d_ros.models.network import PanopticNet

        net = PanopticNet(config, dim)
        try:
            net.load_state_dict(data["net"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the stored config: {exc}") from exc
        net.to(device).eval()
    return LoadedModel(config, clip, net, dim, dict(data.get("meta") or {}))


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
