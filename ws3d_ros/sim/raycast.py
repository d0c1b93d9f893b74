"""Ray casting of simulator scenes (numba): the one intersection code of LiDAR and cameras.

Contract:
- A scene snapshot is a :class:`Primitives` set (world frame, z up) plus an
  optional horizontal ground plane ``z = ground_z``. Primitive kinds: oriented
  box (yaw about z), vertical cylinder, ellipsoid (yaw about z), vertical cone
  (apex up). ``geom`` rows are ``cx, cy, cz, a, b, c, cos_yaw, sin_yaw`` with
  ``a, b, c`` the half extents (box), radius/radius/half height (cylinder,
  cone) or semi-axes (ellipsoid).
- :func:`cast` intersects rays that all start at one ``origin`` (a spinning
  LiDAR, a pinhole camera) with the snapshot and returns, per ray, the
  distance to the nearest hit (``inf`` for none within ``max_range``), what
  was hit (primitive index, :data:`HIT_GROUND` or :data:`HIT_NONE`) and the
  unit surface normal facing the ray. Because every sensor uses this
  function, images and sweeps agree by construction; the z-buffer is the
  nearest hit.
- Acceleration: primitives are binned by the azimuth interval they cover as
  seen from ``origin`` and sorted by their nearest distance, with an elevation
  interval per primitive, so a ray tests only the few primitives in its
  azimuth bin and stops once the next one starts beyond its current hit.
- Deterministic: rays are independent (``prange`` writes disjoint slots), so
  results do not depend on the thread count or scheduling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

BOX = 0
CYLINDER = 1
ELLIPSOID = 2
CONE = 3
KIND_NAMES = ("box", "cylinder", "ellipsoid", "cone")

HIT_NONE = -1
HIT_GROUND = -2

_EPS = 1e-6
_NBINS = 2048


FIELDS = ("kind", "geom", "color", "color2", "reflectivity", "texture", "label", "instance")


@dataclass
class Primitives:
    """A flat set of primitives with their material and label (one row each)."""

    kind: np.ndarray  # (P,) int8, BOX/CYLINDER/ELLIPSOID/CONE
    geom: np.ndarray  # (P, 8) float64: cx, cy, cz, a, b, c, cos_yaw, sin_yaw
    color: np.ndarray  # (P, 3) float32 RGB in [0, 1]
    color2: np.ndarray  # (P, 3) float32 secondary RGB (windows, stripes) for the texture
    reflectivity: np.ndarray  # (P,) float32 LiDAR reflectivity in [0, 1]
    texture: np.ndarray  # (P,) int8 texture kind (see camera.py)
    label: np.ndarray  # (P,) int32 class id
    instance: np.ndarray  # (P,) int32 instance id (0 = stuff)

    def __len__(self) -> int:
        return len(self.kind)

    @staticmethod
    def empty() -> Primitives:
        return Primitives(
            np.zeros(0, np.int8),
            np.zeros((0, 8), np.float64),
            np.zeros((0, 3), np.float32),
            np.zeros((0, 3), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int8),
            np.zeros(0, np.int32),
            np.zeros(0, np.int32),
        )

    @staticmethod
    def concat(parts: list[Primitives]) -> Primitives:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Primitives.empty()
        return Primitives(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))

    def take(self, index: np.ndarray) -> Primitives:
        return Primitives(*(getattr(self, f)[index] for f in FIELDS))


@dataclass
class CastResult:
    """Per-ray nearest hit: distance, what was hit, unit normal facing the ray."""

    t: np.ndarray  # (N,) float64, inf where nothing was hit
    hit: np.ndarray  # (N,) int32: primitive index, HIT_GROUND or HIT_NONE
    normal: np.ndarray  # (N, 3) float32


# --------------------------------------------------------------------------- index


@nb.njit(cache=True, error_model="numpy")
def _aabb_half(kind: int, g: np.ndarray) -> tuple[float, float, float]:
    c, s = abs(g[6]), abs(g[7])
    if kind == BOX or kind == ELLIPSOID:
        return c * g[3] + s * g[4], s * g[3] + c * g[4], g[5]
    return g[3], g[3], g[5]


@nb.njit(cache=True, error_model="numpy")
def _build_index(
    kind: np.ndarray, geom: np.ndarray, origin: np.ndarray, max_range: float, nbins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = kind.shape[0]
    tnear = np.empty(n)
    el_lo = np.empty(n)
    el_hi = np.empty(n)
    b_lo = np.zeros(n, np.int64)
    b_cnt = np.zeros(n, np.int64)  # 0 = culled
    width = 2.0 * math.pi / nbins
    ox, oy, oz = origin[0], origin[1], origin[2]
    for p in range(n):
        g = geom[p]
        ex, ey, ez = _aabb_half(kind[p], g)
        x0, x1 = g[0] - ex - ox, g[0] + ex - ox
        y0, y1 = g[1] - ey - oy, g[1] + ey - oy
        z0, z1 = g[2] - ez - oz, g[2] + ez - oz
        nx = max(x0, 0.0, -x1)
        ny = max(y0, 0.0, -y1)
        nz = max(z0, 0.0, -z1)
        dh_min = math.sqrt(nx * nx + ny * ny)
        tnear[p] = math.sqrt(dh_min * dh_min + nz * nz)
        if tnear[p] > max_range:
            continue
        fx = max(abs(x0), abs(x1))
        fy = max(abs(y0), abs(y1))
        dh_max = math.sqrt(fx * fx + fy * fy)
        el_hi[p] = (math.atan2(z1, dh_min) if z1 >= 0.0 else math.atan2(z1, dh_max)) + 1e-9
        el_lo[p] = (math.atan2(z0, dh_min) if z0 < 0.0 else math.atan2(z0, dh_max)) - 1e-9
        if dh_min <= 0.0:
            b_lo[p] = 0
            b_cnt[p] = nbins
            continue
        # Outside the footprint, the azimuth span is at most pi and its ends are corners.
        a0 = math.atan2(0.5 * (y0 + y1), 0.5 * (x0 + x1))
        dmin = 0.0
        dmax = 0.0
        for cx in (x0, x1):
            for cy in (y0, y1):
                d = math.atan2(cy, cx) - a0
                if d > math.pi:
                    d -= 2.0 * math.pi
                elif d < -math.pi:
                    d += 2.0 * math.pi
                dmin = min(dmin, d)
                dmax = max(dmax, d)
        lo = math.floor((a0 + dmin + math.pi) / width - 1e-6)
        hi = math.floor((a0 + dmax + math.pi) / width + 1e-6)
        b_lo[p] = lo
        b_cnt[p] = min(hi - lo + 1, nbins)
    order = np.argsort(tnear, kind="mergesort")
    start = np.zeros(nbins + 1, np.int64)
    for p in range(n):
        for k in range(b_cnt[p]):
            start[(b_lo[p] + k) % nbins + 1] += 1
    for b in range(nbins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    items = np.empty(start[nbins], np.int32)
    for j in range(n):
        p = order[j]
        for k in range(b_cnt[p]):
            b = (b_lo[p] + k) % nbins
            items[fill[b]] = p
            fill[b] += 1
    return start, items, tnear, el_lo, el_hi


# --------------------------------------------------------------------------- shapes


@nb.njit(cache=True, error_model="numpy")
def _hit_box(
    g: np.ndarray, px: float, py: float, pz: float, dx: float, dy: float, dz: float
) -> tuple[float, float, float, float]:
    c, s = g[6], g[7]
    lx, ly, lz = c * px + s * py, -s * px + c * py, pz
    ldx, ldy, ldz = c * dx + s * dy, -s * dx + c * dy, dz
    tmin = -np.inf
    tmax = np.inf
    axis = -1
    sign = 0.0
    for a in range(3):
        if a == 0:
            o, d, h = lx, ldx, g[3]
        elif a == 1:
            o, d, h = ly, ldy, g[4]
        else:
            o, d, h = lz, ldz, g[5]
        if abs(d) < 1e-12:
            if o < -h or o > h:
                return np.inf, 0.0, 0.0, 0.0
            continue
        inv = 1.0 / d
        t0 = (-h - o) * inv
        t1 = (h - o) * inv
        sg = -1.0
        if t0 > t1:
            t0, t1 = t1, t0
            sg = 1.0
        if t0 > tmin:
            tmin = t0
            axis = a
            sign = sg
        tmax = min(tmax, t1)
    if tmin > tmax or tmin <= _EPS or axis < 0:
        return np.inf, 0.0, 0.0, 0.0
    lnx = sign if axis == 0 else 0.0
    lny = sign if axis == 1 else 0.0
    lnz = sign if axis == 2 else 0.0
    return tmin, c * lnx - s * lny, s * lnx + c * lny, lnz


@nb.njit(cache=True, error_model="numpy")
def _hit_cylinder(
    g: np.ndarray, px: float, py: float, pz: float, dx: float, dy: float, dz: float
) -> tuple[float, float, float, float]:
    r, h = g[3], g[5]
    best = np.inf
    nx = ny = nz = 0.0
    a = dx * dx + dy * dy
    if a > 1e-12:
        b = px * dx + py * dy
        c = px * px + py * py - r * r
        disc = b * b - a * c
        if disc >= 0.0:
            t = (-b - math.sqrt(disc)) / a
            if t > _EPS and abs(pz + t * dz) <= h:
                best = t
                nx, ny = (px + t * dx) / r, (py + t * dy) / r
    if abs(dz) > 1e-12:
        cap = h if pz > 0.0 else -h
        t = (cap - pz) / dz
        if _EPS < t < best:
            hx, hy = px + t * dx, py + t * dy
            if hx * hx + hy * hy <= r * r:
                best = t
                nx, ny, nz = 0.0, 0.0, 1.0 if cap > 0.0 else -1.0
    return best, nx, ny, nz


@nb.njit(cache=True, error_model="numpy")
def _hit_ellipsoid(
    g: np.ndarray, px: float, py: float, pz: float, dx: float, dy: float, dz: float
) -> tuple[float, float, float, float]:
    c, s = g[6], g[7]
    ra, rb, rc = g[3], g[4], g[5]
    lx, ly, lz = (c * px + s * py) / ra, (-s * px + c * py) / rb, pz / rc
    ldx, ldy, ldz = (c * dx + s * dy) / ra, (-s * dx + c * dy) / rb, dz / rc
    a = ldx * ldx + ldy * ldy + ldz * ldz
    b = lx * ldx + ly * ldy + lz * ldz
    cc = lx * lx + ly * ly + lz * lz - 1.0
    disc = b * b - a * cc
    if disc < 0.0:
        return np.inf, 0.0, 0.0, 0.0
    t = (-b - math.sqrt(disc)) / a
    if t <= _EPS:
        return np.inf, 0.0, 0.0, 0.0
    gx, gy, gz = (lx + t * ldx) / ra, (ly + t * ldy) / rb, (lz + t * ldz) / rc
    norm = math.sqrt(gx * gx + gy * gy + gz * gz)
    gx, gy, gz = gx / norm, gy / norm, gz / norm
    return t, c * gx - s * gy, s * gx + c * gy, gz


@nb.njit(cache=True, error_model="numpy")
def _hit_cone(
    g: np.ndarray, px: float, py: float, pz: float, dx: float, dy: float, dz: float
) -> tuple[float, float, float, float]:
    r, h = g[3], g[5]
    k2 = (r / (2.0 * h)) ** 2
    qz = pz - h  # relative to the apex
    best = np.inf
    nx = ny = nz = 0.0
    a = dx * dx + dy * dy - k2 * dz * dz
    b = px * dx + py * dy - k2 * qz * dz
    c = px * px + py * py - k2 * qz * qz
    if abs(a) > 1e-12:
        disc = b * b - a * c
        if disc >= 0.0:
            sq = math.sqrt(disc)
            t0 = (-b - sq) / a
            t1 = (-b + sq) / a
            if t0 > t1:
                t0, t1 = t1, t0
            for t in (t0, t1):
                z = qz + t * dz
                if t > _EPS and -2.0 * h <= z <= 0.0:
                    best = t
                    hx, hy = px + t * dx, py + t * dy
                    nx, ny, nz = hx, hy, -k2 * z
                    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
                    if norm < 1e-12:  # the apex itself
                        nx, ny, nz = 0.0, 0.0, 1.0
                    else:
                        nx, ny, nz = nx / norm, ny / norm, nz / norm
                    break
    if abs(dz) > 1e-12 and pz < -h:
        t = (-h - pz) / dz
        if _EPS < t < best:
            hx, hy = px + t * dx, py + t * dy
            if hx * hx + hy * hy <= r * r:
                best = t
                nx, ny, nz = 0.0, 0.0, -1.0
    return best, nx, ny, nz


@nb.njit(cache=True, error_model="numpy")
def _hit(
    kind: int, g: np.ndarray, ox: float, oy: float, oz: float, dx: float, dy: float, dz: float
) -> tuple[float, float, float, float]:
    px, py, pz = ox - g[0], oy - g[1], oz - g[2]
    if kind == BOX:
        return _hit_box(g, px, py, pz, dx, dy, dz)
    if kind == CYLINDER:
        return _hit_cylinder(g, px, py, pz, dx, dy, dz)
    if kind == ELLIPSOID:
        return _hit_ellipsoid(g, px, py, pz, dx, dy, dz)
    return _hit_cone(g, px, py, pz, dx, dy, dz)


# --------------------------------------------------------------------------- casting


@nb.njit(cache=True, error_model="numpy", parallel=True)
def _cast(
    origin: np.ndarray,
    dirs: np.ndarray,
    max_range: float,
    ground_z: float,
    kind: np.ndarray,
    geom: np.ndarray,
    start: np.ndarray,
    items: np.ndarray,
    tnear: np.ndarray,
    el_lo: np.ndarray,
    el_hi: np.ndarray,
    t_out: np.ndarray,
    hit_out: np.ndarray,
    n_out: np.ndarray,
) -> None:
    nbins = start.shape[0] - 1
    width = 2.0 * math.pi / nbins
    ox, oy, oz = origin[0], origin[1], origin[2]
    has_ground = not math.isnan(ground_z)
    for i in nb.prange(dirs.shape[0]):
        # np.float64, not float(): numba keeps float32 through float().
        dx, dy, dz = np.float64(dirs[i, 0]), np.float64(dirs[i, 1]), np.float64(dirs[i, 2])
        best = max_range
        hit = HIT_NONE
        nx = ny = nz = 0.0
        if has_ground and dz < 0.0 and oz > ground_z:
            t = (ground_z - oz) / dz
            if t < best:
                best = t
                hit = HIT_GROUND
                nz = 1.0
        b = math.floor((math.atan2(dy, dx) + math.pi) / width) % nbins
        el = math.atan2(dz, math.sqrt(dx * dx + dy * dy))
        for k in range(start[b], start[b + 1]):
            p = items[k]
            if tnear[p] >= best:
                break
            if el < el_lo[p] or el > el_hi[p]:
                continue
            t, hx, hy, hz = _hit(kind[p], geom[p], ox, oy, oz, dx, dy, dz)
            if t < best:
                best = t
                hit = p
                nx, ny, nz = hx, hy, hz
        if hit == HIT_NONE:
            t_out[i] = np.inf
        else:
            t_out[i] = best
            # Normals face the sensor (a ray can graze a surface from behind only at edges).
            if nx * dx + ny * dy + nz * dz > 0.0:
                nx, ny, nz = -nx, -ny, -nz
        hit_out[i] = hit
        n_out[i, 0] = nx
        n_out[i, 1] = ny
        n_out[i, 2] = nz


def cast(
    prims: Primitives,
    origin: np.ndarray,
    dirs: np.ndarray,
    *,
    max_range: float,
    ground_z: float | None = 0.0,
) -> CastResult:
    """Nearest hit of unit rays ``dirs`` (N, 3) from ``origin`` (3,), see module docstring."""
    origin = np.ascontiguousarray(origin, dtype=np.float64).reshape(3)
    dirs = np.ascontiguousarray(dirs, dtype=np.float32).reshape(-1, 3)
    n = len(dirs)
    t = np.empty(n, np.float64)
    hit = np.empty(n, np.int32)
    normal = np.empty((n, 3), np.float32)
    start, items, tnear, el_lo, el_hi = _build_index(
        prims.kind, np.ascontiguousarray(prims.geom), origin, float(max_range), _NBINS
    )
    _cast(
        origin,
        dirs,
        float(max_range),
        np.nan if ground_z is None else float(ground_z),
        prims.kind,
        np.ascontiguousarray(prims.geom),
        start,
        items,
        tnear,
        el_lo,
        el_hi,
        t,
        hit,
        normal,
    )
    return CastResult(t, hit, normal)


def labels_of_hits(
    prims: Primitives, hit: np.ndarray, ground_label: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Class and instance per ray from ``hit``; ground rays take ``ground_label`` (N,)."""
    hit = np.asarray(hit)
    label = np.full(hit.shape, -1, np.int32)
    instance = np.zeros(hit.shape, np.int32)
    on_prim = hit >= 0
    label[on_prim] = prims.label[hit[on_prim]]
    instance[on_prim] = prims.instance[hit[on_prim]]
    ground = hit == HIT_GROUND
    label[ground] = ground_label[ground]
    return label, instance


