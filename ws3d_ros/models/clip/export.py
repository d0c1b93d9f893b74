"""ONNX export of :class:`~ws3d_ros.models.clip.dense.ClipDenseEncoder`.

Contract
--------
``export_dense_onnx(encoder, path, example_hw=(384, 1248)) -> Path`` writes
one self-contained ``.onnx`` file (weights inside; towers over ~1.8 GiB of
weights, ViT-H and up, put them in an external-data file beside it) with

- input ``image``: float32 ``(batch, 3, height, width)``, normalised as for
  the torch encoder; batch, height and width are dynamic (one file serves
  every camera resolution, sizes that are not multiples of the stride are
  padded inside the graph exactly like the torch module does);
- output ``features``: float32 ``(batch, D, ceil(height/s), ceil(width/s))``,
  L2-normalised along ``D``.

The exporter is ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript),
which keeps symbolic shapes through the positional-embedding resize and the
padding. If it fails (an op without a translation in some torch build), the
legacy TorchScript exporter is used with ``dynamic_axes``: it traces with the
example input and records shapes as graph ops, which gives the same dynamic
file for this module (no data-dependent control flow), but it is deprecated,
so it is only the fallback. Which one ran is logged.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ws3d_ros.models.clip.dense import ClipDenseEncoder

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "export_dense_onnx"]

_LOG = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "features"
_OPSET = 18
_SINGLE_FILE_LIMIT = int(1.8 * 2**30)


def _example(encoder: ClipDenseEncoder, hw: Sequence[int], batch: int) -> torch.Tensor:
    param = next(encoder.parameters())
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, int(hw[0]), int(hw[1]), generator=gen)
    return x.to(device=param.device, dtype=param.dtype)


def _needs_external_data(encoder: ClipDenseEncoder) -> bool:
    # A single protobuf file cannot exceed 2 GiB (ViT-H/14 and up); keep a margin.
    size = sum(p.numel() * p.element_size() for p in encoder.parameters())
    return size > _SINGLE_FILE_LIMIT


def _export_dynamo(encoder: ClipDenseEncoder, x: torch.Tensor, path: Path) -> None:
    dim = torch.export.Dim
    # The example batch is 2: torch.export specialises sizes 0/1 to constants.
    shapes = {
        INPUT_NAME: {
            0: dim("batch", min=1, max=1024),
            2: dim("height", min=1, max=16384),
            3: dim("width", min=1, max=16384),
        }
    }
    program = torch.onnx.export(
        encoder,
        (x,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=shapes,
        opset_version=_OPSET,
        external_data=_needs_external_data(encoder),
        optimize=True,
        verbose=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    program.save(str(path), external_data=_needs_external_data(encoder))


def _export_legacy(encoder: ClipDenseEncoder, x: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        # Chosen knowingly as the fallback; its deprecation notice is noise here.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            encoder,
            (x,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                OUTPUT_NAME: {0: "batch", 2: "grid_h", 3: "grid_w"},
            },
            opset_version=_OPSET,
            do_constant_folding=True,
        )


def export_dense_onnx(
    encoder: ClipDenseEncoder,
    path: str | os.PathLike[str],
    example_hw: Sequence[int] = (384, 1248),
    *,
    legacy: bool = False,
) -> Path:
    """Export ``encoder`` to ``path`` (see module doc); returns the path.

    ``legacy=True`` skips the dynamo exporter (for comparison / debugging).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    encoder = encoder.eval()
    x = _example(encoder, example_hw, batch=2)
    if not legacy:
        try:
            _export_dynamo(encoder, x, out)
            _LOG.info("exported %s with the dynamo ONNX exporter", out)
            return out
        except Exception as exc:  # any exporter failure: fall back, say why
            _LOG.warning(
                "dynamo ONNX export failed (%s: %s); falling back to the legacy exporter",
                type(exc).__name__,
                exc,
            )
    _export_legacy(encoder, x, out)
    _LOG.info("exported %s with the legacy TorchScript ONNX exporter", out)
    return out
