"""The open-vocabulary panoptic network, assembled from a :class:`ModelConfig`.

Contract:
- :class:`PanopticNet` = sparse-conv U-Net over voxels (:mod:`ws3d_ros.models.sparse`)
  -> voxel features gathered back to the points -> point MLP with the point's own input
  (offset to voxel centre, intensity) -> :class:`~ws3d_ros.models.heads.PanopticHead`
  fusing lifted CLIP features where a camera sees the point.
- :meth:`PanopticNet.forward` takes plain tensors named by :func:`input_names` (the
  exported graph's inputs, all with dynamic sizes) and returns
  ``(class_index (N,) int64, score (N,), offsets (N,3), embedding (N,D))`` where
  ``class_index`` is a column of ``text_embeds``. Everything inside is gather/matmul:
  no scatter, so ONNX Runtime with several threads and TensorRT give the torch result.
- :meth:`PanopticNet.embed` is the training entry: it returns the fused and the 3D-only
  embeddings, offsets and the temperature, for the losses.
- Inputs are prepared by :func:`ws3d_ros.models.inputs.prepare_geometry` (numpy: offline
  inference, export, training) or its device twin
  :func:`ws3d_ros.models.device.frame.prepare_geometry_t` (the runtime).
- :meth:`PanopticNet.run` / :meth:`PanopticNet.run_tensors` are the runtime entries: every
  tensor reaching the network must be on the network's device (numpy inputs are moved
  there; a tensor elsewhere raises :class:`InputDeviceError`, never a silent copy).
  ``autocast`` (bf16 / fp16) runs the network in mixed precision; the classification
  (cosine / temperature, softmax) always runs in float32.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from ws3d_ros.models.config import ModelConfig
from ws3d_ros.models.heads import PanopticHead, classify, mlp, scores_and_index
from ws3d_ros.models.sparse.minkunet import MinkUNet
from ws3d_ros.models.sparse.rulebook import SparseIndex


class InputDeviceError(RuntimeError):
    """A tensor fed to the network is not on the network's device."""


DENSE_INPUTS = (
    "voxel_feats",
    "point_feats",
    "point_to_voxel",
    "clip_feats",
    "clip_index",
    "text_embeds",
)
OUTPUTS = ("class_index", "score", "offsets", "embedding")


def num_stages(config: ModelConfig) -> int:
    return len(config.lidar_encoder["encoder_channels"])


def input_names(config: ModelConfig) -> list[str]:
    """Input names of the exported network, in :meth:`PanopticNet.forward` order."""
    return [*DENSE_INPUTS, *SparseIndex.input_names(num_stages(config))]


class PanopticNet(nn.Module):
    """LiDAR sparse-conv U-Net x lifted CLIP features -> open-vocabulary panoptic outputs."""

    def __init__(self, config: ModelConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = embed_dim
        enc = config.lidar_encoder
        if enc.get("type", "minkunet") != "minkunet":
            raise ValueError(f"lidar_encoder.type {enc['type']!r} unknown; expected minkunet")
        enc = {k: v for k, v in enc.items() if k != "type"}
        self.encoder = MinkUNet.from_config(enc, config.voxel_in_channels)
        width = enc["decoder_channels"][-1]
        fusion = config.fusion
        self.point_mlp = mlp(
            [width + config.point_in_channels, fusion["channels"], fusion["channels"]],
            last_act=True,
        )
        head = config.head
        self.head = PanopticHead(
            fusion["channels"],
            embed_dim,
            fusion_type=fusion["type"],
            fusion_channels=fusion["channels"],
            temperature=head["temperature"],
            learn_temperature=head["learn_temperature"],
            predict_offsets=head["predict_offsets"],
        )

    def point_features(
        self,
        voxel_feats: torch.Tensor,
        point_feats: torch.Tensor,
        point_to_voxel: torch.Tensor,
        sparse: list[torch.Tensor],
    ) -> torch.Tensor:
        voxel_out = self.encoder(voxel_feats, *sparse)
        return self.point_mlp(torch.cat([voxel_out[point_to_voxel], point_feats], dim=1))

    def embed(
        self,
        voxel_feats: torch.Tensor,
        point_feats: torch.Tensor,
        point_to_voxel: torch.Tensor,
        clip_feats: torch.Tensor,
        clip_index: torch.Tensor,
        sparse: list[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Training outputs: ``fused``, ``embed_3d`` (both (N,D) unit), ``offsets``,
        ``features`` (N,F) and ``temperature``."""
        feats = self.point_features(voxel_feats, point_feats, point_to_voxel, sparse)
        # Row V of the table is the "no camera sees this point" sentinel (zeros).
        table = torch.cat([clip_feats, clip_feats.new_zeros((1, clip_feats.shape[1]))], dim=0)
        clip = table[clip_index]
        seen = (clip_index < clip_feats.shape[0]).to(feats.dtype).unsqueeze(1)
        fused, e3d, offsets = self.head(feats, clip, seen)
        return {
            "fused": fused,
            "embed_3d": e3d,
            "offsets": offsets,
            "features": feats,
            "temperature": self.head.temperature,
        }

    def forward(
        self,
        voxel_feats: torch.Tensor,
        point_feats: torch.Tensor,
        point_to_voxel: torch.Tensor,
        clip_feats: torch.Tensor,
        clip_index: torch.Tensor,
        text_embeds: torch.Tensor,
        *sparse: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.embed(
            voxel_feats, point_feats, point_to_voxel, clip_feats, clip_index, list(sparse)
        )
        return self._outputs(out, text_embeds)

    @staticmethod
    def _outputs(
        out: dict[str, torch.Tensor], text_embeds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # Scores in float32 whatever precision the body ran in (run outside autocast; the
        # casts are no-ops in float32 and in the exported graph).
        fused = out["fused"].float()
        logits = classify(fused, text_embeds.float(), out["temperature"].float())
        score, index = scores_and_index(logits)
        return index, score, out["offsets"].float(), fused

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_devices(self, feeds: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The inputs in :func:`input_names` order; :class:`InputDeviceError` naming the
        first one that is not on this network's device."""
        device = self.device
        args = []
        for name in input_names(self.config):
            t = feeds[name]
            if t.device != device:
                raise InputDeviceError(
                    f"input {name!r} is on {t.device}, the network on {device}: move the "
                    "frame to the network's device first"
                )
            args.append(t)
        return args

    def run_tensors(
        self, feeds: dict[str, torch.Tensor], *, autocast: torch.dtype | None = None
    ) -> dict[str, torch.Tensor]:
        """Run from ``{name: tensor}`` on this network's device; tensor outputs by name."""
        device = self.device
        args = self.check_devices(feeds)
        n_dense = len(DENSE_INPUTS)
        mixed = (
            torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext()
        )
        with torch.inference_mode():
            with mixed:
                out = self.embed(*args[:5], args[n_dense:])
            outs = self._outputs(out, args[5])
        return dict(zip(OUTPUTS, outs, strict=True))

    def run(self, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run from a ``{name: array}`` dict (numpy arrays are moved to this network's
        device; tensors must be there already); numpy outputs by name."""
        device = self.device
        tensors = {
            n: torch.from_numpy(np.ascontiguousarray(v)).to(device)
            if isinstance(v, np.ndarray)
            else v
            for n, v in feeds.items()
        }
        outs = self.run_tensors(tensors)
        return {n: o.cpu().numpy() for n, o in outs.items()}
