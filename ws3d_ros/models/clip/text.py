"""Class-name embeddings from the CLIP text tower, prompt-ensembled and cached.

Contract
--------
``TextEncoder(model, tokenizer).encode(class_names, templates) -> (C, D)``
float32 CPU tensor, row ``i`` for ``class_names[i]``, L2-normalised:

    e(name) = normalise(mean_t normalise(text_tower(template_t.format(name))))

Each name's prompts are encoded together in one tower call of exactly
``len(templates)`` sequences, so a name's vector never depends on which other
names are in the vocabulary (batch composition changes float rounding), and
it is cached per ``(name, templates)``: re-encoding a vocabulary with one new
name runs the tower once. The same inputs give bit-identical outputs. For
causal text towers with EOT pooling (OpenAI / LAION CLIP) the padding after
the prompts' last EOT token is cut before the tower: same features (the EOT
token never attends to later positions), several times less work.

Thread-safe (one lock around the cache, held per chunk of ``chunk_size`` names, so a
large vocabulary never holds it for long). Cost of one call: one tower call of
``len(templates)`` prompts per name not cached, nothing for the others; the vocabulary
limits (:mod:`ws3d_ros.runtime.vocabulary`) bound it. Templates must use the name
(``"a photo of a {}."``); class names must be non-empty. Bad input raises
:class:`~ws3d_ros.models.clip.errors.ClipInputError` before anything is encoded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from ws3d_ros.models.clip.errors import ClipInputError

__all__ = ["TextEncoder"]


def _check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    if isinstance(templates, str):
        raise ClipInputError("templates must be a list of strings, got a single string")
    out = tuple(templates)
    if not out:
        raise ClipInputError("at least one prompt template is needed, e.g. 'a photo of a {}.'")
    for t in out:
        try:
            uses_name = t.format("\x00a") != t.format("\x00b")
        except (IndexError, KeyError, ValueError) as exc:
            raise ClipInputError(f"prompt template {t!r} is not a format string: {exc}") from exc
        if not uses_name:
            raise ClipInputError(f"prompt template {t!r} has no '{{}}' for the class name")
    return out


class TextEncoder:
    """Prompt-ensembled, cached class-name embeddings (see module doc).

    Args:
        model: an open_clip model (``encode_text(tokens)``), e.g. from ``load_clip``.
        tokenizer: its tokenizer (``tokenizer(list_of_str) -> LongTensor``).
        device: where the text tower runs; default: the model's parameters' device.
        max_cache: most ``(name, templates)`` entries kept (least recently used go first).
        chunk_size: names encoded per hold of the lock (one tower call per new name).

    Counters ``tower_calls`` and ``prompts_encoded`` say how much work the
    tower did (diagnostics, tests).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Callable[[list[str]], torch.Tensor],
        *,
        device: str | torch.device | None = None,
        max_cache: int = 16384,
        chunk_size: int = 32,
    ) -> None:
        if int(chunk_size) < 1:
            raise ClipInputError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.model = model
        self.tokenizer = tokenizer
        self.device = (
            torch.device(device) if device is not None else next(model.parameters()).device
        )
        self.max_cache = int(max_cache)
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], torch.Tensor] = OrderedDict()
        self.tower_calls = 0
        self.prompts_encoded = 0
        # The node changes the vocabulary from a parameter callback while inference
        # runs on a worker thread: one lock keeps the cache and counters consistent.
        self._lock = threading.RLock()

    @property
    def dim(self) -> int:
        """Embedding width ``D``."""
        proj = getattr(self.model, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return int(proj.shape[1])
        if isinstance(proj, nn.Linear):
            return int(proj.out_features)
        return int(self._encode_name("x", ("{}",)).shape[0])

    def clear_cache(self) -> None:
        """Forget all cached embeddings (e.g. after swapping weights)."""
        with self._lock:
            self._cache.clear()

    def cached(self, name: str, templates: Sequence[str]) -> bool:
        """Whether ``name`` with ``templates`` is already encoded."""
        return (name, tuple(templates)) in self._cache

    def _tower(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text features of ``tokens``; causal towers skip the padding after the last EOT.

        With a causal mask and EOT (argmax) pooling, the pooled token never sees the
        positions after it, so cutting the sequence there gives the same features for
        a fraction of the work (prompts are ~10 of 77 tokens).
        """
        m = self.model
        if not (
            isinstance(m, open_clip.CLIP)
            and getattr(m, "attn_mask", None) is not None
            and getattr(m, "text_pool_type", "") == "argmax"
        ):
            return m.encode_text(tokens)
        length = int(tokens.argmax(dim=-1).max()) + 1
        tokens = tokens[:, :length]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:length].to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        proj = m.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    @torch.inference_mode()
    def _encode_name(self, name: str, templates: tuple[str, ...]) -> torch.Tensor:
        tokens = self.tokenizer([t.format(name) for t in templates]).to(self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            feats = self._tower(tokens)
        finally:
            self.model.train(was_training)
        self.tower_calls += 1
        self.prompts_encoded += len(templates)
        feats = F.normalize(feats.float(), dim=-1).mean(dim=0)
        return F.normalize(feats, dim=0).cpu()

    def encode(self, class_names: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """``(C, D)`` unit embeddings of ``class_names``, prompt-ensembled over ``templates``."""
        if isinstance(class_names, str):
            raise ClipInputError("class_names must be a list of strings, got a single string")
        tmpl = _check_templates(templates)
        for name in class_names:
            if not isinstance(name, str) or not name.strip():
                raise ClipInputError(f"class names must be non-empty strings, got {name!r}")
        rows: list[torch.Tensor] = []
        names = list(class_names)
        # The lock is held per chunk of names, not for the whole vocabulary: another
        # thread's encode (e.g. a small vocabulary check) waits at most one chunk.
        for start in range(0, len(names), self.chunk_size):
            with self._lock:
                for name in names[start : start + self.chunk_size]:
                    key = (name, tmpl)
                    emb = self._cache.get(key)
                    if emb is None:
                        emb = self._encode_name(name, tmpl)
                        self._cache[key] = emb
                        while len(self._cache) > self.max_cache:
                            self._cache.popitem(last=False)
                    else:
                        self._cache.move_to_end(key)
                    rows.append(emb)
        if not rows:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        return torch.stack(rows).clone()

    def encode_numpy(self, class_names: Sequence[str], templates: Sequence[str]) -> np.ndarray:
        """:meth:`encode` as a ``(C, D)`` float32 numpy array."""
        return self.encode(class_names, templates).numpy()
