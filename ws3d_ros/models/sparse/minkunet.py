"""MinkUNet: the sparse-conv U-Net LiDAR encoder, in gather form and as a spconv twin.

Contract:
- :meth:`MinkUNet.from_config` reads the ``lidar_encoder`` section of
  ``config/model.yaml`` (``type: minkunet``, ``stem_channels``, ``encoder_channels``,
  ``decoder_channels``, ``blocks_per_stage``); a missing key takes the default shown
  there, an unknown key or a bad value raises ``ValueError``.
- Network: stem (3x3x3 submanifold conv + BN + ReLU) at level 0; encoder stage ``i``
  (``L = len(encoder_channels)`` of them): stride-2 conv to ``encoder_channels[i]`` +
  BN + ReLU, then ``blocks_per_stage`` residual blocks (conv-BN-ReLU-conv-BN + shortcut,
  ReLU; a 1x1 conv + BN shortcut where channels change); decoder stage ``j``
  (``len(decoder_channels) == L``): inverse conv of encoder stage ``L-1-j`` to
  ``decoder_channels[j]`` + BN + ReLU, concatenation with the skip features of that
  level (stem output at level 0), residual blocks. Output: ``(M_0, decoder_channels[-1])``
  features, one row per input voxel in the input order.
- :meth:`MinkUNet.forward` takes ``features (M_0, in_channels)`` and the index tensors
  positionally in :meth:`SparseIndex.names` order (``subm_0..subm_L, down_0..down_{L-1},
  up_0..up_{L-1}``): plain tensors only, so ``torch.onnx.export`` sees a graph of
  gathers and matmuls with dynamic voxel counts. :meth:`MinkUNet.forward_index` takes a
  :class:`SparseIndex`; :meth:`MinkUNet.export_onnx` writes the ONNX file.
- :meth:`MinkUNet.build_spconv_twin` returns the same network made of spconv modules
  (same module tree, same state-dict keys) for training on a GPU with spconv kernels;
  ``twin.load_state_dict(net.state_dict())`` and back work unchanged and the two agree
  to float rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ws3d_ros.models.sparse.conv import SparseConv3dDown, SparseInverseConv3dUp, SubMConv3d
from ws3d_ros.models.sparse.rulebook import SparseIndex, build_sparse_index

#: The ``lidar_encoder`` defaults of ``config/model.yaml``.
DEFAULT_CONFIG: dict[str, Any] = {
    "type": "minkunet",
    "stem_channels": 32,
    "encoder_channels": [32, 64, 128, 256],
    "decoder_channels": [128, 96, 96, 96],
    "blocks_per_stage": 1,
}

# Conv factories: (in, out, level) -> module. Level picks spconv's indice_key in the twin.
_Factory = Callable[[int, int, int], nn.Module]


class ConvBNReLU(nn.Module):
    """A conv, BatchNorm1d over voxels, ReLU (the forward lives in the network)."""

    def __init__(self, conv: nn.Module, channels: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm1d(channels)
        self.relu = nn.ReLU(inplace=False)


class ResidualBlock(nn.Module):
    """conv3-BN-ReLU-conv3-BN + shortcut (identity, or 1x1 conv + BN), then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, level: int, subm: _Factory, proj: _Factory):
        super().__init__()
        self.conv1 = subm(in_ch, out_ch, level)
        self.bn1 = nn.BatchNorm1d(out_ch)
        self.conv2 = subm(out_ch, out_ch, level)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.proj = proj(in_ch, out_ch, level) if in_ch != out_ch else None
        self.proj_bn = nn.BatchNorm1d(out_ch) if in_ch != out_ch else None
        self.relu = nn.ReLU(inplace=False)


class Stage(nn.Module):
    """One resolution change (``resample``: down or up conv block) + residual blocks."""

    def __init__(self, resample: ConvBNReLU, blocks: Sequence[ResidualBlock]) -> None:
        super().__init__()
        self.resample = resample
        self.blocks = nn.ModuleList(blocks)


def _check_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(
            f"unknown lidar_encoder key(s) {unknown}; expected {sorted(DEFAULT_CONFIG)}"
        )
    merged = {**DEFAULT_CONFIG, **cfg}
    if merged["type"] != "minkunet":
        raise ValueError(f"lidar_encoder.type must be 'minkunet', found {merged['type']!r}")
    return merged


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, found {value!r}")
    return int(value)


