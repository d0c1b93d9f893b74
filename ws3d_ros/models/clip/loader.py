"""Load an open_clip model, its tokenizer and its image normalisation, offline.

Contract
--------
``load_clip(model, pretrained, *, cache_dir=None, device="cpu")`` returns a
:class:`LoadedClip` ``(model, tokenizer, norm)`` where ``norm`` is an
:class:`ImageNorm` ``(mean, std)`` of RGB values in [0, 1]. The model is in
eval mode with ``requires_grad`` off everywhere: the project uses CLIP frozen.

``pretrained`` is one of

- ``"random"``: random init (tests, the offline demo);
- an open_clip pretrained tag (``"openai"``, ``"laion2b_s34b_b88k"``, ...): the
  tag's file is looked up in the local caches only (Hugging Face hub cache,
  then open_clip's URL cache ``~/.cache/clip``), never downloaded;
- a path to a checkpoint file (``.pt``, ``.pth``, ``.bin``, ``.safetensors``).

Missing weights raise :class:`WeightsNotFoundError` with one message that says
what is missing, where it looked, how to fetch it on a connected machine and
how to point ``clip.pretrained`` at a local file. Nothing here touches the
network: a tag's file is resolved with ``huggingface_hub.try_to_load_from_cache``
and a plain file check, then handed to open_clip as a local path. Checkpoint files are
read with ``weights_only=True``; one holding other pickled objects (it could run code)
raises :class:`UnsafeCheckpointError` unread.

Besides open_clip's own architectures, this module registers small ones for
tests and the demo (see :data:`TINY_CONFIGS`): ``ws3d-tiny`` (ViT) and
``ws3d-tiny-rn`` (ModifiedResNet). They are registered through
``open_clip.add_model_config`` on import, so ``open_clip.create_model`` and
``open_clip.get_tokenizer`` know them too.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import open_clip
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from ws3d_ros.models.clip.errors import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    UnsupportedModelError,
    WeightsNotFoundError,
)

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "RANDOM",
    "TINY_CONFIGS",
    "ImageNorm",
    "LoadedClip",
    "load_clip",
    "register_tiny_configs",
    "resolve_pretrained_file",
]

_LOG = logging.getLogger(__name__)

RANDOM = "random"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz")

# Small architectures the project builds itself. Sizes are picked so that a
# CPU forward at a few hundred pixels takes milliseconds: two 64-wide layers
# with 32-wide heads, and a short text context (prompts are a few words).
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "ws3d-tiny": {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 64,
            "layers": 2,
            "width": 64,
            "head_width": 32,
            "patch_size": 16,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    },
    "ws3d-tiny-rn": {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 64,
            "layers": [1, 1, 1, 1],
            "width": 8,
            "head_width": 32,
            "patch_size": None,
        },
        "text_cfg": {
            "context_length": 32,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    },
}


class ImageNorm(NamedTuple):
    """Per-channel RGB mean and std (of values scaled to [0, 1]) the image tower expects."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class LoadedClip(NamedTuple):
    """What :func:`load_clip` returns; unpacks as ``model, tokenizer, (mean, std)``."""

    model: torch.nn.Module
    tokenizer: Any
    norm: ImageNorm


def register_tiny_configs() -> None:
    """Make :data:`TINY_CONFIGS` known to open_clip (idempotent).

    open_clip's public hook takes JSON files; they are written to a throw-away
    folder, read once by ``add_model_config`` and deleted (the registry keeps
    the parsed dicts, and a later rescan skips the vanished folder).
    """
    known = set(open_clip.list_models())
    missing = {name: cfg for name, cfg in TINY_CONFIGS.items() if name not in known}
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix="ws3d_clip_cfg_") as tmp:
        for name, cfg in missing.items():
            (Path(tmp) / f"{name}.json").write_text(json.dumps(cfg), encoding="utf-8")
        open_clip.add_model_config(tmp)


register_tiny_configs()


def _hf_cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _url_cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    # Same default as open_clip.pretrained.download_pretrained_from_url.
    return Path(cache_dir) if cache_dir is not None else Path("~/.cache/clip").expanduser()


