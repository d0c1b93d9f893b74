"""Simulated spinning multi-beam LiDAR: a sweep ray-cast against a scene snapshot.

Contract:
- :class:`LidarModel` is the sensor: a per-beam elevation table (ring 0 is
  the lowest beam), ``azimuth_steps`` firings per revolution, range limits,
  Gaussian range noise, random dropout and intensity noise. Built-in tables
  (:func:`LidarModel.for_beams`): 32 beams HDL-32E-like (-30.67..+10.67 deg),
  64 beams HDL-64E-like (-24.9..+2 deg, denser upper block), 128 beams
  VLS-128-like (-25..+15 deg, densest around the horizon).
- The sensor spins clockwise seen from above, starting at the rear; the
  ``time`` field is the firing's offset (s) within the sweep, from its
  azimuth. The whole sweep is cast at the sweep stamp (an ideal, de-skewed
  sweep: no motion distortion); ``time`` is informational.
- :func:`scan` returns the points that returned (``max_range`` not exceeded,
  not dropped) in firing order (azimuth column by column, rings bottom-up
  within a column) as a structured array ``x, y, z, intensity`` (float32,
  metres in the LiDAR frame; intensity in ``[0, 1]`` = reflectivity x
  cos(incidence) + noise), ``ring`` (uint16), ``time`` (float32), with the
  ground-truth class and instance of every point in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sim.raycast import CastResult, Primitives, cast
from ws3d_ros.sim.shading import shade_hits

POINT_DTYPE = np.dtype(
    [
        ("x", np.float32),
        ("y", np.float32),
        ("z", np.float32),
        ("intensity", np.float32),
        ("ring", np.uint16),
        ("time", np.float32),
    ]
)


def elevation_table(beams: int) -> np.ndarray:
    """Beam elevations in degrees, ring 0 (lowest) first, for 32, 64 or 128 beams."""
    if beams == 32:
        return np.linspace(-30.67, 10.67, 32)
    if beams == 64:
        # HDL-64E: lower block 32 beams at ~0.5 deg, upper block 32 beams at ~1/3 deg.
        lower = np.linspace(-24.9, -8.83, 32)
        upper = np.linspace(-8.33, 2.0, 32)
        return np.concatenate([lower, upper])
    if beams == 128:
        # VLS-128-like: finest spacing around -5 deg (the road 20 m ahead), coarser at the ends.
        u = np.linspace(-1.0, 1.0, 128)
        return -5.0 + 20.0 * (0.55 * u + 0.45 * u**3)
    raise Ws3dError(f"no built-in elevation table for {beams} beams; choose 32, 64 or 128")


@dataclass(frozen=True)
class LidarModel:
    """A spinning LiDAR; see the module docstring."""

    elevations_deg: tuple[float, ...]
    azimuth_steps: int = 2048
    max_range: float = 100.0
    min_range: float = 0.9
    range_noise: float = 0.015
    dropout: float = 0.03
    intensity_noise: float = 0.03
    rate_hz: float = 10.0

    def __post_init__(self) -> None:
        if len(self.elevations_deg) < 1 or self.azimuth_steps < 8:
            raise Ws3dError(
                f"LiDAR needs >= 1 beam and >= 8 azimuth steps, found "
                f"{len(self.elevations_deg)} and {self.azimuth_steps}"
            )
        if not 0.0 < self.min_range < self.max_range:
            raise Ws3dError(
                f"need 0 < min_range < max_range, found {self.min_range}, {self.max_range}"
            )

    @staticmethod
    def for_beams(beams: int, *, max_range: float = 100.0, rate_hz: float = 10.0) -> LidarModel:
        return LidarModel(
            tuple(float(e) for e in elevation_table(beams)),
            max_range=max_range,
            min_range=min(0.9, 0.1 * max_range),
            rate_hz=rate_hz,
        )

    @property
    def beams(self) -> int:
        return len(self.elevations_deg)

    @cached_property
    def _rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_az, n_b = self.azimuth_steps, self.beams
        step = np.arange(n_az)
        # Clockwise from the rear: azimuth decreases from +pi.
        az = math.pi - 2.0 * math.pi * (step + 0.5) / n_az
        el = np.radians(np.asarray(self.elevations_deg))
        az_g, el_g = np.meshgrid(az, el, indexing="ij")  # (n_az, n_b): firing order
        dirs = np.stack(
            [np.cos(el_g) * np.cos(az_g), np.cos(el_g) * np.sin(az_g), np.sin(el_g)], axis=-1
        ).reshape(-1, 3)
        ring = np.broadcast_to(np.arange(n_b, dtype=np.uint16), (n_az, n_b)).reshape(-1)
        time = np.repeat((step / (n_az * self.rate_hz)).astype(np.float32), n_b)
        return dirs.astype(np.float32), ring.copy(), time

    def rays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit directions (N, 3) in the LiDAR frame, ring (N,) and time (N,) in firing order."""
        return self._rays


@dataclass
class Sweep:
    """One simulated sweep: returned points and their ground truth, same order."""

    points: np.ndarray  # structured POINT_DTYPE (N,)
    labels: np.ndarray  # (N,) uint16
    instances: np.ndarray  # (N,) uint32
    ray_index: np.ndarray  # (N,) int64 index into model.rays() of each point


def scan(
    model: LidarModel,
    prims: Primitives,
    ground: object,
    T_world_from_lidar: np.ndarray,
    rng: np.random.Generator,
    *,
    ground_z: float = 0.0,
) -> Sweep:
    """Cast one sweep from pose ``T_world_from_lidar`` (4x4) into a scene snapshot."""
    dirs_l, ring, time = model.rays()
    R = np.asarray(T_world_from_lidar, np.float64)[:3, :3]
    origin = np.asarray(T_world_from_lidar, np.float64)[:3, 3]
    dirs_w = (dirs_l @ R.T.astype(np.float32)).astype(np.float32)
    res = cast(prims, origin, dirs_w, max_range=model.max_range, ground_z=ground_z)
    n = len(dirs_l)
    # Draw every random number for every ray, so a different scene does not shift the stream.
    drop = rng.random(n) < model.dropout
    range_noise = rng.normal(0.0, model.range_noise, n)
    int_noise = rng.normal(0.0, model.intensity_noise, n)
    keep = np.isfinite(res.t) & (res.t >= model.min_range) & ~drop
    idx = np.flatnonzero(keep)
    sub = CastResult(res.t[idx], res.hit[idx], res.normal[idx])
    _, refl, label, instance, _ = shade_hits(prims, ground, origin, dirs_w[idx], sub)
    cos_inc = np.abs(np.einsum("ij,ij->i", sub.normal, dirs_w[idx]))
    intensity = np.clip(refl * cos_inc + int_noise[idx], 0.0, 1.0)
    rng_m = sub.t + range_noise[idx]
    xyz = dirs_l[idx] * rng_m[:, None].astype(np.float32)
    points = np.empty(len(idx), POINT_DTYPE)
    points["x"], points["y"], points["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    points["intensity"] = intensity
    points["ring"] = ring[idx]
    points["time"] = time[idx]
    return Sweep(points, label.astype(np.uint16), instance.astype(np.uint32), idx)
