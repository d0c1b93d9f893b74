"""The project's model checkpoint: what ``ws3d train`` writes and every backend loads.

Contract:
- A checkpoint is one ``torch.save`` file holding ``format`` (``ws3d-checkpoint/1``), the
  model ``config`` (:meth:`ModelConfig.to_dict`), ``embed_dim``, the 3D network's
  ``state_dict`` (or ``None`` for a CLIP-only model), the CLIP spec (``config.clip``) and,
  when CLIP was random-initialised, the CLIP weights themselves (random weights cannot
  be re-downloaded; real pretrained weights are NOT copied: they load from the user's
  cache by tag or path), plus free-form ``meta`` (training step, vocabulary, metrics).
- Untrusted input: a checkpoint is read with ``torch.load(weights_only=True)``, so a
  crafted pickle can hold no code that runs on load; the payload may contain only tensors
  and plain containers (dict, list, tuple, str, int, float, bool, None).
  :func:`save_checkpoint` converts numpy values and paths to those and refuses anything
  else, so every checkpoint it writes loads that way.
- :func:`save_checkpoint` writes atomically (temporary file ``.NAME.tmpPID`` + rename), so
  a kill mid-write never leaves a truncated checkpoint behind;
  :func:`remove_orphaned_temps` deletes the temporaries of writers that died.
- :func:`read_checkpoint` checks the required keys and their types; :func:`load_model`
  rebuilds :class:`LoadedModel` (network in eval mode, CLIP towers). A missing, foreign,
  unsafe, incomplete or corrupt file raises :class:`CheckpointError` with one line saying
  which.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.config import ModelConfig
from ws3d_ros.output_dirs import pid_alive

FORMAT = "ws3d-checkpoint/1"
# key -> accepted types of a checkpoint's top-level values (``None`` where optional).
REQUIRED_KEYS: dict[str, tuple[type, ...]] = {
    "config": (dict,),
    "embed_dim": (int,),
    "net": (dict, type(None)),
    "clip_state": (dict, type(None)),
    "meta": (dict,),
}
_TEMP_RE = re.compile(r"^\..+\.tmp(\d+)$")


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


def plain(value: Any, where: str = "checkpoint") -> Any:
    """``value`` as tensors and plain containers only (what ``weights_only`` loads).

    numpy arrays become tensors, numpy scalars Python numbers, paths strings; any other
    object raises ``TypeError`` naming where it sits.
    """
    import numpy as np

    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    for kind in (bool, int, float, str):  # subclasses (IntEnum, ...) pickle their class
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, OrderedDict):  # a state_dict: keep its type and version metadata
        out = OrderedDict((k, plain(v, f"{where}[{k!r}]")) for k, v in value.items())
        if hasattr(value, "_metadata"):
            out._metadata = plain(value._metadata, f"{where}._metadata")  # type: ignore[attr-defined]
        return out
    if isinstance(value, dict):
        return {k: plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(f"{where}: {type(value).__name__} cannot be saved in a checkpoint")


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
    payload = plain(payload)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_orphaned_temps(directory: str | Path) -> list[Path]:
    """Delete ``.NAME.tmpPID`` files in ``directory`` whose writer process is gone.

    These are what :func:`save_checkpoint` leaves when killed between write and rename.
    Returns the removed paths.
    """
    removed: list[Path] = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        m = _TEMP_RE.match(entry.name)
        if m and entry.is_file() and not entry.is_symlink() and not pid_alive(int(m[1])):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _one_line(exc: object, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused an object
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain containers; "
            "refusing to load it (it may run code): "
            f"{_one_line(str(exc).split('WeightsUnpickler error:')[-1])}"
        ) from exc
    except Exception as exc:  # corrupt zip, truncated file
        raise CheckpointError(f"checkpoint {path} cannot be read: {_one_line(exc)}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ws3d_ros checkpoint (format {FORMAT})")
    for key, types in REQUIRED_KEYS.items():
        if key not in data:
            raise CheckpointError(f"checkpoint {path} lacks the key {key!r}")
        if not isinstance(data[key], types) or isinstance(data[key], bool):
            raise CheckpointError(
                f"checkpoint {path}: {key!r} is a {type(data[key]).__name__}, expected "
                + " or ".join(t.__name__ for t in types)
            )
    return data


def load_model(path: str | Path, *, device: str = "cpu") -> LoadedModel:
    data = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(data["config"])
    except Ws3dError as exc:
        raise CheckpointError(f"checkpoint {path}: bad model config: {_one_line(exc)}") from exc
    try:
        clip = load_clip_for(config, device=device, state=data.get("clip_state"))
    except RuntimeError as exc:  # load_state_dict: missing/unexpected/mis-shaped tensors
        raise CheckpointError(
            f"checkpoint {path}: CLIP weights do not fit the stored config: {_one_line(exc)}"
        ) from exc
    dim = int(data["embed_dim"])
    net = None
    if data.get("net") is not None:
        from ws3d_ros.models.network import PanopticNet

        net = PanopticNet(config, dim)
        try:
            net.load_state_dict(data["net"])
        except RuntimeError as exc:
            raise CheckpointError(
                f"checkpoint {path}: weights do not fit the stored config: {_one_line(exc)}"
            ) from exc
        net.to(device).eval()
    return LoadedModel(config, clip, net, dim, dict(data.get("meta") or {}))


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