# --------------------------------------------------------------------------- shadows


@nb.njit(cache=True, error_model="numpy")
def _build_ortho(
    kind: np.ndarray,
    geom: np.ndarray,
    basis: np.ndarray,
    origin: np.ndarray,
    cull: float,
    cell: float,
) -> tuple[np.ndarray, np.ndarray, float, float, int, int]:
    """Bin primitives by their bounding disc projected along ``basis[2]`` (parallel rays)."""
    n = kind.shape[0]
    pu = np.empty(n)
    pv = np.empty(n)
    rad = np.empty(n)
    use = np.zeros(n, np.bool_)
    u_lo = v_lo = np.inf
    u_hi = v_hi = -np.inf
    for p in range(n):
        g = geom[p]
        ex, ey, ez = _aabb_half(kind[p], g)
        dx, dy, dz = g[0] - origin[0], g[1] - origin[1], g[2] - origin[2]
        r = math.sqrt(ex * ex + ey * ey + ez * ez)
        if math.sqrt(dx * dx + dy * dy + dz * dz) - r > cull:
            continue
        use[p] = True
        rad[p] = r
        pu[p] = g[0] * basis[0, 0] + g[1] * basis[0, 1] + g[2] * basis[0, 2]
        pv[p] = g[0] * basis[1, 0] + g[1] * basis[1, 1] + g[2] * basis[1, 2]
        u_lo = min(u_lo, pu[p] - r)
        u_hi = max(u_hi, pu[p] + r)
        v_lo = min(v_lo, pv[p] - r)
        v_hi = max(v_hi, pv[p] + r)
    if not u_hi > u_lo:
        return np.zeros(2, np.int64), np.zeros(0, np.int32), 0.0, 0.0, 1, 1
    nu = int((u_hi - u_lo) / cell) + 1
    nv = int((v_hi - v_lo) / cell) + 1
    start = np.zeros(nu * nv + 1, np.int64)
    for p in range(n):
        if use[p]:
            i0, i1 = int((pu[p] - rad[p] - u_lo) / cell), int((pu[p] + rad[p] - u_lo) / cell)
            j0, j1 = int((pv[p] - rad[p] - v_lo) / cell), int((pv[p] + rad[p] - v_lo) / cell)
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    start[i * nv + j + 1] += 1
    for c in range(nu * nv):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    items = np.empty(start[nu * nv], np.int32)
    for p in range(n):
        if use[p]:
            i0, i1 = int((pu[p] - rad[p] - u_lo) / cell), int((pu[p] + rad[p] - u_lo) / cell)
            j0, j1 = int((pv[p] - rad[p] - v_lo) / cell), int((pv[p] + rad[p] - v_lo) / cell)
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    c = i * nv + j
                    items[fill[c]] = p
                    fill[c] += 1
    return start, items, u_lo, v_lo, nu, nv


