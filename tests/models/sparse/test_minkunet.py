"""MinkUNet: config, parity with its spconv twin, training step, ONNX export + ORT."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from ws3d_ros.models.sparse import MinkUNet, SpconvMinkUNet
from ws3d_ros.models.sparse.minkunet import DEFAULT_CONFIG

from .spconv_ref import one_thread, surface_coords

SMALL = {
    "stem_channels": 8,
    "encoder_channels": [8, 16, 24],
    "decoder_channels": [16, 12, 12],
    "blocks_per_stage": 1,
}


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so eval-mode parity tests see them."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)


def _small_net(seed: int = 0, **overrides: object) -> MinkUNet:
    torch.manual_seed(seed)
    net = MinkUNet.from_config({**SMALL, **overrides}, in_channels=4)
    _randomise_bn(net, seed)
    return net.eval()


def test_from_config_defaults_and_errors() -> None:
    net = MinkUNet.from_config({"type": "minkunet"}, in_channels=4)
    assert net.config() == DEFAULT_CONFIG
    assert net.num_stages == 4 and net.out_channels == 96
    with pytest.raises(ValueError, match="unknown lidar_encoder key"):
        MinkUNet.from_config({"channels": 3}, in_channels=4)
    with pytest.raises(ValueError, match="type"):
        MinkUNet.from_config({"type": "spvcnn"}, in_channels=4)
    with pytest.raises(ValueError, match="one entry per encoder stage"):
        MinkUNet.from_config({"decoder_channels": [8]}, in_channels=4)
    with pytest.raises(ValueError, match="blocks_per_stage"):
        MinkUNet.from_config({"blocks_per_stage": 0}, in_channels=4)
    with pytest.raises(ValueError, match=r"encoder_channels\[1\]"):
        MinkUNet.from_config({"encoder_channels": [8, -1, 3, 4]}, in_channels=4)


def test_matches_spconv_twin_both_ways() -> None:
    net = _small_net(1, blocks_per_stage=2)
    coords = surface_coords(5000, 1)
    x = torch.randn(len(coords), 4)
    twin = net.build_spconv_twin()
    assert isinstance(twin, SpconvMinkUNet)
    assert list(twin.state_dict()) == list(net.state_dict())
    with torch.no_grad():
        ours = net.forward_index(x, net.build_index(coords))
        with one_thread():
            theirs = twin(x, coords)
    assert ours.shape == (len(coords), 12)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)

    # spconv -> gather: a twin with its own random weights carries them over.
    torch.manual_seed(5)
    other = SpconvMinkUNet.from_config(SMALL, in_channels=4)
    _randomise_bn(other, 5)
    other.eval()
    back = other.to_gather().eval()
    with torch.no_grad():
        with one_thread():
            expect = other(x, coords)
        torch.testing.assert_close(
            back.forward_index(x, back.build_index(coords)), expect, atol=1e-5, rtol=1e-5
        )


def test_batched_coords_equal_single_clouds() -> None:
    net = _small_net(2)
    a, b = surface_coords(1500, 2), surface_coords(1200, 3)
    xa, xb = torch.randn(len(a), 4), torch.randn(len(b), 4)
    both = np.concatenate(
        [
            np.column_stack([np.zeros(len(a), np.int32), a]),
            np.column_stack([np.ones(len(b), np.int32), b]),
        ]
    )
    with torch.no_grad():
        joint = net.forward_index(torch.cat([xa, xb]), net.build_index(both))
        torch.testing.assert_close(joint[: len(a)], net.forward_index(xa, net.build_index(a)))
        torch.testing.assert_close(joint[len(a) :], net.forward_index(xb, net.build_index(b)))


def test_training_step_reaches_every_parameter() -> None:
    net = _small_net(3).train()
    coords = surface_coords(2000, 4)
    x = torch.randn(len(coords), 4)
    out = net.forward_index(x, net.build_index(coords))
    out.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[MinkUNet, Path, str, float]:
    # One stage (two voxel-count axes) keeps the op-count-bound dynamo export short.
    net = _small_net(4, encoder_channels=[16], decoder_channels=[12])
    coords = surface_coords(3000, 6)
    start = time.perf_counter()
    path = tmp_path_factory.mktemp("onnx") / "minkunet.onnx"
    how = net.export_onnx(path, torch.randn(len(coords), 4), net.build_index(coords))
    return net, path, how, time.perf_counter() - start


def test_onnx_export_is_scatter_free_with_dynamic_counts(
    exported: tuple[MinkUNet, Path, str, float],
) -> None:
    net, path, how, _ = exported
    assert how == "dynamo"
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    assert not {op for op in ops if "Scatter" in op or op == "NonZero"}, ops
    inputs = [i.name for i in model.graph.input]
    assert inputs == net.input_names()
    for graph_input in model.graph.input:
        first = graph_input.type.tensor_type.shape.dim[0]
        assert first.dim_param, f"{graph_input.name} has a fixed voxel count"


def test_onnxruntime_matches_torch_on_two_cloud_sizes(
    exported: tuple[MinkUNet, Path, str, float],
) -> None:
    net, path, _, _ = exported
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    sizes = []
    for seed, n in [(7, 1500), (8, 4500)]:
        coords = surface_coords(n, seed)
        index = net.build_index(coords)
        x = torch.randn(len(coords), 4)
        with torch.no_grad():
            expect = net.forward_index(x, index).numpy()
        (got,) = session.run(None, {"features": x.numpy(), **index.feeds()})
        np.testing.assert_allclose(got, expect, atol=1e-4, rtol=1e-4)
        sizes.append(len(coords))
    assert sizes[0] != sizes[1]