def _channel_list(value: Any, name: str) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{name} must be a non-empty list of positive integers, found {value!r}")
    return [_positive_int(v, f"{name}[{i}]") for i, v in enumerate(value)]


class _UNetBody(nn.Module):
    """The module tree both forms share (so their state dicts have the same keys)."""

    def __init__(
        self,
        in_channels: int,
        stem_channels: int,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        blocks_per_stage: int,
        *,
        subm: _Factory,
        proj: _Factory,
        down: _Factory,
        up: _Factory,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.stem_channels = _positive_int(stem_channels, "stem_channels")
        self.encoder_channels = _channel_list(encoder_channels, "encoder_channels")
        self.decoder_channels = _channel_list(decoder_channels, "decoder_channels")
        self.blocks_per_stage = _positive_int(blocks_per_stage, "blocks_per_stage")
        stages = len(self.encoder_channels)
        if len(self.decoder_channels) != stages:
            raise ValueError(
                "decoder_channels needs one entry per encoder stage (the output is at the "
                f"input resolution): {len(self.decoder_channels)} != {stages}"
            )
        self.num_stages = stages
        self.out_channels = self.decoder_channels[-1]
        nb = self.blocks_per_stage

        self.stem = ConvBNReLU(subm(self.in_channels, self.stem_channels, 0), self.stem_channels)
        skip_ch = [self.stem_channels]
        self.encoder = nn.ModuleList()
        for i, ch in enumerate(self.encoder_channels):
            prev = skip_ch[-1]
            blocks = [ResidualBlock(ch, ch, i + 1, subm, proj) for _ in range(nb)]
            self.encoder.append(Stage(ConvBNReLU(down(prev, ch, i), ch), blocks))
            skip_ch.append(ch)
        self.decoder = nn.ModuleList()
        prev = skip_ch[-1]
        for j, ch in enumerate(self.decoder_channels):
            level = stages - 1 - j
            blocks = [ResidualBlock(ch + skip_ch[level], ch, level, subm, proj)]
            blocks += [ResidualBlock(ch, ch, level, subm, proj) for _ in range(nb - 1)]
            self.decoder.append(Stage(ConvBNReLU(up(prev, ch, level), ch), blocks))
            prev = ch

    def config(self) -> dict[str, Any]:
        """The ``lidar_encoder`` mapping this network was built from."""
        return {
            "type": "minkunet",
            "stem_channels": self.stem_channels,
            "encoder_channels": list(self.encoder_channels),
            "decoder_channels": list(self.decoder_channels),
            "blocks_per_stage": self.blocks_per_stage,
        }


def _bn_relu(block: ConvBNReLU, x: Tensor) -> Tensor:
    return block.relu(block.bn(x))


def _residual(block: ResidualBlock, x: Tensor, table: Tensor) -> Tensor:
    out = block.relu(block.bn1(block.conv1(x, table)))
    out = block.bn2(block.conv2(out, table))
    short = x if block.proj is None else block.proj_bn(block.proj(x))
    return block.relu(out + short)


class MinkUNet(_UNetBody):
    """The LiDAR U-Net in gather -> matmul form (see the module docstring)."""

    def __init__(
        self,
        in_channels: int,
        stem_channels: int = 32,
        encoder_channels: Sequence[int] = (32, 64, 128, 256),
        decoder_channels: Sequence[int] = (128, 96, 96, 96),
        blocks_per_stage: int = 1,
    ) -> None:
        super().__init__(
            in_channels,
            stem_channels,
            encoder_channels,
            decoder_channels,
            blocks_per_stage,
            subm=lambda i, o, level: SubMConv3d(i, o, 3),
            proj=lambda i, o, level: SubMConv3d(i, o, 1),
            down=lambda i, o, level: SparseConv3dDown(i, o),
            up=lambda i, o, level: SparseInverseConv3dUp(i, o),
        )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], in_channels: int) -> MinkUNet:
        """Build from a ``lidar_encoder`` mapping (see the module docstring)."""
        c = _check_config(cfg)
        return cls(
            in_channels,
            c["stem_channels"],
            c["encoder_channels"],
            c["decoder_channels"],
            c["blocks_per_stage"],
        )

    def input_names(self) -> list[str]:
        """Names of :meth:`forward`'s inputs: ``features`` then the index tensors."""
        return ["features", *SparseIndex.input_names(self.num_stages)]

    def build_index(self, coords: np.ndarray) -> SparseIndex:
        """The :class:`SparseIndex` this network needs for voxel ``coords``."""
        return build_sparse_index(coords, self.num_stages)

    def forward(self, features: Tensor, *index: Tensor) -> Tensor:
        n = self.num_stages
        if len(index) != 3 * n + 1:
            raise ValueError(f"expected {3 * n + 1} index tensors ({self.input_names()[1:]})")
        subm, down, up = index[: n + 1], index[n + 1 : 2 * n + 1], index[2 * n + 1 :]
        x = _bn_relu(self.stem, self.stem.conv(features, subm[0]))
        skips = [x]
        for i, stage in enumerate(self.encoder):
            x = _bn_relu(stage.resample, stage.resample.conv(x, down[i]))
            for block in stage.blocks:
                x = _residual(block, x, subm[i + 1])
            skips.append(x)
        for j, stage in enumerate(self.decoder):
            level = n - 1 - j
            x = _bn_relu(stage.resample, stage.resample.conv(x, up[level]))
            x = torch.cat([x, skips[level]], dim=1)
            for block in stage.blocks:
                x = _residual(block, x, subm[level])
        return x

    def forward_index(self, features: Tensor, sparse_index: SparseIndex) -> Tensor:
        """:meth:`forward` with the tables of ``sparse_index`` (moved to the features' device)."""
        if sparse_index.num_stages != self.num_stages:
            raise ValueError(
                f"index has {sparse_index.num_stages} stages, the network {self.num_stages}"
            )
        return self(features, *sparse_index.to_torch(features.device))

    def build_spconv_twin(self) -> nn.Module:
        """The same network with spconv modules and this network's weights."""
        twin = SpconvMinkUNet(
            self.in_channels,
            self.stem_channels,
            self.encoder_channels,
            self.decoder_channels,
            self.blocks_per_stage,
        )
        twin.load_state_dict(self.state_dict())
        return twin.to(next(self.parameters()).device).train(self.training)

    def export_onnx(
        self,
        path: str | Path,
        features: Tensor,
        sparse_index: SparseIndex,
        *,
        dynamo: bool = True,
        opset: int = 18,
    ) -> str:
        """Write the network (in its current mode, usually ``eval()``) to ONNX.

        Every voxel count is a dynamic axis: ``m{l}`` names level ``l``'s count (the
        first axis of ``features``/``subm_0``/``up_0``... for level 0). Tries the dynamo
        exporter first and falls back to the TorchScript one if it fails unless
        ``dynamo`` is False. Returns the exporter used (``"dynamo"`` or
        ``"torchscript"``).
        """
        args = (features, *sparse_index.to_torch(features.device))
        names = self.input_names()
        n = self.num_stages
        level_of = {"features": 0}
        for l in range(n + 1):
            level_of[f"subm_{l}"] = l
        for l in range(n):
            level_of[f"down_{l}"] = l + 1
            level_of[f"up_{l}"] = l
        if dynamo:
            try:
                dims = {l: torch.export.Dim(f"m{l}", min=2) for l in range(n + 1)}
                specs = [{0: dims[level_of[name]]} for name in names]
                # forward(features, *index): the varargs take one nested spec tuple.
                shapes = (specs[0], tuple(specs[1:]))
                with warnings.catch_warnings():
                    # Axes sharing one Dim (features/subm_0/up_0) keep one name: expected.
                    warnings.filterwarnings("ignore", message="# The axis name")
                    torch.onnx.export(
                        self,
                        args,
                        str(path),
                        input_names=names,
                        output_names=["voxel_features"],
                        dynamic_shapes=shapes,
                        opset_version=opset,
                        dynamo=True,
                        optimize=True,
                        verbose=False,
                    )
                return "dynamo"
            except Exception as exc:  # any dynamo failure: fall back to the older exporter
                warnings.warn(
                    f"dynamo ONNX export failed ({exc!r:.300}); using the TorchScript exporter",
                    stacklevel=2,
                )
        axes = {name: {0: f"m{level_of[name]}"} for name in names}
        axes["voxel_features"] = {0: "m0"}
        torch.onnx.export(
            self,
            args,
            str(path),
            input_names=names,
            output_names=["voxel_features"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
        return "torchscript"


class SpconvMinkUNet(_UNetBody):
    """:class:`MinkUNet`'s twin built from spconv modules (same tree and state-dict keys).

    ``forward(features, coords)`` takes ``(M, 3)`` or ``(M, 4)`` coordinates (as for
    :func:`build_sparse_index`) and returns ``(M, out_channels)`` features in their order.
    Note: spconv 2.3.8's CPU build races with more than one torch thread and cannot run
    backward on CPU; use it on a GPU (or forward with ``torch.set_num_threads(1)``).
    """

    def __init__(
        self,
        in_channels: int,
        stem_channels: int = 32,
        encoder_channels: Sequence[int] = (32, 64, 128, 256),
        decoder_channels: Sequence[int] = (128, 96, 96, 96),
        blocks_per_stage: int = 1,
    ) -> None:
        import spconv.pytorch as spc

        super().__init__(
            in_channels,
            stem_channels,
            encoder_channels,
            decoder_channels,
            blocks_per_stage,
            subm=lambda i, o, level: spc.SubMConv3d(i, o, 3, bias=False, indice_key=f"subm{level}"),
            proj=lambda i, o, level: spc.SubMConv3d(i, o, 1, bias=False),
            down=lambda i, o, level: spc.SparseConv3d(
                i, o, 2, stride=2, bias=False, indice_key=f"down{level}"
            ),
            up=lambda i, o, level: spc.SparseInverseConv3d(
                i, o, 2, bias=False, indice_key=f"down{level}"
            ),
        )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], in_channels: int) -> SpconvMinkUNet:
        c = _check_config(cfg)
        return cls(
            in_channels,
            c["stem_channels"],
            c["encoder_channels"],
            c["decoder_channels"],
            c["blocks_per_stage"],
        )

    def to_gather(self) -> MinkUNet:
        """The gather-form network with this twin's weights."""
        net = MinkUNet(
            self.in_channels,
            self.stem_channels,
            self.encoder_channels,
            self.decoder_channels,
            self.blocks_per_stage,
        )
        net.load_state_dict(self.state_dict())
        return net.to(next(self.parameters()).device).train(self.training)

    def forward(self, features: Tensor, coords: Tensor | np.ndarray) -> Tensor:
        import spconv.pytorch as spc

        c = torch.as_tensor(np.asarray(coords) if not isinstance(coords, Tensor) else coords)
        c = c.to(device=features.device, dtype=torch.int32)
        if c.shape[1] == 3:
            c = torch.cat([c.new_zeros(len(c), 1), c], dim=1)
        # Round the grid up to a multiple of 2**L so no stride-2 step drops a border voxel.
        mult = 2**self.num_stages
        hi = (c[:, 1:].max(dim=0).values + 1).tolist() if len(c) else [1, 1, 1]
        shape = [-(-int(h) // mult) * mult for h in hi]
        batch = int(c[:, 0].max()) + 1 if len(c) else 1
        x = spc.SparseConvTensor(features, c.contiguous(), shape, batch)

        def bn_relu(block: ConvBNReLU, t: Any) -> Any:
            return t.replace_feature(block.relu(block.bn(t.features)))

        def residual(block: ResidualBlock, t: Any) -> Any:
            out = t.replace_feature(block.relu(block.bn1(block.conv1(t).features)))
            out = block.bn2(block.conv2(out).features)
            short = t.features if block.proj is None else block.proj_bn(block.proj(t).features)
            return t.replace_feature(block.relu(out + short))

        x = bn_relu(self.stem, self.stem.conv(x))
        skips = [x]
        for stage in self.encoder:
            x = bn_relu(stage.resample, stage.resample.conv(x))
            for block in stage.blocks:
                x = residual(block, x)
            skips.append(x)
        for j, stage in enumerate(self.decoder):
            skip = skips[self.num_stages - 1 - j]
            x = bn_relu(stage.resample, stage.resample.conv(x))
            # The inverse conv restores the skip level's voxels in the skip's own order.
            x = x.replace_feature(torch.cat([x.features, skip.features], dim=1))
            for block in stage.blocks:
                x = residual(block, x)
        return x.features