@nb.njit(cache=True, error_model="numpy", parallel=True)
def _shadow(
    origin: np.ndarray,
    dirs: np.ndarray,
    t: np.ndarray,
    hit: np.ndarray,
    normal: np.ndarray,
    basis: np.ndarray,
    kind: np.ndarray,
    geom: np.ndarray,
    start: np.ndarray,
    items: np.ndarray,
    u_lo: float,
    v_lo: float,
    nu: int,
    nv: int,
    cell: float,
    out: np.ndarray,
) -> None:
    sx, sy, sz = basis[2, 0], basis[2, 1], basis[2, 2]
    for i in nb.prange(hit.shape[0]):
        out[i] = True
        if hit[i] == HIT_NONE:
            continue
        nx, ny, nz = normal[i, 0], normal[i, 1], normal[i, 2]
        if nx * sx + ny * sy + nz * sz <= 0.0:
            out[i] = False  # facing away from the light: self-shadowed
            continue
        px = origin[0] + t[i] * dirs[i, 0] + 2e-3 * nx
        py = origin[1] + t[i] * dirs[i, 1] + 2e-3 * ny
        pz = origin[2] + t[i] * dirs[i, 2] + 2e-3 * nz
        cu = int((px * basis[0, 0] + py * basis[0, 1] + pz * basis[0, 2] - u_lo) / cell)
        cv = int((px * basis[1, 0] + py * basis[1, 1] + pz * basis[1, 2] - v_lo) / cell)
        if cu < 0 or cv < 0 or cu >= nu or cv >= nv:
            continue
        c = cu * nv + cv
        for k in range(start[c], start[c + 1]):
            p = items[k]
            th, _, _, _ = _hit(kind[p], geom[p], px, py, pz, sx, sy, sz)
            if th < np.inf:
                out[i] = False
                break


