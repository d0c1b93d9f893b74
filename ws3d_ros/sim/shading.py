"""Surface materials shared by the simulated camera and LiDAR (numba).

Contract: :func:`surface` turns one ray hit (world point, what was hit, the
primitive's or ground region's material) into an RGB albedo in ``[0, 1]``, a
LiDAR reflectivity and an emissive flag. The camera shades the albedo; the
LiDAR uses the reflectivity, so lane markings, windows and retro-reflective
signs show in both. Textures are procedural functions of the hit position
(hash value noise, window grids, stripes): deterministic, no images loaded.

Texture kinds (``Primitives.texture`` and ground region ``texture``) are the
``TEX_*`` constants below.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

TEX_PLAIN = 0
TEX_ASPHALT = 1
TEX_FACADE = 2
TEX_FOLIAGE = 3
TEX_GRASS = 4
TEX_TILES = 5
TEX_CABIN = 6
TEX_WOOD = 7
TEX_FABRIC = 8
TEX_BOOKS = 9
TEX_LIGHT = 10
TEX_CONE = 11
TEX_SIGN = 12
TEX_BARK = 13
TEX_CARBODY = 14


@nb.njit(cache=True, error_model="numpy")
def _hash(ix: float, iy: float, iz: float, seed: float) -> float:
    v = math.sin(ix * 12.9898 + iy * 78.233 + iz * 37.719 + seed * 4.581) * 43758.5453
    return v - math.floor(v)


@nb.njit(cache=True, error_model="numpy")
def value_noise(x: float, y: float, z: float, seed: float) -> float:
    """Smooth value noise in ``[0, 1)`` on the unit lattice."""
    ix, iy, iz = math.floor(x), math.floor(y), math.floor(z)
    fx, fy, fz = x - ix, y - iy, z - iz
    ux, uy, uz = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy), fz * fz * (3 - 2 * fz)
    c000 = _hash(ix, iy, iz, seed)
    c100 = _hash(ix + 1, iy, iz, seed)
    c010 = _hash(ix, iy + 1, iz, seed)
    c110 = _hash(ix + 1, iy + 1, iz, seed)
    c001 = _hash(ix, iy, iz + 1, seed)
    c101 = _hash(ix + 1, iy, iz + 1, seed)
    c011 = _hash(ix, iy + 1, iz + 1, seed)
    c111 = _hash(ix + 1, iy + 1, iz + 1, seed)
    x00 = c000 + (c100 - c000) * ux
    x10 = c010 + (c110 - c010) * ux
    x01 = c001 + (c101 - c001) * ux
    x11 = c011 + (c111 - c011) * ux
    y0 = x00 + (x10 - x00) * uy
    y1 = x01 + (x11 - x01) * uy
    return y0 + (y1 - y0) * uz


@nb.njit(cache=True, error_model="numpy")
def _fbm(x: float, y: float, z: float, seed: float) -> float:
    return 0.65 * value_noise(x, y, z, seed) + 0.35 * value_noise(
        2.3 * x + 17.0, 2.3 * y + 5.0, 2.3 * z + 3.0, seed
    )


@nb.njit(cache=True, error_model="numpy")
def ground_region(x: float, y: float, rects: np.ndarray) -> int:
    """Index of the ground region under ``(x, y)``: the last rectangle that holds it, else 0."""
    for r in range(rects.shape[0] - 1, 0, -1):
        if rects[r, 0] <= x <= rects[r, 1] and rects[r, 2] <= y <= rects[r, 3]:
            return r
    return 0


@nb.njit(cache=True, error_model="numpy")
def marking_at(x: float, y: float, markings: np.ndarray) -> int:
    """Index of the painted marking under ``(x, y)``, or -1 (rows as in ``Ground.markings``)."""
    for m in range(markings.shape[0]):
        if markings[m, 0] <= x <= markings[m, 1] and markings[m, 2] <= y <= markings[m, 3]:
            period = markings[m, 5]
            if period <= 0.0:
                return m
            u = x - markings[m, 0] if markings[m, 4] == 0 else y - markings[m, 2]
            if (u % period) < markings[m, 6] * period:
                return m
    return -1


@nb.njit(cache=True, error_model="numpy")
def surface(
    tex: int,
    r: float,
    g: float,
    b: float,
    r2: float,
    g2: float,
    b2: float,
    wx: float,
    wy: float,
    wz: float,
    lx: float,
    ly: float,
    lz: float,
    lnx: float,
    lny: float,
    lnz: float,
    ha: float,
    hb: float,
    hc: float,
    seed: float,
) -> tuple[float, float, float, float, bool]:
    """Albedo ``(r, g, b)``, reflectivity factor and emissive flag of one hit.

    ``w*`` is the world hit point, ``l*`` the hit point and ``ln*`` the normal in
    the primitive's local frame (centre at 0, yaw removed), ``ha, hb, hc`` its
    half extents, ``seed`` a per-object number for variation.
    """
    f = 1.0
    refl = 1.0
    if tex == TEX_PLAIN:
        f = 0.9 + 0.2 * value_noise(wx * 2.0, wy * 2.0, wz * 2.0, seed)
    elif tex == TEX_ASPHALT:
        f = (
            0.8
            + 0.25 * _fbm(wx * 3.0, wy * 3.0, 0.0, 1.0)
            + 0.15 * value_noise(wx * 0.25, wy * 0.25, 0.0, 2.0)
        )
        refl = 0.9 + 0.2 * value_noise(wx * 2.0, wy * 2.0, 0.0, 3.0)
    elif tex == TEX_FACADE:
        if abs(lnz) > 0.5:  # roof
            r, g, b = 0.35, 0.33, 0.32
            f = 0.85 + 0.3 * value_noise(wx, wy, 0.0, seed)
        else:
            u = ly if abs(lnx) > 0.5 else lx
            height = lz + hc
            spacing = 2.6 + 1.2 * _hash(seed, 1.0, 2.0, 3.0)
            storey = 2.9 + 0.6 * _hash(seed, 4.0, 5.0, 6.0)
            du = (u + 100.0 * spacing) % spacing
            dz = height % storey
            span = hb if abs(lnx) > 0.5 else ha
            inside = abs(u) < span - 0.8
            if height < storey:  # ground floor: wide shop windows
                window = inside and 0.6 < dz < storey - 0.5 and du > 0.25 * spacing
            else:
                window = inside and 0.9 < dz < storey - 0.6 and 0.3 * spacing < du < 0.8 * spacing
            if window and height < 2.0 * hc - 0.6:
                lit = _hash(math.floor(u / spacing), math.floor(height / storey), seed, 7.0)
                k = 0.7 + 0.6 * lit
                r, g, b = r2 * k, g2 * k, b2 * k
                refl = 0.25
            else:
                f = 0.85 + 0.25 * _fbm(wx * 1.5, wy * 1.5, wz * 1.5, seed)
    elif tex == TEX_FOLIAGE:
        n = _fbm(wx * 3.0, wy * 3.0, wz * 3.0, seed)
        f = 0.55 + 0.9 * n * n
        m = value_noise(wx * 0.7, wy * 0.7, wz * 0.7, seed + 1.0)
        r, g, b = r + (r2 - r) * m, g + (g2 - g) * m, b + (b2 - b) * m
    elif tex == TEX_GRASS:
        f = 0.75 + 0.4 * _fbm(wx * 2.0, wy * 2.0, 0.0, 5.0)
        m = value_noise(wx * 0.15, wy * 0.15, 0.0, 6.0)
        m = m * m
        r, g, b = r + (r2 - r) * m, g + (g2 - g) * m, b + (b2 - b) * m
        refl = 0.9 + 0.2 * m
    elif tex == TEX_TILES:
        gx = (wx + 1000.0) % 0.6
        gy = (wy + 1000.0) % 0.6
        f = 0.88 + 0.15 * value_noise(wx * 4.0, wy * 4.0, wz * 4.0, 8.0)
        if gx < 0.03 or gy < 0.03:
            f *= 0.75
    elif tex == TEX_CABIN:
        if abs(lnz) < 0.5:
            u = ly if abs(lnx) > 0.5 else lx
            span = hb if abs(lnx) > 0.5 else ha
            if lz < hc - 0.06 and abs(u) < span - 0.08:
                r, g, b = r2, g2, b2
                refl = 0.3
                f = 0.85 + 0.3 * (lz + hc) / (2.0 * hc)
    elif tex == TEX_WOOD:
        grain = 0.5 + 0.5 * math.sin((lx + 0.3 * value_noise(lx, ly * 8.0, lz, seed)) * 9.0)
        f = 0.8 + 0.2 * grain
        plank = math.floor((ly + 100.0) / 0.25)
        f *= 0.9 + 0.2 * _hash(plank, seed, 1.0, 2.0)
    elif tex == TEX_FABRIC:
        f = 0.9 + 0.15 * value_noise(wx * 25.0, wy * 25.0, wz * 25.0, seed)
    elif tex == TEX_BOOKS:
        if abs(lnx) > 0.5 or abs(lny) > 0.5:
            k = math.floor((lx + ly + 100.0) / 0.045)
            h1 = _hash(k, seed, 3.0, 1.0)
            h2 = _hash(k, seed, 5.0, 2.0)
            r, g, b = 0.25 + 0.6 * h1, 0.2 + 0.5 * h2, 0.2 + 0.6 * (1.0 - h1)
            if (lz + hc) > (0.75 + 0.25 * h2) * 2.0 * hc:  # gap above a short book
                r, g, b = r2, g2, b2
    elif tex == TEX_LIGHT:
        return 1.0, 0.98, 0.92, 1.0, True
    elif tex == TEX_CONE:
        frac = (lz + hc) / (2.0 * hc)
        if 0.45 < frac < 0.68:
            r, g, b = r2, g2, b2
            refl = 1.4
    elif tex == TEX_SIGN:
        if abs(lnx) > 0.5 and lnx < 0.0:
            if abs(ly) > 0.8 * hb or abs(lz) > 0.8 * hc:
                r, g, b = r2, g2, b2
        else:
            r, g, b = 0.55, 0.55, 0.57
            refl = 0.35
    elif tex == TEX_CARBODY:
        f = 0.96 + 0.04 * value_noise(wx * 3.0, wy * 3.0, wz * 3.0, seed)
        if lz < -hc + 0.1:  # bumper / sills
            r, g, b = 0.12, 0.12, 0.13
            refl = 0.6
        elif abs(lnx) > 0.5:
            lamp = abs(ly) > hb - 0.35 and lz > hc - 0.22
            if lamp and lnx < 0.0:  # tail lights
                r, g, b = 0.75, 0.05, 0.04
                refl = 1.5
            elif lamp:  # head lights
                r, g, b = 0.95, 0.95, 0.85
                refl = 1.5
            elif abs(ly) < 0.26 and abs(lz + 0.2 * hc) < 0.07:  # number plate
                r, g, b = 0.92, 0.92, 0.88
                refl = 2.0
    elif tex == TEX_BARK:
        f = 0.7 + 0.5 * value_noise(wx * 6.0, wy * 6.0, wz * 1.5, seed)
    return min(r * f, 1.0), min(g * f, 1.0), min(b * f, 1.0), refl, False


@nb.njit(cache=True, error_model="numpy")
def local_frame(
    geom: np.ndarray, wx: float, wy: float, wz: float, nx: float, ny: float, nz: float
) -> tuple[float, float, float, float, float, float]:
    """Hit point and normal in a primitive's local frame (centre at 0, yaw removed)."""
    c, s = geom[6], geom[7]
    px, py = wx - geom[0], wy - geom[1]
    return c * px + s * py, -s * px + c * py, wz - geom[2], c * nx + s * ny, -s * nx + c * ny, nz