def _hf_candidates(filename: str) -> list[str]:
    # open_clip prefers a .safetensors sibling of the named file when the hub has one.
    names: list[str] = []
    if filename == "open_clip_pytorch_model.bin":
        names.append("open_clip_model.safetensors")
    elif filename.endswith((".bin", ".pth")):
        names.append(filename[:-4] + ".safetensors")
    names.append(filename)
    return names


def resolve_pretrained_file(
    model: str, tag: str, *, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[Path | None, list[str]]:
    """Find the local file of open_clip pretrained ``tag`` for ``model`` without the network.

    Returns ``(path or None, searched)`` where ``searched`` lists every place
    looked at (for the error message).
    """
    cfg = open_clip.get_pretrained_cfg(model, tag)
    searched: list[str] = []
    if cfg.get("file"):
        searched.append(str(cfg["file"]))
        if Path(cfg["file"]).is_file():
            return Path(cfg["file"]), searched
    hf_hub = cfg.get("hf_hub", "")
    if hf_hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hf_hub)
        filename = filename or "open_clip_pytorch_model.bin"
        root = _hf_cache_root(cache_dir)
        repo_dir = root / ("models--" + repo_id.replace("/", "--"))
        for name in _hf_candidates(filename):
            searched.append(f"{repo_dir}/snapshots/*/{name}")
            hit = try_to_load_from_cache(repo_id, name, cache_dir=str(root))
            if isinstance(hit, str) and Path(hit).is_file():
                return Path(hit), searched
    url = cfg.get("url", "")
    if url:
        target = _url_cache_root(cache_dir) / os.path.basename(url)
        searched.append(str(target))
        if target.is_file():
            return target, searched
    return None, searched


def _fetch_hint(model: str, tag: str) -> str:
    return (
        "On a machine with network access run\n"
        f'    python -c "import open_clip; '
        f"open_clip.create_model_and_transforms('{model}', pretrained='{tag}')\"\n"
        "  then copy ~/.cache/huggingface (and ~/.cache/clip if it exists) to the same place "
        "on this machine (or set HF_HOME / pass cache_dir)."
    )


def _config_hint(model: str) -> str:
    return (
        "Or point config `clip.pretrained` at a local checkpoint file of the "
        f"'{model}' architecture (.pt/.pth/.bin/.safetensors), e.g.\n"
        "    clip:\n"
        f"      model: {model}\n"
        "      pretrained: /path/to/open_clip_pytorch_model.bin\n"
        f"  or use `pretrained: {RANDOM}` for random init (labels then only as good as training)."
    )


def _norm_from(model: torch.nn.Module, tag_cfg: dict[str, Any]) -> ImageNorm:
    pp = open_clip.get_model_preprocess_cfg(model)
    mean = tag_cfg.get("mean") or pp.get("mean") or OPENAI_DATASET_MEAN
    std = tag_cfg.get("std") or pp.get("std") or OPENAI_DATASET_STD
    return ImageNorm(
        tuple(float(v) for v in mean),  # type: ignore[arg-type]
        tuple(float(v) for v in std),  # type: ignore[arg-type]
    )


def _check_model_name(model: str) -> None:
    if open_clip.get_model_config(model) is None:
        close = difflib.get_close_matches(model, open_clip.list_models(), n=5)
        hint = f" Did you mean one of {close}?" if close else ""
        raise UnsupportedModelError(
            f"Unknown CLIP architecture '{model}' (config `clip.model`).{hint} "
            f"Known: open_clip's built-ins (open_clip.list_models()) and {sorted(TINY_CONFIGS)}."
        )


def _looks_like_path(pretrained: str) -> bool:
    return (
        os.sep in pretrained
        or "/" in pretrained
        or pretrained.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(pretrained).expanduser().exists()
    )


class _NoRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _quiet_random_init(active: bool) -> Iterator[None]:
    """Random init is asked for on purpose here: drop open_clip's root-logger warning."""
    root = logging.getLogger()
    filt = _NoRandomInitWarning()
    if active:
        root.addFilter(filt)
    try:
        yield
    finally:
        root.removeFilter(filt)