def shadow_mask(
    prims: Primitives,
    origin: np.ndarray,
    dirs: np.ndarray,
    result: CastResult,
    sun: np.ndarray,
    *,
    cell: float = 2.0,
) -> np.ndarray:
    """Per ray of ``result``: True where the hit point sees the sun (directional light).

    Shadow rays are parallel, so primitives are binned once on the plane
    perpendicular to ``sun`` and each hit point tests only its cell.
    """
    s = np.asarray(sun, np.float64).reshape(3)
    s = s / np.linalg.norm(s)
    helper = np.array([1.0, 0.0, 0.0]) if abs(s[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(s, helper)
    u /= np.linalg.norm(u)
    basis = np.stack([u, np.cross(s, u), s])
    finite = result.t[np.isfinite(result.t)]
    reach = float(finite.max()) if len(finite) else 0.0
    origin = np.ascontiguousarray(origin, np.float64).reshape(3)
    geom = np.ascontiguousarray(prims.geom)
    start, items, u_lo, v_lo, nu, nv = _build_ortho(
        prims.kind, geom, basis, origin, reach + 60.0, float(cell)
    )
    out = np.empty(len(result.hit), np.bool_)
    _shadow(
        origin,
        np.ascontiguousarray(dirs, np.float32),
        result.t,
        result.hit,
        result.normal,
        basis,
        prims.kind,
        geom,
        start,
        items,
        u_lo,
        v_lo,
        nu,
        nv,
        float(cell),
        out,
    )
    return out
