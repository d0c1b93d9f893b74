"""Simulated camera: renders a scene snapshot by ray casting through a camera model's pixels.

Contract:
- :class:`CameraRenderer` takes a :class:`~ws3d_ros.geometry.camera.CameraModel`
  (pinhole + plumb_bob/equidistant distortion) and casts one ray per pixel
  through :meth:`CameraModel.pixel_rays` (the undistorted ray of each
  distorted pixel centre), with the same intersection code as the LiDAR
  (:func:`ws3d_ros.sim.raycast.cast`), so the image and the sweep agree; the
  z-buffer is the nearest hit.
- :meth:`CameraRenderer.render` returns a :class:`Render`: the RGB image
  (uint8, H x W x 3) and, from the same rays, the class-id image (uint16,
  65535 where nothing was hit), the instance-id image (uint32) and the depth
  along the optical axis (float32, inf = sky).
- Shading: procedural albedo (per-class base colour with per-instance
  variation and texture, :mod:`ws3d_ros.sim.shading`), Lambertian light from
  the scene's sun direction with cast shadows, a sky gradient where nothing is
  hit, distance fog, a slight vignette and seeded sensor noise. Deterministic
  for a given ``rng`` state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ws3d_ros.labels import UNKNOWN_LABEL
from ws3d_ros.sim.raycast import HIT_NONE, Primitives, cast, shadow_mask
from ws3d_ros.sim.shading import shade_hits, value_noise


@dataclass
class Render:
    """One rendered view: colour and the ground truth of the same rays."""

    rgb: np.ndarray  # (H, W, 3) uint8
    label: np.ndarray  # (H, W) uint16, UNKNOWN_LABEL where nothing was hit
    instance: np.ndarray  # (H, W) uint32
    depth: np.ndarray  # (H, W) float32, z in the optical frame; inf where nothing was hit


@nb.njit(cache=True, error_model="numpy", parallel=True)
def _compose(
    origin: np.ndarray,
    cloudiness: float,
    albedo: np.ndarray,
    normal: np.ndarray,
    dirs: np.ndarray,
    t: np.ndarray,
    hit: np.ndarray,
    emissive: np.ndarray,
    lit: np.ndarray,
    sun: np.ndarray,
    ambient: float,
    zenith: np.ndarray,
    horizon: np.ndarray,
    fog_distance: float,
    vignette: np.ndarray,
    out: np.ndarray,
) -> None:
    for i in nb.prange(hit.shape[0]):
        dz = dirs[i, 2]
        if dz > 0.0:
            k = dz**0.6
        else:
            k = 0.0
        sky0 = horizon[0] + (zenith[0] - horizon[0]) * k
        sky1 = horizon[1] + (zenith[1] - horizon[1]) * k
        sky2 = horizon[2] + (zenith[2] - horizon[2]) * k
        if hit[i] == HIT_NONE:
            r, g, b = sky0, sky1, sky2
            if dz > 0.02:  # clouds on a plane 1 km up, fixed in the world
                s = 1000.0 / dz
                cx = (origin[0] + dirs[i, 0] * s) / 400.0
                cy = (origin[1] + dirs[i, 1] * s) / 400.0
                n = 0.65 * value_noise(cx, cy, 0.0, 11.0) + 0.35 * value_noise(
                    2.7 * cx, 2.7 * cy, 0.0, 12.0
                )
                c = min(max((n - 0.5) / 0.25, 0.0), 1.0) * min(dz * 6.0, 1.0) * cloudiness
                r += (0.96 - r) * c
                g += (0.96 - g) * c
                b += (0.97 - b) * c
        else:
            if emissive[i]:
                shade = 1.0
            else:
                ndl = normal[i, 0] * sun[0] + normal[i, 1] * sun[1] + normal[i, 2] * sun[2]
                direct = max(ndl, 0.0) if lit[i] else 0.0
                # Sky light: surfaces facing up see more of the sky than walls do.
                sky_light = ambient * (0.75 + 0.25 * normal[i, 2])
                shade = sky_light + (1.0 - ambient) * direct
            r = albedo[i, 0] * shade
            g = albedo[i, 1] * shade
            b = albedo[i, 2] * shade
            if fog_distance < 1e30:
                f = 1.0 - math.exp(-t[i] / fog_distance)
                r += (horizon[0] - r) * f
                g += (horizon[1] - g) * f
                b += (horizon[2] - b) * f
        v = vignette[i]
        out[i, 0] = r * v
        out[i, 1] = g * v
        out[i, 2] = b * v


class CameraRenderer:
    """Renders views of one camera model; the pixel ray table is computed once."""

    def __init__(self, camera: object, *, noise: float = 0.012) -> None:
        self.camera = camera
        self.height = int(camera.height)
        self.width = int(camera.width)
        rays = np.asarray(camera.pixel_rays(), np.float64).reshape(-1, 3)
        # Pixels without a pre-image under the distortion model (NaN rays) stay black.
        self._valid = np.all(np.isfinite(rays), axis=1)
        rays = np.where(self._valid[:, None], rays, (0.0, 0.0, 1.0))
        norm = np.linalg.norm(rays, axis=1, keepdims=True)
        self._rays = (rays / norm).astype(np.float32)  # optical frame, unit length
        self._cos_axis = self._rays[:, 2].astype(np.float64)  # depth = range * cos
        uv = np.stack(
            np.meshgrid(
                (np.arange(self.width) + 0.5) / self.width - 0.5,
                (np.arange(self.height) + 0.5) / self.height - 0.5,
            ),
            axis=-1,
        ).reshape(-1, 2)
        self._vignette = (1.0 - 0.35 * (uv[:, 0] ** 2 + uv[:, 1] ** 2)).astype(np.float64)
        self.noise = float(noise)

    def render(
        self,
        scene: object,
        prims: Primitives,
        T_world_from_cam: np.ndarray,
        rng: np.random.Generator,
    ) -> Render:
        """Render ``prims`` (a snapshot of ``scene``) seen from ``T_world_from_cam`` (4x4)."""
        T = np.asarray(T_world_from_cam, np.float64)
        origin = T[:3, 3]
        dirs = (self._rays @ T[:3, :3].T.astype(np.float32)).astype(np.float32)
        res = cast(prims, origin, dirs, max_range=scene.max_range * 1.5, ground_z=scene.ground.z)
        albedo, _, label, instance, emissive = shade_hits(prims, scene.ground, origin, dirs, res)
        lit = shadow_mask(prims, origin, dirs, res, np.asarray(scene.sun, np.float64))
        n = len(dirs)
        rgb = np.empty((n, 3), np.float64)
        _compose(
            origin,
            float(scene.cloudiness),
            albedo,
            res.normal,
            dirs,
            res.t,
            res.hit,
            emissive,
            lit,
            np.asarray(scene.sun, np.float64),
            float(scene.ambient),
            np.asarray(scene.sky_zenith, np.float64),
            np.asarray(scene.sky_horizon, np.float64),
            float(scene.fog_distance) if math.isfinite(scene.fog_distance) else 1e31,
            self._vignette,
            rgb,
        )
        if self.noise > 0:
            rgb += rng.normal(0.0, self.noise, rgb.shape)
        image = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        hit = res.hit != HIT_NONE
        if not self._valid.all():
            image[~self._valid] = 0
            hit &= self._valid
        label_img = np.where(hit, label, UNKNOWN_LABEL).astype(np.uint16)
        depth = np.where(hit, res.t * self._cos_axis, np.inf).astype(np.float32)
        shape = (self.height, self.width)
        return Render(
            image.reshape(*shape, 3),
            label_img.reshape(shape),
            instance.astype(np.uint32).reshape(shape),
            depth.reshape(shape),
        )