@nb.njit(cache=True, error_model="numpy", parallel=True)
def _shade_hits(
    origin: np.ndarray,
    dirs: np.ndarray,
    t: np.ndarray,
    hit: np.ndarray,
    normal: np.ndarray,
    geom: np.ndarray,
    color: np.ndarray,
    color2: np.ndarray,
    reflectivity: np.ndarray,
    texture: np.ndarray,
    label: np.ndarray,
    instance: np.ndarray,
    g_rects: np.ndarray,
    g_label: np.ndarray,
    g_color: np.ndarray,
    g_color2: np.ndarray,
    g_refl: np.ndarray,
    g_tex: np.ndarray,
    markings: np.ndarray,
    out_albedo: np.ndarray,
    out_refl: np.ndarray,
    out_label: np.ndarray,
    out_instance: np.ndarray,
    out_emissive: np.ndarray,
) -> None:
    for i in nb.prange(hit.shape[0]):
        h = hit[i]
        out_emissive[i] = False
        if h == -1:  # HIT_NONE
            out_albedo[i, 0] = out_albedo[i, 1] = out_albedo[i, 2] = 0.0
            out_refl[i] = 0.0
            out_label[i] = -1
            out_instance[i] = 0
            continue
        d = t[i]
        wx = origin[0] + d * dirs[i, 0]
        wy = origin[1] + d * dirs[i, 1]
        wz = origin[2] + d * dirs[i, 2]
        if h == -2:  # HIT_GROUND
            g = ground_region(wx, wy, g_rects)
            r, gg, b, f, _ = surface(
                g_tex[g],
                g_color[g, 0],
                g_color[g, 1],
                g_color[g, 2],
                g_color2[g, 0],
                g_color2[g, 1],
                g_color2[g, 2],
                wx,
                wy,
                wz,
                wx,
                wy,
                wz,
                0.0,
                0.0,
                1.0,
                1.0,
                1.0,
                1.0,
                float(g),
            )
            refl = g_refl[g] * f
            m = marking_at(wx, wy, markings)
            if m >= 0:
                k = 0.85 + 0.15 * value_noise(wx * 3.0, wy * 3.0, 0.0, 9.0)
                r, gg, b = markings[m, 7] * k, markings[m, 8] * k, markings[m, 9] * k
                refl = 0.7
            out_label[i] = g_label[g]
            out_instance[i] = 0
        else:
            lx, ly, lz, lnx, lny, lnz = local_frame(
                geom[h], wx, wy, wz, normal[i, 0], normal[i, 1], normal[i, 2]
            )
            r, gg, b, f, emissive = surface(
                texture[h],
                color[h, 0],
                color[h, 1],
                color[h, 2],
                color2[h, 0],
                color2[h, 1],
                color2[h, 2],
                wx,
                wy,
                wz,
                lx,
                ly,
                lz,
                lnx,
                lny,
                lnz,
                geom[h, 3],
                geom[h, 4],
                geom[h, 5],
                float(h % 9973) + 0.5 * instance[h],
            )
            refl = reflectivity[h] * f
            out_emissive[i] = emissive
            out_label[i] = label[h]
            out_instance[i] = instance[h]
        out_albedo[i, 0] = r
        out_albedo[i, 1] = gg
        out_albedo[i, 2] = b
        out_refl[i] = refl


