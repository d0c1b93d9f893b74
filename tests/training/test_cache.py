"""The frame cache: built once from a bag, keyed by bag + model config, sharded, split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.training.conftest import TINY
from training.cache import FrameCache, build_cache, clip_fingerprint, split_frames
from training.config import TrainConfig
from ws3d_ros.data.frames import BagFrames
from ws3d_ros.models.checkpoint import build_model
from ws3d_ros.models.inputs import camera_hits_for, camera_inputs, prepare_geometry
from ws3d_ros.runtime.backends import TorchBackend


def _build(bag: Path, root: Path, cfg: TrainConfig, **kw) -> tuple[FrameCache, TorchBackend]:
    mc = cfg.model_config()
    loaded = build_model(mc, with_net=False)
    backend = TorchBackend(loaded)
    cache = build_cache(
        [bag],
        mc,
        root,
        teacher=backend.clip_features,
        clip_hash=clip_fingerprint(loaded.clip.model),
        embed_dim=loaded.embed_dim,
        num_shards=2,
        supervoxel_size=2.0,
        progress=False,
        **kw,
    )
    return cache, backend


def test_cache_matches_runtime_preprocessing(tiny_bag: Path, cache_root: Path) -> None:
    cfg = TrainConfig.from_dict(TINY)
    cache, backend = _build(tiny_bag, cache_root, cfg)
    assert len(cache.records) == 4
    assert cache.class_names[0] == "road" and "car" in cache.thing_names
    # Shard k holds frames k::2; the two shards are disjoint and cover everything.
    assert [r.shard for r in cache.records] == [0, 1, 0, 1]
    assert cache.shards_for_rank(0, 2) == [0] and cache.shards_for_rank(1, 2) == [1]

    mc = cfg.model_config()
    frame = next(iter(BagFrames(tiny_bag)))
    cached = cache.load(cache.records[0])
    geom = prepare_geometry(frame.points, mc)
    np.testing.assert_allclose(cached.xyz, geom.xyz)
    np.testing.assert_array_equal(cached.labels, frame.labels[geom.kept])
    np.testing.assert_array_equal(cached.instances, frame.instances[geom.kept])
    hits = camera_hits_for(geom, frame.views)
    maps = backend.clip_features([v.image for v in frame.views])
    sizes = [v.image.shape[:2] for v in frame.views]
    cam = camera_inputs(geom, hits, maps, sizes, backend.embed_dim)
    np.testing.assert_array_equal(cached.clip_index, cam.clip_index)
    np.testing.assert_allclose(cached.clip_feats.astype(np.float32), cam.clip_feats, atol=2e-3)
    assert cached.in_fov.sum() == cam.seen.sum() > 0
    assert (cached.view_of[cached.in_fov] == 0).all() and (cached.view_of[~cached.in_fov] < 0).all()
    assert cached.segments.min() >= 0 and len(cached.segments) == len(cached)

    # Same inputs: reused (same directory); another point range: a new cache.
    again, _ = _build(tiny_bag, cache_root, cfg)
    assert again.root == cache.root
    other = TrainConfig.from_dict({**TINY, "model": {**TINY["model"], "point_range": [
        -12.0, -12.0, -4.0, 12.0, 12.0, 6.0]}})  # fmt: skip
    changed, _ = _build(tiny_bag, cache_root, other, max_frames_per_bag=1)
    assert changed.root != cache.root and len(changed.records) == 1


def test_split_by_time_and_bag(tiny_bag: Path, cache_root: Path) -> None:
    cache, _ = _build(tiny_bag, cache_root, TrainConfig.from_dict(TINY))
    train, val = split_frames(cache.records, 0.5)
    assert [r.frame for r in train] == [0, 1] and [r.frame for r in val] == [2, 3]
    assert split_frames(cache.records, 0.5) == (train, val)
    train, val = split_frames(cache.records, 0.0, [str(tiny_bag)])
    assert not train and len(val) == 4


def test_lidar_only_frame_and_sidecar_labels(tiny_bag: Path, tmp_path: Path) -> None:
    from training.cache import _sidecar_labels, cache_frame

    cfg = TrainConfig.from_dict(TINY).model_config()
    frame = next(iter(BagFrames(tiny_bag)))
    for v in frame.views:
        v.image = None  # the image did not arrive: LiDAR-only sweep

    def no_teacher(images: list) -> list:
        raise AssertionError("no image, no teacher call")

    n = len(frame.points)
    packed = (np.arange(n) % 13).astype("<u4") | ((np.arange(n) % 5).astype("<u4") << 16)
    packed.tofile(tmp_path / "000007.label")
    side = _sidecar_labels(tmp_path, 7, n)
    frame.labels = frame.instances = None
    cached = cache_frame(frame, cfg, no_teacher, 64, supervoxel_size=2.0, sidecar_labels=side)
    assert len(cached.clip_feats) == 0 and not cached.in_fov.any()
    assert (cached.view_of == -1).all()
    geom = prepare_geometry(frame.points, cfg)
    np.testing.assert_array_equal(cached.labels, (geom.kept % 13).astype(np.uint16))
    np.testing.assert_array_equal(cached.instances, (geom.kept % 5).astype(np.uint32))
    assert _sidecar_labels(tmp_path, 8, n) == (None, None)


def test_supervoxel_voxel_size_and_intensity_scale_reach_the_cache(tiny_bag: Path) -> None:
    from dataclasses import replace

    from training.cache import cache_frame
    from ws3d_ros.data.intensity import IntensityNormalizer

    cfg = TrainConfig.from_dict(TINY).model_config()
    frame = next(iter(BagFrames(tiny_bag)))
    for v in frame.views:
        v.image = None

    def no_teacher(images: list) -> list:
        raise AssertionError("no image, no teacher call")

    coarse = cache_frame(frame, cfg, no_teacher, 64, supervoxel_size=0.4, supervoxel_voxel=0.4)
    fine = cache_frame(frame, cfg, no_teacher, 64, supervoxel_size=0.4, supervoxel_voxel=0.1)
    assert fine.segments.max() > coarse.segments.max()  # indoor-scale voxels: more segments
    # A 0-255 sweep is cached on the model's 0-1 scale, as its 0-1 twin.
    points = frame.points.copy()
    points["intensity"] = points["intensity"] * 255.0
    loud = replace(frame, points=points, intensity_range=(0.0, 255.0))
    norm = IntensityNormalizer(cfg.intensity_range)
    a = cache_frame(norm(loud), cfg, no_teacher, 64, supervoxel_size=2.0)
    b = cache_frame(frame, cfg, no_teacher, 64, supervoxel_size=2.0)
    np.testing.assert_allclose(a.points["intensity"], b.points["intensity"], atol=1e-5)
