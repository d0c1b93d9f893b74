"""Bucket padding of the 3D net's inputs (CPU: the padded net equals the unpadded one on
the real rows) and the CUDA graphs over it and the CLIP tower (CUDA only: replay equals
eager).

Stated tolerances: padded vs unpadded on CPU, fp32: class indices identical, scores,
offsets and embeddings within 1e-5. Graph replay vs eager on CUDA, fp32: within 1e-4
(another kernel may be chosen for the padded shapes), classes >= 99.9 % equal.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ws3d_ros.data.frame import Frame
from ws3d_ros.models.checkpoint import load_model
from ws3d_ros.models.device.graphs import (
    GraphCache,
    GraphedNet,
    GraphedTower,
    bucket,
    net_input_order,
    pad_net_inputs,
    padded_sizes,
)
from ws3d_ros.models.inputs import (
    camera_hits_for,
    camera_inputs,
    feeds,
    no_camera_inputs,
    prepare_geometry,
)
from ws3d_ros.models.network import num_stages

CUDA = torch.cuda.is_available()


def test_bucket_ladder() -> None:
    sizes = [bucket(n) for n in range(0, 300_000, 997)]
    assert all(s % 64 == 0 for s in sizes)
    assert all(s >= n for s, n in zip(sizes, range(0, 300_000, 997), strict=True))
    assert sizes == sorted(sizes)
    ladder = [64]
    while ladder[-1] < 300_000:
        ladder.append(bucket(ladder[-1] + 1))
    assert all(b <= a * 1.25 + 64 for a, b in itertools.pairwise(ladder))
    assert set(sizes) <= set(ladder) and len(ladder) < 40  # few shapes for a drifting sweep
    assert bucket(0) == bucket(64) == 64 and bucket(65) == 128
    assert bucket(bucket(100_000)) == bucket(100_000)


def _feeds(loaded, frame: Frame, cameras: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    geom = prepare_geometry(frame.points, loaded.config)
    if cameras:
        rng = np.random.default_rng(seed)
        maps = [rng.standard_normal((12, 39, loaded.embed_dim)).astype(np.float32)]
        sizes = [v.image.shape[:2] for v in frame.views]
        cam = camera_inputs(geom, camera_hits_for(geom, frame.views), maps, sizes, loaded.embed_dim)
        assert 0 < len(cam.clip_feats) < len(geom.xyz)
    else:
        cam = no_camera_inputs(geom, loaded.embed_dim)
    text = np.random.default_rng(seed + 1).standard_normal((7, loaded.embed_dim))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return {k: torch.from_numpy(v) for k, v in feeds(geom, cam, text.astype(np.float32)).items()}


@pytest.fixture(scope="module")
def tiny_net(tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    loaded.net.eval()
    return loaded


@pytest.mark.parametrize("cameras", [True, False])
@pytest.mark.parametrize("extra", [0, 1000])
def test_padded_net_equals_unpadded(tiny_net, sim_frame: Frame, cameras: bool, extra: int):
    net = tiny_net.net
    stages = num_stages(net.config)
    f = _feeds(tiny_net, sim_frame, cameras)
    ref = net.run_tensors(f)
    sizes = padded_sizes(f, stages)
    sizes = {k: v + extra for k, v in sizes.items()}  # also far past the bucket
    real = {f"m{l}": f[f"subm_{l}"].shape[0] for l in range(stages + 1)}
    assert all(sizes[k] > real[k] for k in real) and sizes["n"] > f["point_feats"].shape[0]
    padded = pad_net_inputs(f, stages, sizes)
    assert [p.shape[0] for p in padded[:2]] == [sizes["m0"], sizes["n"]]
    graphed = GraphedNet(net)
    with torch.inference_mode():
        outs = graphed._forward(*padded)
    n = f["point_feats"].shape[0]
    index, score, offsets, embedding = (o[:n] for o in outs)
    np.testing.assert_array_equal(index.numpy(), ref["class_index"].numpy())
    for got, name in ((score, "score"), (offsets, "offsets"), (embedding, "embedding")):
        np.testing.assert_allclose(got.numpy(), ref[name].numpy(), atol=1e-5, rtol=0)
    # The padding is real: without renumbering the sentinels the result changes.
    broken = list(padded)
    k = net_input_order(stages).index("subm_0")
    m0 = f["subm_0"].shape[0]
    broken[k] = torch.cat([f["subm_0"], padded[k][m0:]])  # sentinel M_0 = first pad row
    with torch.inference_mode():
        bad = graphed._forward(*broken)
    assert not torch.allclose(bad[2][:n], offsets, atol=1e-5)


def test_padding_writes_into_given_buffers(tiny_net, sim_frame: Frame) -> None:
    stages = num_stages(tiny_net.net.config)
    f = _feeds(tiny_net, sim_frame, True)
    first = pad_net_inputs(f, stages)
    buffers = [torch.full_like(t, 7) for t in first]
    again = pad_net_inputs(f, stages, padded_sizes(f, stages), buffers)
    assert all(a is b for a, b in zip(again, buffers, strict=True))
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_graph_cache_needs_cuda_only_to_capture() -> None:
    cache = GraphCache(lambda x: (x + 1,))
    assert len(cache) == 0 and cache.enabled and cache.static_inputs("k") is None


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("cameras", [True, False])
def test_cuda_graph_replay_equals_eager(tiny_net, sim_frame: Frame, cameras: bool) -> None:
    net = tiny_net.net.to("cuda")
    graphed = GraphedNet(net, max_graphs=2)
    for seed in (0, 1, 2):  # a capture, then replays with other contents
        f = {k: v.cuda() for k, v in _feeds(tiny_net, sim_frame, cameras, seed).items()}
        if seed == 2:  # fewer points: another key, captured too
            keep = f["point_feats"].shape[0] // 2
            for name in ("point_feats", "point_to_voxel", "clip_index"):
                f[name] = f[name][:keep].contiguous()
        ref = net.run_tensors(f)
        got = graphed(f)
        assert got is not None and graphed.cache.enabled
        agree = (got["class_index"] == ref["class_index"]).float().mean().item()
        assert agree >= 0.999
        for name in ("score", "offsets", "embedding"):
            torch.testing.assert_close(got[name], ref[name], atol=1e-4, rtol=0)
    assert graphed.cache.captures == 2 and len(graphed.cache) == 2
    bf16 = graphed(f, autocast=torch.bfloat16)
    ref16 = net.run_tensors(f, autocast=torch.bfloat16)
    assert (bf16["class_index"] == ref16["class_index"]).float().mean().item() >= 0.99
    net.to("cpu")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_cuda_graph_tower_equals_eager(tiny_checkpoint) -> None:
    from ws3d_ros.runtime.backends import TorchBackend

    be = TorchBackend.from_checkpoint(tiny_checkpoint, device="cuda")
    batch = torch.randn(2, 3, *be.image_size, device="cuda")
    graphed = GraphedTower(be.dense)
    for _ in range(2):
        batch.normal_()
        with torch.inference_mode():
            ref = be.dense(batch).float()
        got = graphed(batch)
        assert got is not None
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
