"""FOVMix keeps every per-point array aligned with its point (IGNet augmentation)."""

from __future__ import annotations

import numpy as np

from training.cache import CachedFrame
from training.fovmix import fov_sector, fovmix, in_sector


def _frame(seed: int, n: int = 400, id_base: float = 0.0) -> CachedFrame:
    """A synthetic sweep whose every per-point array is a function of a point id.

    The id is stored in the ``intensity`` field; a camera looks along +x (|azimuth| <
    40 deg) and sees 3 of 4 points there; each seen point's CLIP row is [id, 2*id, ...].
    """
    rng = np.random.default_rng(seed)
    az = rng.uniform(-np.pi, np.pi, n)
    r = rng.uniform(2, 30, n)
    pts = np.zeros(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4")])
    pts["x"], pts["y"], pts["z"] = r * np.cos(az), r * np.sin(az), rng.uniform(-1, 2, n)
    ids = id_base + np.arange(n)
    pts["intensity"] = ids
    seen = (np.abs(az) < np.deg2rad(40)) & (np.arange(n) % 4 != 0)
    rows = np.flatnonzero(seen)
    order = rng.permutation(len(rows))  # table rows in an arbitrary order
    clip_index = np.full(n, len(rows), np.int64)
    clip_index[rows[order]] = np.arange(len(rows))
    feats = np.zeros((len(rows), 8), np.float32)
    feats[clip_index[rows]] = ids[rows, None] * np.arange(1, 9)[None, :]
    return CachedFrame(
        key=f"f{seed}",
        points=pts,
        clip_feats=feats,
        clip_index=clip_index,
        view_of=np.where(seen, 0, -1).astype(np.int8),
        segments=(np.arange(n) // 10).astype(np.int32),
        labels=(ids % 13).astype(np.uint16),
        instances=((ids % 7) + 1).astype(np.uint32),
        train_labels=np.where(np.arange(n) % 3 == 0, ids % 13, 65535).astype(np.uint16),
    )


def test_fov_sector_covers_seen_points() -> None:
    f = _frame(0)
    start, width = fov_sector(f.xyz[f.view_of == 0])
    assert np.deg2rad(60) < width <= np.deg2rad(80)
    assert in_sector(f.xyz[f.view_of == 0], start, width).all()


def test_fovmix_alignment() -> None:
    a = _frame(1, id_base=0.0)
    b = _frame(2, id_base=10_000.0)
    a_copy = {k: getattr(a, k).copy() for k in ("points", "clip_feats", "clip_index")}
    mixed = fovmix(a, b, np.random.default_rng(0))

    ids = mixed.points["intensity"].astype(np.int64)
    from_b = ids >= 10_000
    assert from_b.any() and (~from_b).any()
    # Each output point comes from exactly one source point, none twice.
    assert len(np.unique(ids)) == len(ids)
    start, width = fov_sector(b.xyz[b.view_of == 0])
    # A's points inside B's camera sector are gone, B's points outside it never come in.
    assert not in_sector(mixed.xyz[~from_b], start, width).any()
    assert in_sector(mixed.xyz[from_b], start, width).all()
    # B's whole sector is taken (seen and unseen points of it).
    assert from_b.sum() == in_sector(b.xyz, start, width).sum()

    for src, sel, base in ((a, ~from_b, 0), (b, from_b, 10_000)):
        local = ids[sel] - base
        np.testing.assert_array_equal(mixed.labels[sel], src.labels[local])
        np.testing.assert_array_equal(mixed.train_labels[sel], src.train_labels[local])
        np.testing.assert_array_equal(mixed.view_of[sel], src.view_of[local])
        np.testing.assert_allclose(mixed.xyz[sel], src.xyz[local])
        # Seen-ness and the feature row travel with the point.
        np.testing.assert_array_equal(mixed.in_fov[sel], src.in_fov[local])
        seen = mixed.in_fov & sel
        row = mixed.clip_feats[mixed.clip_index[seen]]
        expect = ids[seen, None].astype(np.float32) * np.arange(1, 9)[None, :]
        np.testing.assert_allclose(row, expect)
    # Compact table: every row is used, unseen points hold the sentinel V.
    v = len(mixed.clip_feats)
    assert set(np.unique(mixed.clip_index[mixed.in_fov])) == set(range(v))
    assert (mixed.clip_index[~mixed.in_fov] == v).all()
    # B's instance and segment ids never collide with A's.
    assert not set(mixed.instances[from_b]) & set(mixed.instances[~from_b])
    assert not set(mixed.segments[from_b]) & set(mixed.segments[~from_b])
    # Inputs untouched.
    for k, v0 in a_copy.items():
        np.testing.assert_array_equal(getattr(a, k), v0)


def test_fovmix_without_camera_points_returns_a() -> None:
    a = _frame(3)
    b = _frame(4)
    b.view_of[:] = -1
    assert fovmix(a, b, np.random.default_rng(0)) is a


def test_fovmix_moves_candidate_sets_with_their_points() -> None:
    """Packed OTOC candidate bits travel with the point; a side without them contributes
    all bits set (every class a candidate, no information)."""
    a = _frame(5, id_base=0.0)
    b = _frame(6, id_base=10_000.0)
    a.train_candidates = np.packbits(
        (np.arange(len(a))[:, None] + np.arange(13)[None]) % 3 == 0, axis=1
    )
    mixed = fovmix(a, b, np.random.default_rng(0))
    ids = mixed.points["intensity"].astype(np.int64)
    from_b = ids >= 10_000
    assert mixed.train_candidates.shape == (len(mixed), 2)
    np.testing.assert_array_equal(mixed.train_candidates[~from_b], a.train_candidates[ids[~from_b]])
    assert (mixed.train_candidates[from_b] == 255).all()
    b.train_candidates, a.train_candidates = a.train_candidates.copy(), None
    mixed = fovmix(a, b, np.random.default_rng(0))
    ids = mixed.points["intensity"].astype(np.int64)
    from_b = ids >= 10_000
    np.testing.assert_array_equal(
        mixed.train_candidates[from_b], b.train_candidates[ids[from_b] - 10_000]
    )
    assert (mixed.train_candidates[~from_b] == 255).all()
