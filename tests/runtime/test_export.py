"""Export: ONNX graphs + metadata, torch vs ONNX Runtime parity, scatter-free graph."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from ws3d_ros.models.checkpoint import file_hash
from ws3d_ros.runtime.backends import BackendError
from ws3d_ros.runtime.pipeline import Pipeline


def test_model_dir_contents_and_parity_report(tiny_model_dir) -> None:
    meta = json.loads((tiny_model_dir / "model.json").read_text())
    for name, digest in meta["sha256"].items():
        assert file_hash(tiny_model_dir / name) == digest
    assert meta["inputs"][:6] == [
        "voxel_feats", "point_feats", "point_to_voxel", "clip_feats", "clip_index", "text_embeds"
    ]  # fmt: skip
    parity = json.loads((tiny_model_dir / "parity.json").read_text())
    assert parity["max_abs_diff_embedding"] <= 1e-4
    assert parity["label_agreement_pct"] >= 99.9
    assert parity["visible_points"] > 0


def test_net_graph_is_scatter_free_with_dynamic_counts(tiny_model_dir) -> None:
    model = onnx.load(str(tiny_model_dir / "net.onnx"), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert not any("Scatter" in op for op in ops), ops
    for tensor in model.graph.input:
        first = tensor.type.tensor_type.shape.dim[0]
        assert first.dim_param, f"{tensor.name} has a fixed first axis"


@pytest.mark.parametrize("mode", ["fusion", "lidar_only"])
def test_onnxruntime_matches_torch_on_another_frame(
    tiny_model_dir, street_classes, mode: str
) -> None:
    from ws3d_ros.sim.rig import SimConfig, Simulator

    classes, things = street_classes
    # A frame of another size than the export example: dynamic axes at work.
    frame = Simulator(SimConfig(frames=1, lidar_beams=64, seed=11)).frame(0).to_frame()
    ort = Pipeline.load(tiny_model_dir, classes=classes, thing_classes=things)
    ref = Pipeline.load(tiny_model_dir, backend="torch", classes=classes, thing_classes=things)
    a, b = ort(frame, mode=mode), ref(frame, mode=mode)
    assert (a.label == b.label).mean() >= 0.999
    np.testing.assert_allclose(a.score, b.score, atol=1e-4)
    assert (a.instance > 0).sum() == pytest.approx((b.instance > 0).sum(), rel=0.01)


def test_tensorrt_backend_explains_fallback_without_gpu(tiny_model_dir) -> None:
    try:
        import tensorrt  # noqa: F401
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        pipe = Pipeline.load(tiny_model_dir, backend="tensorrt", classes=["road", "car"])
        assert pipe.backend.name == "tensorrt"
    else:
        with pytest.raises(BackendError, match="fallback: backend onnxruntime"):
            Pipeline.load(tiny_model_dir, backend="tensorrt")
