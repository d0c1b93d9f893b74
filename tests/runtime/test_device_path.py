"""The device-resident frame path: inputs on the network's device, parity with the numpy
path, mixed precision.

Stated tolerances: fp32 device path vs numpy path on CPU: labels, instances and in-FOV
identical, scores within 1e-5. bf16 (autocast) vs fp32: labels agree on >= 95 % of the
points of the random tiny model on CPU (its class margins are small; the trained or
default models agree more: docs/runtime.md), scores within 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ws3d_ros.data.frame import Frame
from ws3d_ros.errors import Ws3dError
from ws3d_ros.models.checkpoint import load_model
from ws3d_ros.models.inputs import camera_hits_for, camera_inputs, feeds, prepare_geometry
from ws3d_ros.models.network import InputDeviceError
from ws3d_ros.runtime.backends import BackendError
from ws3d_ros.runtime.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipelines(tiny_checkpoint, street_classes) -> dict[str, Pipeline]:
    classes, things = street_classes
    kw = {"backend": "torch", "classes": classes, "thing_classes": things}
    return {
        "numpy": Pipeline.load(tiny_checkpoint, frame_path="numpy", **kw),
        "device": Pipeline.load(tiny_checkpoint, **kw),
        "bf16": Pipeline.load(tiny_checkpoint, precision="bf16", **kw),
    }


def _numpy_feeds(net_config, frame: Frame, text: np.ndarray, embed_dim: int) -> dict:
    geom = prepare_geometry(frame.points, net_config)
    hits = camera_hits_for(geom, frame.views)
    maps = [np.zeros((4, 8, embed_dim), np.float32) for _ in frame.views]
    sizes = [v.image.shape[:2] for v in frame.views]
    return feeds(geom, camera_inputs(geom, hits, maps, sizes, embed_dim), text)


def test_network_refuses_inputs_off_its_device(tiny_checkpoint, sim_frame: Frame) -> None:
    loaded = load_model(tiny_checkpoint)
    net = loaded.net.eval()
    text = np.eye(3, loaded.embed_dim, dtype=np.float32)
    host = _numpy_feeds(loaded.config, sim_frame, text, loaded.embed_dim)
    on_cpu = {k: torch.from_numpy(v) for k, v in host.items()}
    # A network on another device (meta stands in for a GPU here): host tensors are
    # refused with the input's name, never silently mixed into its matmuls.
    net.to("meta")
    with pytest.raises(InputDeviceError, match="voxel_feats"):
        net.run_tensors(on_cpu)
    # numpy inputs are moved to the network's device before the forward (the CUDA crash
    # of issue 21 was host tensors reaching a GPU network).
    out = net.run_tensors({k: v.to("meta") for k, v in on_cpu.items()})
    n = len(host["point_feats"])
    assert out["class_index"].device.type == "meta" and out["class_index"].shape == (n,)
    seen: list[torch.device] = []
    net.encoder.register_forward_pre_hook(
        lambda m, args: seen.extend(a.device for a in args if isinstance(a, torch.Tensor))
    )
    with pytest.raises(NotImplementedError):  # meta outputs cannot be copied to the host
        net.run(host)
    assert seen and all(d.type == "meta" for d in seen)


def test_pipeline_feeds_the_network_on_its_device(pipelines, sim_frame: Frame) -> None:
    pipe = pipelines["device"]
    devices: list[torch.device] = []
    net = pipe.backend.loaded.net
    hooks = [
        module.register_forward_pre_hook(
            lambda m, args: devices.extend(a.device for a in args if isinstance(a, torch.Tensor))
        )
        for module in (net.encoder, net.head)
    ]
    try:
        pipe(sim_frame)
    finally:
        for h in hooks:
            h.remove()
    assert len(devices) >= 5 and all(d == pipe.device for d in devices)


@pytest.mark.parametrize("mode", ["fusion", "lidar_only", "zero_shot"])
def test_device_path_equals_numpy_path(pipelines, sim_frame: Frame, mode: str) -> None:
    ref = pipelines["numpy"](sim_frame, mode=mode)
    got = pipelines["device"](sim_frame, mode=mode)
    np.testing.assert_array_equal(got.label, ref.label)
    np.testing.assert_array_equal(got.instance, ref.instance)
    np.testing.assert_array_equal(got.in_fov, ref.in_fov)
    np.testing.assert_allclose(got.score, ref.score, atol=1e-5, rtol=0)
    assert got.label.dtype == np.uint16 and got.instance.dtype == np.uint32
    if mode != "zero_shot":
        assert ref.instance.max() > 0  # the comparison covers grouping
    for stage in ("voxelise", "rulebook", "projection", "clip", "lift", "net", "group", "total"):
        assert got.timings[stage] >= 0


def test_bf16_parity(pipelines, sim_frame: Frame) -> None:
    ref = pipelines["device"](sim_frame)
    got = pipelines["bf16"](sim_frame)
    valid = ref.label != 65535
    agree = float(np.mean(got.label[valid] == ref.label[valid]))
    assert agree >= 0.95, agree
    assert np.abs(got.score - ref.score).max() < 0.05
    assert got.score.dtype == np.float32


def test_precision_is_validated(tiny_checkpoint, tiny_model_dir) -> None:
    with pytest.raises(Ws3dError, match="precision"):
        Pipeline.load(tiny_checkpoint, backend="torch", precision="int8")
    with pytest.raises(BackendError, match="backend torch"):
        Pipeline.load(tiny_model_dir, backend="onnxruntime", precision="bf16")


def test_onnxruntime_device_path_equals_numpy_path(
    tiny_model_dir, street_classes, sim_frame: Frame
) -> None:
    classes, things = street_classes
    kw = {"backend": "onnxruntime", "classes": classes, "thing_classes": things}
    ref = Pipeline.load(tiny_model_dir, frame_path="numpy", **kw)(sim_frame)
    got = Pipeline.load(tiny_model_dir, **kw)(sim_frame)
    np.testing.assert_array_equal(got.label, ref.label)
    np.testing.assert_array_equal(got.instance, ref.instance)
    np.testing.assert_allclose(got.score, ref.score, atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_matches_cpu(tiny_checkpoint, street_classes, sim_frame: Frame) -> None:
    classes, things = street_classes
    kw = {"backend": "torch", "classes": classes, "thing_classes": things}
    ref = Pipeline.load(tiny_checkpoint, **kw)(sim_frame)
    got = Pipeline.load(tiny_checkpoint, device="cuda", **kw)(sim_frame)
    valid = ref.label != 65535
    assert np.mean(got.label[valid] == ref.label[valid]) >= 0.999
    np.testing.assert_array_equal(got.in_fov, ref.in_fov)
    assert np.abs(got.score - ref.score).max() < 1e-3
