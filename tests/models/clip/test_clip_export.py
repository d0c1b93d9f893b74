"""export_dense_onnx: one file, dynamic batch/H/W, onnxruntime parity with torch."""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ws3d_ros.models.clip import ClipDenseEncoder, export_dense_onnx, load_clip
from ws3d_ros.models.clip import export as export_module


@pytest.fixture(scope="module")
def encoder() -> ClipDenseEncoder:
    return ClipDenseEncoder.from_clip(load_clip("ws3d-tiny", "random").model)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _max_diff(encoder: ClipDenseEncoder, sess: ort.InferenceSession, shape: tuple) -> float:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        ref = encoder(x).numpy()
    (out,) = sess.run(None, {"image": x.numpy()})
    assert out.shape == ref.shape
    return float(np.abs(out - ref).max())


def test_dynamo_export_runs_at_several_sizes(encoder: ClipDenseEncoder, tmp_path: Path) -> None:
    path = export_dense_onnx(encoder, tmp_path / "clip_dense.onnx", example_hw=(64, 96))
    assert path.is_file()
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["features"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]
    sess = _session(path)
    # Same file, sizes other than the example one, a batch > 1 and a padded size.
    for shape in [(1, 3, 64, 160), (3, 3, 96, 80), (1, 3, 70, 100)]:
        assert _max_diff(encoder, sess, shape) <= 1e-4, shape


def test_legacy_fallback_when_dynamo_fails(
    encoder: ClipDenseEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("no translation for aten::frobnicate")

    monkeypatch.setattr(export_module, "_export_dynamo", broken)
    with caplog.at_level(logging.WARNING, logger=export_module.__name__):
        path = export_dense_onnx(encoder, tmp_path / "legacy.onnx", example_hw=(64, 96))
    assert "aten::frobnicate" in caplog.text and "legacy" in caplog.text
    sess = _session(path)
    for shape in [(1, 3, 64, 160), (2, 3, 96, 80)]:
        assert _max_diff(encoder, sess, shape) <= 1e-4, shape
