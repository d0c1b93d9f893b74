"""Frame -> network inputs: the one preprocessing of the runtime, export and training.

Contract (numpy, no torch):
- :func:`prepare_geometry` keeps the finite points inside ``config.point_range``
  (``kept``: their indices in input order; every other point will be labelled unknown),
  voxelises them with :func:`ws3d_ros.geometry.voxel.voxelize` on a grid anchored at the
  range minimum (so voxel coordinates do not depend on which points a sweep has), and
  builds the sparse U-Net tables with
  :func:`ws3d_ros.models.sparse.rulebook.build_sparse_index`.
- Per-point input: offset from the voxel centre (m) and ``config.point_features``
  (a field missing from the cloud is zeros). Per-voxel input: the mean of its points'
  inputs and the voxel centre height (m / 2, a scale near 1).
- :func:`camera_inputs` lifts dense CLIP feature maps to the kept points
  (:mod:`ws3d_ros.models.lifting`); no cameras -> zero rows (LiDAR-only).
- :func:`feeds` assembles the ``{name: array}`` dict in the exported graph's dtypes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.geometry.voxel import Voxelization, voxel_reduce, voxelize
from ws3d_ros.models.config import ModelConfig
from ws3d_ros.models.lifting import CameraHits, camera_hits, lift
from ws3d_ros.models.sparse.rulebook import SparseIndex, build_sparse_index
from ws3d_ros.msg.pointcloud2 import cloud_xyz

log = logging.getLogger(__name__)
_warned_fields: set[str] = set()


@dataclass
class GeometryInputs:
    """Voxel and point inputs of one sweep (see the module docstring)."""

    num_input_points: int
    kept: np.ndarray  # (N,) int64 indices into the input cloud
    xyz: np.ndarray  # (N, 3) float32 kept points
    vox: Voxelization
    sparse: SparseIndex
    voxel_feats: np.ndarray  # (M, Cv) float32
    point_feats: np.ndarray  # (N, Cp) float32
    point_to_voxel: np.ndarray  # (N,) int64
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class CameraInputs:
    """Lifted CLIP features of the kept points."""

    clip_feats: np.ndarray  # (V, D) float32
    clip_index: np.ndarray  # (N,) int64, V = unseen
    hits: list[CameraHits] = field(default_factory=list)

    @property
    def seen(self) -> np.ndarray:
        return self.clip_index < len(self.clip_feats)


def point_columns(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``(N, len(names))`` float32 columns of a structured cloud; missing fields are 0."""
    out = np.zeros((len(points), len(names)), dtype=np.float32)
    fields = points.dtype.names or ()
    for k, name in enumerate(names):
        if name in fields:
            out[:, k] = points[name]
        elif name not in _warned_fields:
            _warned_fields.add(name)
            log.warning("point field %r is not in the cloud (fields %s): using zeros", name, fields)
    return out


def prepare_geometry(points: np.ndarray, config: ModelConfig) -> GeometryInputs:
    import time

    t0 = time.perf_counter()
    xyz_all = cloud_xyz(points) if points.dtype.names else np.asarray(points, np.float32)[:, :3]
    lo, hi = config.point_range
    lo_a, hi_a = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    with np.errstate(invalid="ignore"):
        ok = np.all(np.isfinite(xyz_all), axis=1) & np.all((xyz_all >= lo_a) & (xyz_all < hi_a), 1)
    kept = np.flatnonzero(ok)
    xyz = np.ascontiguousarray(xyz_all[kept])
    vox = voxelize(xyz, config.voxel_size, origin=lo)
    t1 = time.perf_counter()
    num_stages = len(config.lidar_encoder["encoder_channels"])
    sparse = build_sparse_index(vox.coords, num_stages)
    t2 = time.perf_counter()

    centers = vox.centers().astype(np.float32)
    p2v = vox.point_to_voxel
    extra = (
        point_columns(points[kept], config.point_features)
        if points.dtype.names
        else np.zeros((len(kept), len(config.point_features)), np.float32)
    )
    point_feats = np.concatenate([xyz - centers[p2v], extra], axis=1).astype(np.float32)
    voxel_mean = voxel_reduce(point_feats, vox, "mean").astype(np.float32)
    voxel_feats = np.concatenate([voxel_mean, centers[:, 2:3] * 0.5], axis=1)
    t3 = time.perf_counter()
    return GeometryInputs(
        num_input_points=len(points),
        kept=kept,
        xyz=xyz,
        vox=vox,
        sparse=sparse,
        voxel_feats=np.ascontiguousarray(voxel_feats, dtype=np.float32),
        point_feats=point_feats,
        point_to_voxel=p2v.astype(np.int64),
        timings={
            "voxelise": (t1 - t0) * 1e3 + (t3 - t2) * 1e3,
            "rulebook": (t2 - t1) * 1e3,
        },
    )


def camera_hits_for(geom: GeometryInputs, views: Sequence) -> list[CameraHits]:
    """Visible kept points of each view (``CameraView`` of a Frame), in view order."""
    return [camera_hits(geom.xyz, v.camera, v.T_cam_from_lidar) for v in views]


def camera_inputs(
    geom: GeometryInputs,
    hits: Sequence[CameraHits],
    feature_maps: Sequence[np.ndarray],
    image_sizes: Sequence[tuple[int, int]],
    embed_dim: int,
) -> CameraInputs:
    """Lift ``(h, w, D)`` feature maps; empty ``hits`` gives the LiDAR-only inputs."""
    n = len(geom.kept)
    if not hits:
        return CameraInputs(np.zeros((0, embed_dim), np.float32), np.zeros(n, np.int64), [])
    feats, index = lift(n, hits, feature_maps, image_sizes)
    return CameraInputs(feats, index, list(hits))


def no_camera_inputs(geom: GeometryInputs, embed_dim: int) -> CameraInputs:
    return camera_inputs(geom, [], [], [], embed_dim)


def feeds(
    geom: GeometryInputs, cam: CameraInputs, text_embeds: np.ndarray
) -> dict[str, np.ndarray]:
    """The exported graph's inputs by name."""
    out = {
        "voxel_feats": geom.voxel_feats,
        "point_feats": geom.point_feats,
        "point_to_voxel": geom.point_to_voxel,
        "clip_feats": np.ascontiguousarray(cam.clip_feats, dtype=np.float32),
        "clip_index": cam.clip_index.astype(np.int64, copy=False),
        "text_embeds": np.ascontiguousarray(text_embeds, dtype=np.float32),
    }
    out.update(geom.sparse.feeds())
    return out
