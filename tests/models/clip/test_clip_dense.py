"""ClipDenseEncoder: MaskCLIP value path, positional-embedding resize, shapes, preprocessing."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN

from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.clip import (
    ClipDenseEncoder,
    ClipInputError,
    UnsupportedModelError,
    interpolate_positional_embedding,
    load_clip,
    preprocess,
)


@pytest.fixture(scope="module")
def vit() -> torch.nn.Module:
    return load_clip("ws3d-tiny", "random").model


@pytest.fixture(scope="module")
def rn() -> torch.nn.Module:
    return load_clip("ws3d-tiny-rn", "random").model


def _value_path_reference(visual: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Hand-computed MaskCLIP features, token by token, from open_clip's own modules.

    Native input size only (no positional resize), so ``visual._embeds`` applies.
    """
    with torch.no_grad():
        x = visual._embeds(image)
        *blocks, last = visual.transformer.resblocks
        for blk in blocks:
            x = blk(x)  # open_clip's nn.MultiheadAttention block
        width = x.shape[-1]
        w_v = last.attn.in_proj_weight.split(width)[2]  # rows: q, k, v
        b_v = last.attn.in_proj_bias[2 * width :]
        rows = []
        for t in range(1, x.shape[1]):  # each patch token on its own
            y = F.layer_norm(x[0, t], (width,), last.ln_1.weight, last.ln_1.bias, last.ln_1.eps)
            v = w_v @ y + b_v
            o = last.attn.out_proj.weight @ v + last.attn.out_proj.bias
            o = F.layer_norm(o, (width,), visual.ln_post.weight, visual.ln_post.bias)
            f = o @ visual.proj
            rows.append(f / f.norm())
        return torch.stack(rows)  # (tokens, D)


def test_value_path_matches_hand_computed_reference(vit: torch.nn.Module) -> None:
    enc = ClipDenseEncoder.from_clip(vit)
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = enc(image)  # (1, D, 4, 4)
    ref = _value_path_reference(vit.visual, image)
    gh, gw = out.shape[-2:]
    assert ref.shape[0] == gh * gw == 16
    for i in range(gh):
        for j in range(gw):
            torch.testing.assert_close(out[0, :, i, j], ref[i * gw + j], atol=1e-5, rtol=1e-5)


def test_value_path_differs_from_full_last_block(vit: torch.nn.Module) -> None:
    # Guard against silently running the whole last block (q/k attention + MLP).
    enc = ClipDenseEncoder.from_clip(vit)
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        tokens = vit.visual.transformer(vit.visual._embeds(image))[0, 1:]
        full = F.normalize(vit.visual.ln_post(tokens) @ vit.visual.proj, dim=-1)
        ours = enc(image)[0].flatten(1).T
    assert (full - ours).abs().max() > 1e-2


def test_positional_interpolation_is_identity_on_native_grid(vit: torch.nn.Module) -> None:
    pos = vit.visual.positional_embedding.detach()
    grid = vit.visual.grid_size
    out = interpolate_positional_embedding(pos, grid, grid)
    torch.testing.assert_close(out, pos, atol=1e-6, rtol=0)


def test_positional_interpolation_resizes_and_keeps_class_row(vit: torch.nn.Module) -> None:
    pos = vit.visual.positional_embedding.detach()
    out = interpolate_positional_embedding(pos, (4, 4), (6, 14))
    assert out.shape == (1 + 6 * 14, pos.shape[1])
    assert torch.equal(out[0], pos[0])
    const = torch.ones(17, 8)
    torch.testing.assert_close(
        interpolate_positional_embedding(const, (4, 4), (3, 9)), torch.ones(28, 8)
    )


@pytest.mark.parametrize(
    ("hw", "grid"),
    [((64, 64), (4, 4)), ((96, 224), (6, 14)), ((128, 48), (8, 3)), ((70, 100), (5, 7))],
)
def test_output_shape_and_unit_norm(vit: torch.nn.Module, hw: tuple, grid: tuple) -> None:
    enc = ClipDenseEncoder.from_clip(vit)
    with torch.no_grad():
        out = enc(torch.randn(2, 3, *hw))
    assert out.shape == (2, 64, *grid)
    assert enc.output_hw(*hw) == grid
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2, *grid))


def test_padding_equals_explicit_zero_pad(vit: torch.nn.Module) -> None:
    enc = ClipDenseEncoder.from_clip(vit)
    x = torch.randn(1, 3, 70, 100)
    with torch.no_grad():
        torch.testing.assert_close(enc(x), enc(F.pad(x, (0, 12, 0, 10))))


def test_sdpa_blocks_match_multihead_attention_module(vit: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 80, 112)
    with torch.no_grad():
        a = ClipDenseEncoder.from_clip(vit, attn_impl="sdpa")(x)
        b = ClipDenseEncoder.from_clip(vit, attn_impl="module")(x)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_resnet_tower_value_path(rn: torch.nn.Module) -> None:
    enc = ClipDenseEncoder.from_clip(rn)
    assert enc.stride == 32
    x = torch.randn(1, 3, 96, 160)
    v = rn.visual
    with torch.no_grad():
        out = enc(x)
        trunk = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(x)))))
        f = trunk[0, :, 1, 2]
        ref = v.attnpool.c_proj.weight @ (v.attnpool.v_proj.weight @ f + v.attnpool.v_proj.bias)
        ref = ref + v.attnpool.c_proj.bias
    assert out.shape == (1, 64, 3, 5)
    torch.testing.assert_close(out[0, :, 1, 2], ref / ref.norm(), atol=1e-5, rtol=1e-5)


def test_train_mode_stays_frozen(rn: torch.nn.Module) -> None:
    enc = ClipDenseEncoder.from_clip(rn)
    enc.train()
    assert not enc.training and not rn.visual.training


def test_unsupported_tower() -> None:
    with pytest.raises(UnsupportedModelError, match="VisionTransformer") as info:
        ClipDenseEncoder(torch.nn.Linear(2, 2))
    assert isinstance(info.value, Ws3dError)


def test_preprocess_resizes_and_normalises(vit: torch.nn.Module) -> None:
    enc = ClipDenseEncoder.from_clip(vit)
    grey = np.empty((50, 80, 3), np.uint8)
    grey[:] = np.round(np.array(OPENAI_DATASET_MEAN) * 255).astype(np.uint8)
    x = enc.preprocess(grey, (64, 96))
    assert x.shape == (3, 64, 96) and x.dtype == torch.float32
    assert x.abs().max() < 0.01  # the mean colour maps to ~0
    assert preprocess(grey).shape == (3, 50, 80)
    with pytest.raises(ClipInputError):
        preprocess(grey.astype(np.float32))
    with pytest.raises(ClipInputError):
        preprocess(grey[..., :2])
