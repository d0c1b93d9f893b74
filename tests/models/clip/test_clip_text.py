"""TextEncoder: prompt ensembling, per-name cache, determinism, input checks."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ws3d_ros.models.clip import ClipInputError, TextEncoder, load_clip

TEMPLATES = ("a photo of a {}.", "a rendering of a {}.", "{} in a street scene.")


@pytest.fixture(scope="module")
def clip() -> tuple:
    model, tokenizer, _ = load_clip("ws3d-tiny", "random")
    return model, tokenizer


class _CountingTower:
    """Records the batch size of every run of the text transformer (a forward hook)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.batches: list[int] = []
        self.handle = model.transformer.register_forward_hook(self._hook)

    def _hook(self, _module: torch.nn.Module, args: tuple, _out: torch.Tensor) -> None:
        self.batches.append(int(args[0].shape[0]))


def test_shape_and_unit_norm(clip: tuple) -> None:
    enc = TextEncoder(*clip)
    emb = enc.encode(["car", "pedestrian", "tree"], TEMPLATES)
    assert emb.shape == (3, 64) and emb.dtype == torch.float32 and enc.dim == 64
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))


def test_prompt_ensemble_matches_reference(clip: tuple) -> None:
    model, tokenizer = clip
    with torch.no_grad():
        feats = model.encode_text(tokenizer([t.format("stroller") for t in TEMPLATES]))
    ref = F.normalize(F.normalize(feats, dim=-1).mean(0), dim=0)
    got = TextEncoder(model, tokenizer).encode(["stroller"], TEMPLATES)[0]
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)


def test_cache_encodes_only_new_names(clip: tuple) -> None:
    model, tokenizer = clip
    tower = _CountingTower(model)
    enc = TextEncoder(model, tokenizer)
    first = enc.encode(["car", "tree"], TEMPLATES)
    assert tower.batches == [3, 3]  # one call per name, one row per template
    second = enc.encode(["car", "tree", "stroller"], TEMPLATES)
    assert tower.batches == [3, 3, 3]  # only "stroller" ran
    assert torch.equal(second[:2], first)
    enc.encode(["tree", "car", "car"], TEMPLATES)
    assert len(tower.batches) == 3  # all cached, duplicates included
    enc.encode(["car"], TEMPLATES[:1])  # other templates: a new entry
    assert tower.batches[-1] == 1 and enc.tower_calls == 4 and enc.prompts_encoded == 10
    assert enc.cached("car", TEMPLATES) and not enc.cached("bus", TEMPLATES)
    tower.handle.remove()


def test_truncated_tower_matches_full_context(clip: tuple) -> None:
    model, tokenizer = clip
    tokens = tokenizer(["a photo of a traffic light.", "a car", "{} in a street scene."])
    enc = TextEncoder(model, tokenizer)
    with torch.no_grad():
        full = model.encode_text(tokens)
        cut = enc._tower(tokens)
    torch.testing.assert_close(cut, full, atol=1e-5, rtol=1e-5)


def test_deterministic_and_independent_of_vocabulary(clip: tuple) -> None:
    alone = TextEncoder(*clip).encode(["car"], TEMPLATES)[0]
    among = TextEncoder(*clip).encode(["tree", "bus", "car", "road"], TEMPLATES)[2]
    assert torch.equal(alone, among)


def test_encode_numpy(clip: tuple) -> None:
    enc = TextEncoder(*clip)
    arr = enc.encode_numpy(["car", "tree"], TEMPLATES)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (2, 64)
    np.testing.assert_array_equal(arr, enc.encode(["car", "tree"], TEMPLATES).numpy())


def test_returned_rows_do_not_alias_cache(clip: tuple) -> None:
    enc = TextEncoder(*clip)
    emb = enc.encode(["car"], TEMPLATES)
    emb.zero_()
    assert enc.encode(["car"], TEMPLATES).norm() > 0.5


def test_empty_vocabulary(clip: tuple) -> None:
    assert TextEncoder(*clip).encode([], TEMPLATES).shape == (0, 64)


@pytest.mark.parametrize(
    ("names", "templates", "match"),
    [
        (["car"], ["a photo"], "no '{}'"),
        (["car"], [], "at least one"),
        (["car"], "a photo of a {}.", "single string"),
        (["car"], ["a {name}"], "not a format string"),
        (["car", " "], TEMPLATES, "non-empty"),
        ("car", TEMPLATES, "single string"),
    ],
)
def test_bad_input(clip: tuple, names: object, templates: object, match: str) -> None:
    with pytest.raises(ClipInputError, match=match):
        TextEncoder(*clip).encode(names, templates)  # type: ignore[arg-type]


class _CountingLock:
    """An RLock that counts how often it is taken (outermost acquisitions)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.RLock()
        self.taken = 0
        self._depth = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        self._depth += 1
        if self._depth == 1:
            self.taken += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        self._lock.release()


def test_large_vocabulary_is_encoded_in_chunks(clip: tuple) -> None:
    names = [f"class {i}" for i in range(70)]
    whole = TextEncoder(*clip, chunk_size=1000)
    chunked = TextEncoder(*clip, chunk_size=32)
    chunked._lock = lock = _CountingLock()
    got = chunked.encode(names, TEMPLATES)
    assert lock.taken == 3  # 32 + 32 + 6 names: the lock is let go between chunks
    assert chunked.tower_calls == 70  # one tower call per new name
    torch.testing.assert_close(got, whole.encode(names, TEMPLATES), atol=0, rtol=0)
    chunked.encode(names[:40], TEMPLATES)
    assert chunked.tower_calls == 70  # cached names cost nothing
    with pytest.raises(ClipInputError, match="chunk_size"):
        TextEncoder(*clip, chunk_size=0)
