"""The torch twins of models/device against their numpy references, on CPU (and CUDA
where a GPU is visible).

Integer outputs (voxels, tables, visibility, instance ids) must be identical; float
outputs agree to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.geometry.instances import group_instances
from ws3d_ros.geometry.voxel import voxel_reduce, voxelize
from ws3d_ros.models.clip.dense import preprocess
from ws3d_ros.models.device.frame import Staging, pack_points
from ws3d_ros.models.device.grouping import group_instances_t
from ws3d_ros.models.device.images import preprocess_t
from ws3d_ros.models.device.lifting import lift_t, sample_bilinear_t
from ws3d_ros.models.device.precision import autocast_dtype
from ws3d_ros.models.device.projection import CameraT, camera_hits_t
from ws3d_ros.models.device.rulebook import sparse_index_t
from ws3d_ros.models.device.voxel import voxel_mean_t, voxelize_t
from ws3d_ros.models.lifting import CameraHits, camera_hits, lift, sample_bilinear
from ws3d_ros.models.sparse.rulebook import build_sparse_index

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _t(a: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(a).to(device)


def _cloud(n: int = 6000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-20, 20, (n, 3)).astype(np.float32)
    pts[:, 2] *= 0.1
    pts[: n // 10] = np.round(pts[: n // 10] / 0.1) * 0.1  # on cell borders
    return pts


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("origin", [None, (-20.0, -20.0, -3.0)])
def test_voxelize_matches_numpy(origin, device: str) -> None:
    pts = _cloud()
    ref = voxelize(pts, 0.1, origin=origin)
    got = voxelize_t(_t(pts, device), 0.1, origin=origin)
    np.testing.assert_array_equal(got.coords.cpu().numpy(), ref.coords)
    np.testing.assert_array_equal(got.point_to_voxel.cpu().numpy(), ref.point_to_voxel)
    np.testing.assert_array_equal(got.point_order.cpu().numpy(), ref.point_order)
    np.testing.assert_array_equal(got.voxel_offsets.cpu().numpy(), ref.voxel_offsets)
    vals = np.random.default_rng(1).random((len(pts), 4), dtype=np.float32)
    np.testing.assert_allclose(
        voxel_mean_t(_t(vals, device), got).cpu().numpy(), voxel_reduce(vals, ref), atol=1e-6
    )


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_index_matches_numpy(device: str) -> None:
    coords = voxelize(_cloud(20000), 0.2).coords
    ref = build_sparse_index(coords, 3)
    tables, levels = sparse_index_t(_t(coords, device), 3)
    assert len(tables) == len(ref.arrays())
    for name, a, b in zip(ref.names(), ref.arrays(), tables, strict=True):
        np.testing.assert_array_equal(b.cpu().numpy(), a, err_msg=name)
    for a, b in zip(ref.coords, levels, strict=True):
        np.testing.assert_array_equal(b.cpu().numpy(), a)


def _look_along_x() -> Transform:
    return Transform.from_matrix(
        np.array([[0, -1, 0, 0.1], [0, 0, -1, 0.2], [1, 0, 0, -0.3], [0, 0, 0, 1]], float)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "model,D",
    [
        ("plumb_bob", [0.0] * 5),
        ("plumb_bob", [-0.3, 0.1, 0.001, -0.002, 0.0]),
        ("equidistant", [0.05, -0.01, 0.002, 0.0]),
    ],
)
def test_camera_hits_match_numpy(model: str, D: list[float], device: str) -> None:
    cam = CameraModel(
        width=640, height=480, K=[[400, 0, 320], [0, 400, 240], [0, 0, 1]], D=D,
        distortion_model=model,
    )  # fmt: skip
    rng = np.random.default_rng(2)
    xyz = np.concatenate(
        [rng.uniform([1, -15, -3], [40, 15, 3], (20000, 3)), rng.uniform(-40, 40, (2000, 3))]
    ).astype(np.float32)
    T = _look_along_x()
    ref = camera_hits(xyz, cam, T)
    idx, uv = camera_hits_t(_t(xyz, device), CameraT.from_model(cam, T, torch.device(device)))
    idx, uv = idx.cpu(), uv.cpu()
    assert len(ref.index) > 1000
    # The rigid transform may round differently from numpy's BLAS: a point on a z-buffer
    # cell border can switch cells, nothing else.
    both = np.intersect1d(ref.index, idx.numpy())
    assert len(both) >= len(ref.index) - 2 and len(both) >= len(idx) - 2
    got = dict(zip(idx.tolist(), uv.numpy(), strict=True))
    np.testing.assert_allclose(
        np.stack([got[i] for i in both]), ref.uv[np.searchsorted(ref.index, both)], atol=1e-3
    )


@pytest.mark.parametrize("device", DEVICES)
def test_bilinear_and_lift_match_numpy(device: str) -> None:
    rng = np.random.default_rng(3)
    maps = [rng.standard_normal((6, 8, 16)).astype(np.float32) for _ in range(3)]
    sizes = [(60, 80), (60, 80), (30, 40)]
    hits = []
    for k, (H, W) in enumerate(sizes):
        index = np.sort(rng.choice(500, 200 + 50 * k, replace=False))
        uv = (rng.random((len(index), 2)) * [W, H]).astype(np.float32)
        uv[:5] = [[0, 0], [W - 0.01, H - 0.01], [W / 2, 0], [0, H / 2], [W - 0.01, 0]]
        hits.append(CameraHits(index, uv))
    ref_s = sample_bilinear(maps[0], hits[0].uv, sizes[0])
    got_s = sample_bilinear_t(_t(maps[0], device), _t(hits[0].uv, device), sizes[0])
    np.testing.assert_allclose(got_s.cpu().numpy(), ref_s, atol=1e-5)
    for cams in (1, 3):
        ref_f, ref_i = lift(500, hits[:cams], maps[:cams], sizes[:cams])
        got_f, got_i = lift_t(
            500,
            [(_t(h.index, device), _t(h.uv, device)) for h in hits[:cams]],
            [_t(m, device) for m in maps[:cams]],
            sizes[:cams],
        )
        np.testing.assert_array_equal(got_i.cpu().numpy(), ref_i)
        np.testing.assert_allclose(got_f.cpu().numpy(), ref_f, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_offsets", [True, False])
def test_grouping_matches_numpy(use_offsets: bool, device: str) -> None:
    rng = np.random.default_rng(4)
    centres = rng.uniform(-30, 30, (40, 3))
    xyz = (centres[rng.integers(0, 40, 8000)] + rng.normal(0, 0.4, (8000, 3))).astype(np.float32)
    labels = rng.integers(0, 6, 8000).astype(np.uint16)
    labels[:50] = 65535
    offsets = rng.normal(0, 0.1, (8000, 3)).astype(np.float32) if use_offsets else None
    things = [1, 2, 4, 65535]
    ref = group_instances(xyz, offsets, labels, things, radius=0.5, min_points=8)
    got = group_instances_t(
        _t(xyz, device),
        None if offsets is None else _t(offsets, device),
        _t(labels.astype(np.int32), device),
        torch.tensor(things, device=device),
        radius=0.5,
        min_points=8,
    )
    assert ref.max() > 20
    np.testing.assert_array_equal(got.cpu().numpy(), ref.astype(np.int64))
    # Some thing points sit in clusters under min_points (id 0), and with a bound no
    # cluster reaches, every id is 0 (no early exit: the same ops run).
    thing = np.isin(labels, things[:-1])
    assert (ref[thing] == 0).any()
    none = group_instances_t(
        _t(xyz, device),
        None,
        _t(labels.astype(np.int32), device),
        torch.tensor(things, device=device),
        radius=0.5,
        min_points=10**6,
    )
    assert none.shape == (8000,) and int(none.abs().max()) == 0


@pytest.mark.parametrize("device", DEVICES)
def test_preprocess_matches_the_numpy_fed_one(device: str) -> None:
    rgb = np.random.default_rng(5).integers(0, 256, (90, 200, 3), dtype=np.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    ref = preprocess(rgb, (48, 96), mean=mean, std=std)
    got = preprocess_t(_t(rgb, device), (48, 96), mean, std).cpu()
    exact = 0 if device == "cpu" else 1e-5  # CUDA's resize kernel rounds differently
    torch.testing.assert_close(got, ref, rtol=0, atol=exact)


def test_staging_and_packing_on_cpu() -> None:
    pts = np.zeros(4, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4")])
    pts["x"], pts["intensity"] = [1, 2, 3, 4], [5, 6, 7, 8]
    cols = pack_points(pts, ["intensity", "ring"])  # ring is missing: zeros
    np.testing.assert_array_equal(cols[:, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(cols[:, 3], [5, 6, 7, 8])
    assert not cols[:, 4].any()
    ro = cols.copy()
    ro.flags.writeable = False
    for device in DEVICES:
        staging = Staging(torch.device(device))
        for _ in range(2):  # the second upload reuses the pinned buffer on CUDA
            t = staging.upload(ro, "pts")
            assert t.device.type == device and np.array_equal(t.cpu().numpy(), cols)


def test_precision_names() -> None:
    assert autocast_dtype("fp32") is None
    assert autocast_dtype("bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="fp32"):
        autocast_dtype("int8")