def load_clip(
    model: str,
    pretrained: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> LoadedClip:
    """Build open_clip architecture ``model`` with weights ``pretrained`` (see module doc).

    Raises :class:`UnsupportedModelError` for an unknown architecture,
    :class:`WeightsNotFoundError` when the weights are not on disk and
    :class:`CheckpointMismatchError` when a file does not fit the architecture.
    ``seed`` fixes the random init (``"random"``, and any tower a checkpoint
    leaves out) so that every process builds the same weights; the global RNG
    state is left as it was.
    """
    register_tiny_configs()
    _check_model_name(model)
    tag_cfg: dict[str, Any] = {}
    checkpoint: Path | None = None
    if pretrained.strip().lower() == RANDOM:
        pass
    elif open_clip.get_pretrained_cfg(model, pretrained):
        tag_cfg = open_clip.get_pretrained_cfg(model, pretrained)
        checkpoint, searched = resolve_pretrained_file(model, pretrained, cache_dir=cache_dir)
        if checkpoint is None:
            raise WeightsNotFoundError(
                f"CLIP weights not found: open_clip model '{model}' with pretrained tag "
                f"'{pretrained}' is not in the local cache (nothing is downloaded here).\n"
                f"  Searched: {'; '.join(searched)}\n  {_fetch_hint(model, pretrained)}\n  "
                f"{_config_hint(model)}"
            )
    elif _looks_like_path(pretrained):
        checkpoint = Path(pretrained).expanduser()
        if not checkpoint.is_file():
            raise WeightsNotFoundError(
                f"CLIP checkpoint file not found: {checkpoint.resolve()} "
                f"(config `clip.pretrained` for model '{model}').\n  "
                "Copy the file there, or use an open_clip pretrained tag instead. "
                f"{_fetch_hint(model, 'openai')}\n  "
                f"{_config_hint(model)}"
            )
    else:
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise WeightsNotFoundError(
            f"CLIP weights not found: '{pretrained}' is neither a pretrained tag of open_clip "
            f"model '{model}' (known tags: {tags or 'none'}) nor an existing checkpoint file.\n  "
            f"{_config_hint(model)}"
        )

    kwargs: dict[str, Any] = {}
    preprocess = {
        k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg
    }
    if preprocess:
        # Loading a tag's file as a plain path drops the tag's preprocessing; keep it on the model.
        kwargs["force_preprocess_cfg"] = preprocess
    if tag_cfg.get("quick_gelu"):
        # open_clip only warns when e.g. ViT-B-16 + 'openai' lacks QuickGELU; the
        # weights were trained with it, so build the matching activation.
        kwargs["force_quick_gelu"] = True
    try:
        # Same "random" weights in every process (train, export and node must agree);
        # fork_rng leaves the caller's global RNG state untouched.
        with torch.random.fork_rng(devices=[]), _quiet_random_init(checkpoint is None):
            torch.manual_seed(seed)
            clip = open_clip.create_model(
                model,
                pretrained=str(checkpoint) if checkpoint is not None else None,
                device=device,
                cache_dir=None if cache_dir is None else str(cache_dir),
                weights_only=True,  # a checkpoint file must not run code (no pickle objects)
                **kwargs,
            )
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused an object
        raise UnsafeCheckpointError(
            f"CLIP checkpoint {checkpoint} holds objects other than tensors and plain "
            "containers; refusing to load it (it may run code)"
        ) from exc
    except (RuntimeError, KeyError, ValueError) as exc:
        if checkpoint is None:
            raise
        raise CheckpointMismatchError(
            f"Checkpoint {checkpoint} does not fit open_clip model '{model}': {exc}\n  "
            "Set `clip.model` to the architecture the checkpoint was trained with."
        ) from exc
    clip.eval().requires_grad_(False)
    try:
        tokenizer = open_clip.get_tokenizer(
            model, cache_dir=None if cache_dir is None else str(cache_dir)
        )
    except Exception as exc:  # HF tokenizers need their cached files; say so plainly
        raise WeightsNotFoundError(
            f"Tokenizer for open_clip model '{model}' could not be loaded offline: {exc}\n  "
            f"{_fetch_hint(model, pretrained)}"
        ) from exc
    if checkpoint is not None:
        _LOG.info("loaded CLIP %s weights from %s", model, checkpoint)
    return LoadedClip(clip, tokenizer, _norm_from(clip, tag_cfg))
