"""Dense (per-patch) CLIP image features in the joint image-text space, MaskCLIP style.

Contract
--------
``ClipDenseEncoder(visual)(image) -> features``

- ``image``: ``(B, 3, H, W)`` float, already normalised with the tower's
  mean/std (see :func:`preprocess`). Any ``H, W``: sizes that are not a
  multiple of :attr:`ClipDenseEncoder.stride` are zero-padded at the bottom
  and right (zero = the mean colour after normalisation), so the output grid
  is ``ceil(H / stride) x ceil(W / stride)``; feature ``[i, j]`` covers pixels
  ``[i*stride, (i+1)*stride) x [j*stride, (j+1)*stride)``.
- ``features``: ``(B, D, ceil(H/stride), ceil(W/stride))`` float32,
  L2-normalised along ``D`` (``D`` = the CLIP embedding width), comparable by
  cosine similarity with :class:`~ws3d_ros.models.clip.text.TextEncoder` output.

ViT towers (open_clip ``VisionTransformer`` whose blocks use
``nn.MultiheadAttention``): all blocks but the last run as usual on the class
token plus the patch tokens, with the learned positional embedding resized
(bicubic) to the input's patch grid. The last block keeps only its value
path, ``out_proj(v_proj(ln_1(x)))`` (times its layer scale, identity for
CLIP), without the q/k attention, the residual and the MLP; then ``ln_post``
and the visual projection are applied to every patch token (MaskCLIP, Zhou et
al. 2022).

ModifiedResNet towers (RN50, ...): MaskCLIP's ResNet variant: the trunk's
stride-32 feature map goes through the attention pool's value and output
projections (``c_proj(v_proj(f))``) per position, without the positional
embedding and the q/k attention.

Other towers (timm, attentional pooling / CoCa, custom attention blocks)
raise :class:`~ws3d_ros.models.clip.errors.UnsupportedModelError`.

The wrapped tower is frozen: the encoder stays in eval mode whatever
``train()`` is called with (BatchNorm statistics of RN towers must not move).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import nn

from ws3d_ros.models.clip.errors import ClipInputError, UnsupportedModelError

__all__ = [
    "AttnImpl",
    "ClipDenseEncoder",
    "interpolate_positional_embedding",
    "preprocess",
]

AttnImpl = Literal["sdpa", "module"]


def interpolate_positional_embedding(
    pos: torch.Tensor, grid: Sequence[int], new_grid: Sequence[int]
) -> torch.Tensor:
    """Resize a ViT positional embedding ``(1 + g0*g1, C)`` to ``(1 + h*w, C)``.

    Row 0 (class token) is kept; the patch rows are resized as a ``(C, g0, g1)``
    image with bicubic interpolation (``align_corners=False``, which is exact at
    scale 1, so the native grid maps to itself).
    """
    g0, g1 = int(grid[0]), int(grid[1])
    width = pos.shape[-1]
    cls_pos = pos[:1]
    patch = pos[1:].reshape(1, g0, g1, width).permute(0, 3, 1, 2)
    patch = F.interpolate(
        patch, size=(new_grid[0], new_grid[1]), mode="bicubic", align_corners=False
    )
    patch = patch.permute(0, 2, 3, 1).reshape(-1, width)
    return torch.cat([cls_pos, patch], dim=0)


def preprocess(
    rgb: np.ndarray,
    size: Sequence[int] | None = None,
    *,
    mean: Sequence[float] = OPENAI_DATASET_MEAN,
    std: Sequence[float] = OPENAI_DATASET_STD,
) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB image -> ``(3, h, w)`` float32 tensor, normalised.

    ``size = (h, w)`` resizes (bilinear, antialiased when shrinking) before
    normalising; ``None`` keeps the image size. Stack several for a batch.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8:
        raise ClipInputError(
            f"preprocess expects a uint8 numpy RGB image, got {type(rgb).__name__} "
            f"of dtype {getattr(rgb, 'dtype', None)}"
        )
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ClipInputError(f"preprocess expects shape (H, W, 3), got {rgb.shape}")
    # Bag images are read-only zero-copy views; torch wants a writable buffer.
    rgb = np.ascontiguousarray(rgb) if rgb.flags.writeable else np.array(rgb, order="C")
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
    if size is not None and (int(size[0]), int(size[1])) != tuple(x.shape[1:]):
        x = F.interpolate(
            x[None], size=(int(size[0]), int(size[1])), mode="bilinear", antialias=True
        )[0].clamp_(0.0, 1.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


def _block_sdpa(block: ResidualAttentionBlock, x: torch.Tensor, heads: int) -> torch.Tensor:
    """One open_clip ResidualAttentionBlock, with the attention through SDPA.

    Same maths as ``block(x)``; uses the block's own parameters. On CPU this
    is faster than nn.MultiheadAttention's inference fast path, and it exports
    to plain MatMul/Softmax ONNX ops.
    """
    attn = block.attn
    b, n, c = x.shape
    qkv = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.reshape(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
    o = F.scaled_dot_product_attention(q, k, v)
    o = o.transpose(1, 2).reshape(b, n, c)
    x = x + block.ls_1(F.linear(o, attn.out_proj.weight, attn.out_proj.bias))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _check_vit(visual: VisionTransformer) -> None:
    def unsupported(why: str) -> UnsupportedModelError:
        return UnsupportedModelError(
            f"Dense CLIP features are not available for this ViT: {why}. Supported: open_clip "
            "VisionTransformer with nn.MultiheadAttention blocks and a token projection "
            "(OpenAI / LAION ViT-*), and ModifiedResNet (RN50, ...)."
        )

    if getattr(visual, "attn_pool", None) is not None:
        raise unsupported("attentional pooling (CoCa-style) tower")
    if visual.proj is None:
        raise unsupported("the tower has no visual projection")
    for blk in visual.transformer.resblocks:
        if not isinstance(blk, ResidualAttentionBlock):
            raise unsupported(f"block type {type(blk).__name__}")
        attn = blk.attn
        if not isinstance(attn, nn.MultiheadAttention) or not attn._qkv_same_embed_dim:
            raise unsupported("attention without a packed in_proj_weight")
        if attn.bias_k is not None or attn.add_zero_attn or hasattr(blk, "ln_1_kv"):
            raise unsupported("attention with extra key/value bias or cross-attention")
    pos = visual.positional_embedding
    g0, g1 = visual.grid_size
    if pos.ndim != 2 or pos.shape[0] != 1 + g0 * g1:
        raise unsupported(f"positional embedding of shape {tuple(pos.shape)}")


class ClipDenseEncoder(nn.Module):
    """MaskCLIP dense features of an open_clip image tower (see module doc).

    Args:
        visual: ``clip_model.visual`` (VisionTransformer or ModifiedResNet).
        mean, std: the tower's normalisation, kept for :meth:`preprocess`.
        attn_impl: ``"sdpa"`` (default: re-implemented blocks calling
            ``scaled_dot_product_attention``, faster on CPU and clean to export)
            or ``"module"`` (the blocks' own forward, i.e. nn.MultiheadAttention).
    """

    def __init__(
        self,
        visual: nn.Module,
        *,
        mean: Sequence[float] = OPENAI_DATASET_MEAN,
        std: Sequence[float] = OPENAI_DATASET_STD,
        attn_impl: AttnImpl = "sdpa",
    ) -> None:
        super().__init__()
        if attn_impl not in ("sdpa", "module"):
            raise ClipInputError(f"attn_impl must be 'sdpa' or 'module', got {attn_impl!r}")
        self.visual = visual
        self.attn_impl: AttnImpl = attn_impl
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        if isinstance(visual, VisionTransformer):
            _check_vit(visual)
            self.kind = "vit"
            self.stride = int(visual.patch_size[0])
            if visual.patch_size[0] != visual.patch_size[1]:
                raise UnsupportedModelError(f"non-square patches {visual.patch_size}")
            self.width = int(visual.transformer.width)
            self.heads = int(visual.transformer.resblocks[0].attn.num_heads)
            self.grid = tuple(int(g) for g in visual.grid_size)
            self.embed_dim = int(visual.proj.shape[1])
        elif isinstance(visual, ModifiedResNet):
            self.kind = "resnet"
            self.stride = 32
            self.embed_dim = int(visual.attnpool.c_proj.out_features)
        else:
            raise UnsupportedModelError(
                f"Dense CLIP features are not available for image tower {type(visual).__name__}. "
                "Supported: open_clip VisionTransformer (nn.MultiheadAttention blocks) and "
                "ModifiedResNet."
            )
        self.eval()

    @classmethod
    def from_clip(cls, model: nn.Module, *, attn_impl: AttnImpl = "sdpa") -> ClipDenseEncoder:
        """Wrap ``model.visual``, taking mean/std from the model's preprocess config."""
        visual = model.visual
        mean = getattr(visual, "image_mean", None) or OPENAI_DATASET_MEAN
        std = getattr(visual, "image_std", None) or OPENAI_DATASET_STD
        return cls(visual, mean=mean, std=std, attn_impl=attn_impl)

    def train(self, mode: bool = True) -> ClipDenseEncoder:
        """Frozen tower: stays in eval mode (no dropout, fixed BatchNorm statistics)."""
        return super().train(False)

    def preprocess(self, rgb: np.ndarray, size: Sequence[int] | None = None) -> torch.Tensor:
        """:func:`preprocess` with this tower's mean/std."""
        return preprocess(rgb, size, mean=self.mean, std=self.std)

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """Feature grid size for an input of ``height x width`` pixels."""
        return -(-height // self.stride), -(-width // self.stride)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised image -> ``(B, D, ceil(H/s), ceil(W/s))`` unit features."""
        s = self.stride
        h, w = image.shape[-2], image.shape[-1]
        # Pad amounts are computed (not branched on) so the graph stays shape-generic.
        image = F.pad(image, (0, (s - w % s) % s, 0, (s - h % s) % s))
        if self.kind == "vit":
            feats = self._forward_vit(image)
        else:
            feats = self._forward_resnet(image)
        return F.normalize(feats.float(), dim=1)

    def _forward_vit(self, image: torch.Tensor) -> torch.Tensor:
        v = self.visual
        x = v.conv1(image.to(v.conv1.weight.dtype))  # (B, C, gh, gw)
        b, c, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, gh*gw, C)
        pos = interpolate_positional_embedding(v.positional_embedding, self.grid, (gh, gw))
        cls_tok = v.class_embedding.view(1, 1, c).expand(b, 1, c)
        x = torch.cat([cls_tok, x], dim=1) + pos.to(x.dtype)
        x = v.ln_pre(x)
        *blocks, last = v.transformer.resblocks
        for blk in blocks:
            x = _block_sdpa(blk, x, self.heads) if self.attn_impl == "sdpa" else blk(x)
        # Last block: value path only, per patch token (the class token is not needed).
        attn = last.attn
        y = last.ln_1(x[:, 1:])
        w_v = attn.in_proj_weight[2 * self.width :]
        b_v = None if attn.in_proj_bias is None else attn.in_proj_bias[2 * self.width :]
        y = F.linear(F.linear(y, w_v, b_v), attn.out_proj.weight, attn.out_proj.bias)
        y = v.ln_post(last.ls_1(y)) @ v.proj  # (B, gh*gw, D)
        return y.transpose(1, 2).reshape(b, -1, gh, gw)

    def _forward_resnet(self, image: torch.Tensor) -> torch.Tensor:
        v = self.visual
        x = v.stem(image.to(v.conv1.weight.dtype))
        x = v.layer4(v.layer3(v.layer2(v.layer1(x))))  # (B, C, H/32, W/32)
        pool = v.attnpool
        x = pool.c_proj(pool.v_proj(x.permute(0, 2, 3, 1)))  # per position, (B, h, w, D)
        return x.permute(0, 3, 1, 2)