def shade_hits(
    prims: Any, ground: Any, origin: np.ndarray, dirs: np.ndarray, cast_result: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Albedo (N, 3), reflectivity (N,), label (N,) int32 (-1 = none), instance, emissive.

    ``prims`` is a :class:`~ws3d_ros.sim.raycast.Primitives`, ``ground`` a
    :class:`~ws3d_ros.sim.scene.Ground`, ``cast_result`` what
    :func:`~ws3d_ros.sim.raycast.cast` returned for ``origin`` and ``dirs``.
    """
    n = len(cast_result.hit)
    albedo = np.empty((n, 3), np.float32)
    refl = np.empty(n, np.float32)
    label = np.empty(n, np.int32)
    instance = np.empty(n, np.int32)
    emissive = np.empty(n, np.bool_)
    _shade_hits(
        np.ascontiguousarray(origin, np.float64),
        np.ascontiguousarray(dirs, np.float32),
        cast_result.t,
        cast_result.hit,
        cast_result.normal,
        np.ascontiguousarray(prims.geom),
        prims.color,
        prims.color2,
        prims.reflectivity,
        prims.texture,
        prims.label,
        prims.instance,
        ground.rects,
        ground.label,
        ground.color,
        ground.color2,
        ground.reflectivity,
        ground.texture,
        ground.markings,
        albedo,
        refl,
        label,
        instance,
        emissive,
    )
    return albedo, refl, label, instance, emissive
