"""load_clip: random tiny towers, local checkpoints, and the offline "weights missing" errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network

import open_clip
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.clip import (
    CheckpointMismatchError,
    LoadedClip,
    UnsupportedModelError,
    WeightsNotFoundError,
    load_clip,
    resolve_pretrained_file,
)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_random_tiny_is_frozen_and_registered() -> None:
    loaded = load_clip("ws3d-tiny", "random")
    model, tokenizer, (mean, std) = loaded
    assert isinstance(loaded, LoadedClip)
    assert isinstance(model, open_clip.CLIP)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert mean == pytest.approx(OPENAI_DATASET_MEAN) and std == pytest.approx(OPENAI_DATASET_STD)
    assert tokenizer(["a photo of a car."]).shape == (1, 32)
    assert model.visual.proj.shape == (64, 64)
    assert {"ws3d-tiny", "ws3d-tiny-rn"} <= set(open_clip.list_models())


def test_random_init_is_reproducible_and_leaves_global_rng() -> None:
    state = torch.get_rng_state()
    a = load_clip("ws3d-tiny", "random").model
    b = load_clip("ws3d-tiny", "random").model
    c = load_clip("ws3d-tiny", "random", seed=1).model
    assert torch.equal(torch.get_rng_state(), state)
    assert _same_weights(a, b)
    assert not _same_weights(a, c)


def test_uncached_tag_gives_one_clear_error_without_network(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError) as info:
        load_clip("ViT-B-16", "openai", cache_dir=tmp_path)
    assert time.perf_counter() - start < 2.0  # no download attempt, no retry loop
    assert isinstance(info.value, Ws3dError)
    msg = str(info.value)
    # What is missing, the exact places searched, how to fetch it, how to point the config.
    assert "'ViT-B-16'" in msg and "'openai'" in msg
    assert str(tmp_path / "models--timm--vit_base_patch16_clip_224.openai") in msg
    assert str(tmp_path / "ViT-B-16.pt") in msg
    assert "create_model_and_transforms('ViT-B-16', pretrained='openai')" in msg
    assert "~/.cache/huggingface" in msg
    assert "clip.pretrained" in msg


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    path = tmp_path / "weights" / "clip.safetensors"
    with pytest.raises(WeightsNotFoundError, match="checkpoint file not found") as info:
        load_clip("ws3d-tiny", str(path))
    assert str(path) in str(info.value) and "clip.pretrained" in str(info.value)


def test_unknown_tag_lists_known_tags() -> None:
    with pytest.raises(WeightsNotFoundError, match="laion2b_s34b_b88k"):
        load_clip("ViT-B-16", "no_such_tag")


def test_unknown_architecture() -> None:
    with pytest.raises(UnsupportedModelError, match="ViT-B-16"):
        load_clip("ViT-B-61", "random")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_local_checkpoint_round_trip(tmp_path: Path, suffix: str) -> None:
    source = load_clip("ws3d-tiny", "random", seed=3).model
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    else:
        torch.save(source.state_dict(), path)
    loaded = load_clip("ws3d-tiny", str(path)).model
    assert _same_weights(loaded, source)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "rn.pt"
    torch.save(load_clip("ws3d-tiny-rn", "random").model.state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match="ws3d-tiny"):
        load_clip("ws3d-tiny", str(path))


def test_cached_tag_is_found_offline(tmp_path: Path) -> None:
    # The Hugging Face hub cache layout: refs/main -> snapshots/<commit>/<file>.
    repo = tmp_path / "models--timm--vit_base_patch16_clip_224.openai"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "open_clip_pytorch_model.bin").write_bytes(b"x")
    path, _ = resolve_pretrained_file("ViT-B-16", "openai", cache_dir=tmp_path)
    assert path == snap / "open_clip_pytorch_model.bin"
    # The safetensors sibling is preferred, as open_clip does.
    (snap / "open_clip_model.safetensors").write_bytes(b"x")
    path, _ = resolve_pretrained_file("ViT-B-16", "openai", cache_dir=tmp_path)
    assert path == snap / "open_clip_model.safetensors"


def test_url_cache_is_used_when_hub_cache_misses(tmp_path: Path) -> None:
    (tmp_path / "ViT-B-16.pt").write_bytes(b"x")
    path, searched = resolve_pretrained_file("ViT-B-16", "openai", cache_dir=tmp_path)
    assert path == tmp_path / "ViT-B-16.pt"
    assert len(searched) == 3


def test_crafted_clip_checkpoint_is_refused_unread(tmp_path: Path) -> None:
    from tests.crafted import crafted_checkpoint
    from ws3d_ros.models.clip import UnsafeCheckpointError

    marker = tmp_path / "marker"
    path = crafted_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load it") as err:
        load_clip("ws3d-tiny", str(path))
    assert not marker.exists() and "\n" not in str(err.value)
