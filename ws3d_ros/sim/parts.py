"""Part studio: one simulated object with part ground truth, seen by a ring of cameras.

Contract:
- :data:`PART_CLASSES`: the part names of each object kind (``car``: body, window, wheel,
  light; ``pedestrian``: head, torso, arm, leg; ``chair``: seat, back, leg), from the
  scene builders of :mod:`ws3d_ros.sim.scene` (the same objects the street and indoor
  scenes hold; a car is built with its windows and lights as primitives of their own).
- :func:`render_object` builds one object of a kind from a seed (object frame: x forward,
  z up, origin on the ground) and returns a :class:`PartObject`:
  ``xyz`` (``(N, 3)`` float32 surface points, cast from ``n_scans`` scanner positions on
  a ring, with ``range_noise`` metres of noise along each ray; the ground is not
  scanned), per point ``part_class`` (index into the kind's part names, ``-1`` none) and
  ``part_instance`` (``1..``, one per part instance, ``0`` none), and ``views``: ``n_views``
  :class:`~ws3d_ros.data.frame.CameraView` s on a ring around the object (pinhole,
  ``width x height``, rendered by :class:`~ws3d_ros.sim.camera.CameraRenderer` on a grey
  floor, ``T_cam_from_lidar`` mapping the object frame to the optical frame), with one
  ``segment_map`` per view (``(H, W)`` int32 part instance id of each pixel, ``0`` =
  floor / sky, from the same ray caster) and ``segment_class`` (part instance id -> part
  name).
- Same ``(kind, seed, ...)`` -> the same object, points, images and maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ws3d_ros.data.frame import CameraView
from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.sim.camera import CameraRenderer
from ws3d_ros.sim.raycast import Primitives, cast
from ws3d_ros.sim.scene import Ground, _car, _chair, _Parts, _person
from ws3d_ros.sim.shading import TEX_PLAIN

PART_CLASSES: dict[str, tuple[str, ...]] = {
    "car": ("body", "window", "wheel", "light"),
    "pedestrian": ("head", "torso", "arm", "leg"),
    "chair": ("seat", "back", "leg"),
}

# Ring radius, camera height, look-at height (metres) per kind.
_RING = {"car": (6.5, 2.6, 0.7), "pedestrian": (3.6, 1.9, 0.9), "chair": (2.0, 1.4, 0.45)}


@dataclass
class PartObject:
    """One simulated object with its part ground truth and camera views."""

    kind: str
    seed: int
    xyz: np.ndarray  # (N, 3) float32, object frame
    part_class: np.ndarray  # (N,) int32 index into PART_CLASSES[kind], -1 none
    part_instance: np.ndarray  # (N,) uint32, 0 none
    views: list[CameraView]
    segment_maps: list[np.ndarray]  # per view (H, W) int32 part instance id, 0 none
    segment_class: dict[int, str] = field(default_factory=dict)

    @property
    def part_names(self) -> tuple[str, ...]:
        return PART_CLASSES[self.kind]


def build_object(kind: str, seed: int) -> tuple[Primitives, np.ndarray, np.ndarray]:
    """The object's primitives and, per primitive, its part class and part instance id."""
    if kind not in PART_CLASSES:
        raise Ws3dError(f"object kind must be one of {list(PART_CLASSES)}, found {kind!r}")
    rng = np.random.default_rng([seed, 24])
    if kind == "car":
        parts, _, _ = _car(rng, 0, 1, detail=True)
    elif kind == "pedestrian":
        parts = _person(rng, 0, 1)
    else:
        parts = _chair(rng, 0, 1, (0.55, 0.3, 0.2))
    return _part_table(parts, PART_CLASSES[kind])


def _part_table(parts: _Parts, names: tuple[str, ...]) -> tuple[Primitives, np.ndarray, np.ndarray]:
    n = len(parts)
    part_class = np.full(n, -1, np.int32)
    part_instance = np.zeros(n, np.uint32)
    keys: dict[int, int] = {}
    for row in range(n):
        if row in parts.part:
            name, key = parts.part[row]
            part_class[row] = names.index(name)
            part_instance[row] = keys.setdefault(key, len(keys) + 1)
    return parts.build(), part_class, part_instance


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``T_world_from_cam`` (4x4) of an optical frame (z forward, x right, y down)."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, (0.0, 0.0, 1.0))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T


def _ring(kind: str, n: int, phase: float, lift: float) -> list[np.ndarray]:
    radius, height, target_z = _RING[kind]
    target = np.array([0.0, 0.0, target_z])
    out = []
    for k in range(n):
        a = phase + 2.0 * math.pi * k / n
        eye = np.array([radius * math.cos(a), radius * math.sin(a), height + lift])
        out.append(_look_at(eye, target))
    return out


def _studio(max_range: float) -> SimpleNamespace:
    """The scene attributes the camera renderer reads: a grey floor, soft light."""
    ground = Ground(
        z=0.0,
        rects=np.array([[-1e3, 1e3, -1e3, 1e3]], np.float64),
        label=np.array([0], np.int32),
        color=np.array([[0.55, 0.55, 0.52]], np.float32),
        color2=np.array([[0.5, 0.5, 0.48]], np.float32),
        reflectivity=np.array([0.5], np.float32),
        texture=np.array([TEX_PLAIN], np.int8),
        markings=np.zeros((0, 10), np.float64),
    )
    sun = np.array([0.4, 0.3, 1.0])
    return SimpleNamespace(
        max_range=max_range,
        ground=ground,
        sun=sun / np.linalg.norm(sun),
        ambient=0.55,
        cloudiness=0.0,
        sky_zenith=np.array([0.35, 0.5, 0.8]),
        sky_horizon=np.array([0.8, 0.85, 0.9]),
        fog_distance=math.inf,
    )


def render_object(
    kind: str,
    seed: int = 0,
    *,
    n_views: int = 8,
    width: int = 160,
    height: int = 120,
    hfov_deg: float = 55.0,
    n_scans: int = 6,
    scan_resolution: tuple[int, int] = (120, 90),
    range_noise: float = 0.005,
) -> PartObject:
    """One object, its scanned points and ``n_views`` rendered views (module docstring)."""
    if n_views < 1 or n_scans < 1:
        raise Ws3dError(f"n_views and n_scans must be >= 1, found {n_views}, {n_scans}")
    prims, prim_class, prim_inst = build_object(kind, seed)
    names = PART_CLASSES[kind]
    max_range = 4.0 * _RING[kind][0]
    studio = _studio(max_range)
    rng = np.random.default_rng([seed, 24, 1])

    # Points: a ring of scanners between the cameras, a little higher.
    sw, sh = scan_resolution
    scanner = _pinhole(sw, sh, hfov_deg)
    scan_dirs = _unit_rays(scanner)
    xyz_parts, hit_parts = [], []
    for T in _ring(kind, n_scans, math.pi / n_scans, 0.4):
        dirs = (scan_dirs @ T[:3, :3].T).astype(np.float32)
        res = cast(prims, T[:3, 3], dirs, max_range=max_range, ground_z=None)
        ok = res.hit >= 0
        t = res.t[ok] + rng.normal(0.0, range_noise, int(ok.sum()))
        xyz_parts.append(T[:3, 3] + dirs[ok] * t[:, None])
        hit_parts.append(res.hit[ok])
    xyz = np.concatenate(xyz_parts).astype(np.float32)
    hit = np.concatenate(hit_parts)

    camera = _pinhole(width, height, hfov_deg)
    renderer = CameraRenderer(camera, noise=0.01)
    cam_dirs = _unit_rays(camera)
    views, maps = [], []
    for k, T in enumerate(_ring(kind, n_views, 0.0, 0.0)):
        render = renderer.render(studio, prims, T, rng)
        dirs = (cam_dirs @ T[:3, :3].T).astype(np.float32)
        res = cast(prims, T[:3, 3], dirs, max_range=max_range, ground_z=0.0)
        seg = np.where(res.hit >= 0, prim_inst[np.maximum(res.hit, 0)], 0)
        maps.append(seg.reshape(height, width).astype(np.int32))
        views.append(
            CameraView(
                name=f"cam{k}",
                camera=camera,
                T_cam_from_lidar=Transform.from_matrix(np.linalg.inv(T)),
                image=render.rgb,
            )
        )
    segment_class = {
        int(i): names[int(c)] for i, c in zip(prim_inst, prim_class, strict=True) if i > 0
    }
    return PartObject(
        kind=kind,
        seed=seed,
        xyz=xyz,
        part_class=prim_class[hit].astype(np.int32),
        part_instance=prim_inst[hit].astype(np.uint32),
        views=views,
        segment_maps=maps,
        segment_class=segment_class,
    )


def _pinhole(width: int, height: int, hfov_deg: float) -> CameraModel:
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
    K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    return CameraModel(width, height, K, np.zeros(5), "plumb_bob")


def _unit_rays(camera: CameraModel) -> np.ndarray:
    rays = np.asarray(camera.pixel_rays(), np.float64).reshape(-1, 3)
    return (rays / np.linalg.norm(rays, axis=1, keepdims=True)).astype(np.float32)
