"""Procedural scenes of the simulator: a seeded street or indoor hall built from primitives.

Contract:
- :func:`build_scene(preset, seed, duration_s)` returns a :class:`Scene`:
  static primitives (world frame, z up, ground plane ``z = 0``), dynamic
  things (their primitives in the object's own frame plus a straight-line
  motion), ground regions (road / terrain / floor ...) with painted markings,
  the ego trajectory, lighting and the preset's class list. Same
  ``(preset, seed, duration_s)`` -> identical scene; different seeds -> a
  different layout, sizes, colours and traffic.
- The scene is long enough for ``duration_s`` of ego motion plus the sensor
  range on both ends, so every frame sees a full scene.
- :meth:`Scene.primitives_at(t)` is the world snapshot at ``t`` seconds after
  the first frame (moving cars, cyclists, pedestrians placed at ``t``);
  :meth:`Scene.ego_pose(t)` is ``T_odom_from_base`` (odom = the ego pose at
  ``t = 0``).
- Labels: every primitive carries its class id (from :mod:`.classes`) and an
  instance id: 0 for stuff, a unique positive id per thing, the same for all
  of the thing's parts and for every frame.
- Part ids: the builders of cars, pedestrians and chairs also name the part each
  primitive is (``_Parts.part``: row -> (part name, part instance key)); the
  part studio (:mod:`.parts`) renders them as part ground truth. ``detail=True``
  adds a car's windows and lights as their own primitives, with no random draw,
  so scenes (built without it) are the same for every seed as before.

Street layout (y across the road, ego driving +x in the right lane): two
lanes (|y| < 3.5), bike lanes, parking lanes, 0.15 m curbed sidewalks with
trees, street lights and signs, front yards with fences, hedges and bushes,
building rows with gaps, and cross streets with crosswalks. Indoor: a long hall
with walls, doors, pillars, a ceiling with lights, furniture groups (tables
with chairs, sofas, shelves, plants) beside a free aisle, standing and
walking people, and a slow robot ego.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sim.classes import PRESET_CLASSES, SimClass, class_id
from ws3d_ros.sim.raycast import BOX, CONE, CYLINDER, ELLIPSOID, Primitives
from ws3d_ros.sim.shading import (
    TEX_ASPHALT,
    TEX_BARK,
    TEX_BOOKS,
    TEX_CABIN,
    TEX_CARBODY,
    TEX_CONE,
    TEX_FABRIC,
    TEX_FACADE,
    TEX_FOLIAGE,
    TEX_GRASS,
    TEX_LIGHT,
    TEX_PLAIN,
    TEX_SIGN,
    TEX_TILES,
    TEX_WOOD,
)

PRESETS = tuple(PRESET_CLASSES)

Color = tuple[float, float, float]


@dataclass
class Ground:
    """The ground plane ``z = z``: rectangles of material/class and painted markings.

    Region 0 is the default; later rectangles win over earlier ones.
    ``markings`` rows: ``x0, x1, y0, y1, axis (0: dashes along x, 1: along y),
    period (0 = solid), duty, r, g, b``.
    """

    z: float
    rects: np.ndarray  # (R, 4) x0, x1, y0, y1
    label: np.ndarray  # (R,) int32
    color: np.ndarray  # (R, 3) float32
    color2: np.ndarray  # (R, 3) float32
    reflectivity: np.ndarray  # (R,) float32
    texture: np.ndarray  # (R,) int8
    markings: np.ndarray  # (M, 10) float64


@dataclass
class Scene:
    """A seeded scene: see the module docstring."""

    preset: str
    seed: int
    classes: tuple[SimClass, ...]
    static: Primitives
    dynamic_parts: Primitives  # parts in their owner's frame (x forward, z up)
    dynamic_owner: np.ndarray  # (Pd,) int64 index into the motion arrays
    motion_start: np.ndarray  # (M, 3) x, y, yaw at t = 0
    motion_speed: np.ndarray  # (M,) m/s along the yaw direction
    ground: Ground
    ego_start: np.ndarray  # (3,) x, y, yaw of base_link at t = 0 (world)
    ego_speed: float
    max_range: float
    sun: np.ndarray  # (3,) unit vector towards the light
    ambient: float
    sky_zenith: np.ndarray  # (3,) RGB
    sky_horizon: np.ndarray  # (3,) RGB
    fog_distance: float  # metres; inf = no fog
    cloudiness: float  # 0 = clear sky, 1 = many clouds
    duration_s: float
    extent: tuple[float, float] = field(default=(0.0, 0.0))  # x range with content

    @property
    def instance_count(self) -> int:
        ids = np.concatenate([self.static.instance, self.dynamic_parts.instance])
        return len(np.unique(ids[ids > 0]))

    def ego_world(self, t: float) -> tuple[float, float, float]:
        """``(x, y, yaw)`` of base_link in the world at time ``t``."""
        x0, y0, yaw = (float(v) for v in self.ego_start)
        d = self.ego_speed * t
        return x0 + d * math.cos(yaw), y0 + d * math.sin(yaw), yaw

    def T_world_from_base(self, t: float) -> np.ndarray:
        return _pose_matrix(*self.ego_world(t))

    def ego_pose(self, t: float) -> np.ndarray:
        """``T_odom_from_base`` (4x4) at ``t``; odom is the base_link pose at ``t = 0``."""
        return np.linalg.inv(self.T_world_from_base(0.0)) @ self.T_world_from_base(t)

    def primitives_at(self, t: float) -> Primitives:
        """World snapshot at ``t``: static primitives plus the moving things placed at ``t``."""
        if len(self.dynamic_parts) == 0:
            return self.static
        yaw = self.motion_start[:, 2]
        x = self.motion_start[:, 0] + self.motion_speed * t * np.cos(yaw)
        y = self.motion_start[:, 1] + self.motion_speed * t * np.sin(yaw)
        owner = self.dynamic_owner
        moved = _transform(self.dynamic_parts, x[owner], y[owner], yaw[owner])
        return Primitives.concat([self.static, moved])


def _pose_matrix(x: float, y: float, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[0, 3], T[1, 3] = x, y
    return T


def _transform(local: Primitives, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> Primitives:
    """Place parts given in an object frame at world poses (one pose per part)."""
    c, s = np.cos(yaw), np.sin(yaw)
    g = local.geom.copy()
    lx, ly = local.geom[:, 0], local.geom[:, 1]
    g[:, 0] = x + c * lx - s * ly
    g[:, 1] = y + s * lx + c * ly
    lc, ls = local.geom[:, 6], local.geom[:, 7]
    g[:, 6] = c * lc - s * ls
    g[:, 7] = s * lc + c * ls
    return Primitives(
        local.kind,
        g,
        local.color,
        local.color2,
        local.reflectivity,
        local.texture,
        local.label,
        local.instance,
    )


class _Parts:
    """Accumulates primitives row by row (scene building is a one-off)."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        # Row -> (part name, part instance key); the key is the row of the part's first
        # primitive, so primitives sharing a key are one part instance.
        self.part: dict[int, tuple[str, int]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self,
        kind: int,
        center: tuple[float, float, float],
        half: tuple[float, float, float],
        *,
        label: int,
        color: Color,
        reflectivity: float,
        yaw: float = 0.0,
        texture: int = TEX_PLAIN,
        color2: Color = (0.0, 0.0, 0.0),
        instance: int = 0,
        part: str | None = None,
        part_of: int | None = None,
    ) -> int:
        """Append one primitive; returns its row (a ``part_of`` key for its other pieces)."""
        if min(half) <= 0.0:
            raise Ws3dError(f"primitive half extents must be positive, found {half}")
        geom = (*center, *half, math.cos(yaw), math.sin(yaw))
        row = len(self.rows)
        self.rows.append((kind, geom, color, color2, reflectivity, texture, label, instance))
        if part is not None:
            self.part[row] = (part, row if part_of is None else part_of)
        return row

    def extend(self, other: _Parts) -> None:
        offset = len(self.rows)
        self.rows.extend(other.rows)
        for row, (name, key) in other.part.items():
            self.part[row + offset] = (name, key + offset)

    def build(self) -> Primitives:
        if not self.rows:
            return Primitives.empty()
        cols = list(zip(*self.rows, strict=True))
        return Primitives(
            np.array(cols[0], np.int8),
            np.array(cols[1], np.float64).reshape(-1, 8),
            np.array(cols[2], np.float32).reshape(-1, 3),
            np.array(cols[3], np.float32).reshape(-1, 3),
            np.array(cols[4], np.float32),
            np.array(cols[5], np.int8),
            np.array(cols[6], np.int32),
            np.array(cols[7], np.int32),
        )


def _place(parts: _Parts, out: _Parts, x: float, y: float, yaw: float) -> None:
    """Append ``parts`` (object frame) to ``out`` placed at world pose ``(x, y, yaw)``."""
    c, s = math.cos(yaw), math.sin(yaw)
    for kind, g, color, color2, refl, tex, label, inst in parts.rows:
        lx, ly = g[0], g[1]
        geom = (
            x + c * lx - s * ly,
            y + s * lx + c * ly,
            g[2],
            g[3],
            g[4],
            g[5],
            c * g[6] - s * g[7],
            s * g[6] + c * g[7],
        )
        out.rows.append((kind, geom, color, color2, refl, tex, label, inst))


def _jitter(rng: np.random.Generator, color: Color, amount: float = 0.06) -> Color:
    r, g, b = (float(np.clip(v + rng.uniform(-amount, amount), 0.0, 1.0)) for v in color)
    return r, g, b


def _pick(rng: np.random.Generator, palette: list[Color]) -> Color:
    return palette[int(rng.integers(len(palette)))]


CAR_PALETTE: list[Color] = [
    (0.92, 0.92, 0.92),
    (0.08, 0.08, 0.09),
    (0.62, 0.63, 0.65),
    (0.35, 0.36, 0.38),
    (0.70, 0.08, 0.08),
    (0.10, 0.22, 0.55),
    (0.15, 0.35, 0.20),
    (0.85, 0.75, 0.55),
    (0.95, 0.80, 0.10),
    (0.40, 0.12, 0.10),
]
FACADE_PALETTE: list[Color] = [
    (0.85, 0.78, 0.62),
    (0.62, 0.30, 0.22),
    (0.72, 0.70, 0.66),
    (0.92, 0.90, 0.85),
    (0.55, 0.50, 0.45),
    (0.80, 0.62, 0.45),
    (0.60, 0.66, 0.70),
]
SHIRT_PALETTE: list[Color] = [
    (0.80, 0.10, 0.10),
    (0.10, 0.30, 0.70),
    (0.90, 0.90, 0.90),
    (0.15, 0.15, 0.15),
    (0.20, 0.55, 0.25),
    (0.95, 0.70, 0.10),
    (0.50, 0.20, 0.55),
    (0.55, 0.45, 0.35),
]
TROUSER_PALETTE: list[Color] = [
    (0.12, 0.14, 0.25),
    (0.15, 0.15, 0.15),
    (0.40, 0.35, 0.28),
    (0.30, 0.32, 0.35),
]
SKIN_PALETTE: list[Color] = [(0.95, 0.78, 0.65), (0.78, 0.57, 0.42), (0.45, 0.30, 0.20)]
GLASS: Color = (0.16, 0.2, 0.26)


class _Ids:
    """Hands out instance ids 1, 2, ... in creation order."""

    def __init__(self) -> None:
        self.next = 1

    def __call__(self) -> int:
        out = self.next
        self.next += 1
        return out


# --------------------------------------------------------------------------- things


def _car(
    rng: np.random.Generator, label: int, inst: int, *, detail: bool = False
) -> tuple[_Parts, float, float]:
    """A car in its own frame (x forward, origin on the ground at the centre); ``detail``
    adds windows and lights as primitives of their own (no random draw)."""
    p = _Parts()
    van = rng.random() < 0.2
    length = rng.uniform(4.4, 5.2) if van else rng.uniform(3.8, 4.9)
    width = rng.uniform(1.75, 1.98) if van else rng.uniform(1.65, 1.9)
    height = rng.uniform(1.75, 2.0) if van else rng.uniform(1.38, 1.6)
    color = _jitter(rng, _pick(rng, CAR_PALETTE), 0.04)
    refl = 0.25 + 0.45 * float(np.mean(color))
    clearance = 0.22
    body_top = clearance + rng.uniform(0.42, 0.5) * height
    body = p.add(
        BOX,
        (0.0, 0.0, 0.5 * (clearance + body_top)),
        (0.5 * length, 0.5 * width, 0.5 * (body_top - clearance)),
        label=label,
        color=color,
        reflectivity=refl,
        texture=TEX_CARBODY,
        instance=inst,
        part="body",
    )
    cabin_len = length * (rng.uniform(0.7, 0.82) if van else rng.uniform(0.45, 0.58))
    cabin_x = -0.5 * length + 0.5 * cabin_len + (0.1 if van else rng.uniform(0.12, 0.22) * length)
    p.add(
        BOX,
        (cabin_x, 0.0, 0.5 * (body_top + height)),
        (0.5 * cabin_len, 0.45 * width, 0.5 * (height - body_top)),
        label=label,
        color=color,
        color2=GLASS,
        reflectivity=refl * 0.8,
        texture=TEX_CABIN,
        instance=inst,
        part="body",
        part_of=body,
    )
    wheel_r = rng.uniform(0.3, 0.36)
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            p.add(
                ELLIPSOID,
                (sx * 0.32 * length, sy * (0.5 * width - 0.1), wheel_r),
                (wheel_r, 0.11, wheel_r),
                label=label,
                color=(0.06, 0.06, 0.06),
                reflectivity=0.1,
                instance=inst,
                part="wheel",
            )
    if detail:
        _car_details(p, label, inst, length, width, height, body_top, cabin_len, cabin_x)
    return p, length, width


def _car_details(
    p: _Parts,
    label: int,
    inst: int,
    length: float,
    width: float,
    height: float,
    body_top: float,
    cabin_len: float,
    cabin_x: float,
) -> None:
    """A car's windows (glass panes just outside the cabin) and head/tail lights."""
    pane_h = 0.32 * (height - body_top)
    pane_z = body_top + 0.55 * (height - body_top)
    for sy in (-1.0, 1.0):  # side windows
        p.add(
            BOX,
            (cabin_x, sy * (0.45 * width + 0.012), pane_z),
            (0.4 * cabin_len, 0.012, pane_h),
            label=label,
            color=GLASS,
            reflectivity=0.15,
            instance=inst,
            part="window",
        )
    for sx in (-1.0, 1.0):  # windscreen and rear window
        p.add(
            BOX,
            (cabin_x + sx * (0.5 * cabin_len + 0.012), 0.0, pane_z),
            (0.012, 0.38 * width, pane_h),
            label=label,
            color=GLASS,
            reflectivity=0.15,
            instance=inst,
            part="window",
        )
    light_z = body_top - 0.12
    for sx, color, tex in (
        (1.0, (0.95, 0.95, 0.85), TEX_LIGHT),
        (-1.0, (0.8, 0.05, 0.05), TEX_PLAIN),
    ):
        for sy in (-1.0, 1.0):
            p.add(
                BOX,
                (sx * (0.5 * length + 0.015), sy * 0.34 * width, light_z),
                (0.015, 0.12 * width, 0.06),
                label=label,
                color=color,
                reflectivity=0.8,
                texture=tex,
                instance=inst,
                part="light",
            )


def _truck(rng: np.random.Generator, label: int, inst: int) -> tuple[_Parts, float, float]:
    p = _Parts()
    length = rng.uniform(6.5, 10.0)
    width = rng.uniform(2.3, 2.5)
    height = rng.uniform(2.9, 3.6)
    cab_len = rng.uniform(1.9, 2.3)
    cab_color = _jitter(rng, _pick(rng, CAR_PALETTE), 0.04)
    cargo_color = _jitter(rng, _pick(rng, [(0.9, 0.9, 0.9), (0.75, 0.75, 0.72), cab_color]))
    front = 0.5 * length
    p.add(
        BOX,
        (front - 0.5 * cab_len, 0.0, 0.35 + 0.5 * (height - 0.5)),
        (0.5 * cab_len, 0.5 * width, 0.5 * (height - 0.5)),
        label=label,
        color=cab_color,
        reflectivity=0.4,
        instance=inst,
    )
    p.add(
        BOX,
        (front - cab_len - 0.25 + 0.05, 0.0, 0.35 + 0.5 * (height - 1.3)),
        (0.08, 0.45 * width, 0.5 * (height - 1.3)),
        label=label,
        color=(0.2, 0.2, 0.22),
        reflectivity=0.3,
        instance=inst,
    )
    cargo_len = length - cab_len - 0.3
    p.add(
        BOX,
        (-0.5 * length + 0.5 * cargo_len, 0.0, 0.5 + 0.5 * (height - 0.5)),
        (0.5 * cargo_len, 0.5 * width, 0.5 * (height - 0.5)),
        label=label,
        color=cargo_color,
        reflectivity=0.55,
        instance=inst,
    )
    # Windscreen: a glass band on the cab's front face.
    p.add(
        BOX,
        (front + 0.01, 0.0, height - 0.75),
        (0.02, 0.42 * width, 0.4),
        label=label,
        color=GLASS,
        reflectivity=0.2,
        instance=inst,
    )
    for x in (front - 0.7 * cab_len, -0.5 * length + 1.0, -0.5 * length + 2.2):
        for sy in (-1.0, 1.0):
            p.add(
                ELLIPSOID,
                (x, sy * (0.5 * width - 0.15), 0.5),
                (0.5, 0.16, 0.5),
                label=label,
                color=(0.05, 0.05, 0.05),
                reflectivity=0.1,
                instance=inst,
            )
    return p, length, width


def _person(rng: np.random.Generator, label: int, inst: int) -> _Parts:
    p = _Parts()
    h = rng.uniform(1.5, 1.95)
    shirt = _jitter(rng, _pick(rng, SHIRT_PALETTE))
    trousers = _jitter(rng, _pick(rng, TROUSER_PALETTE), 0.03)
    skin = _pick(rng, SKIN_PALETTE)
    leg = 0.47 * h
    for sy in (-1.0, 1.0):
        p.add(
            BOX,
            (0.0, sy * 0.085, 0.5 * leg),
            (0.075, 0.065, 0.5 * leg),
            label=label,
            color=trousers,
            reflectivity=0.3,
            texture=TEX_FABRIC,
            instance=inst,
            part="leg",
        )
    torso_h = 0.3 * h
    p.add(
        ELLIPSOID,
        (0.0, 0.0, leg + 0.5 * torso_h),
        (0.13, rng.uniform(0.18, 0.23), 0.55 * torso_h),
        label=label,
        color=shirt,
        reflectivity=0.35,
        texture=TEX_FABRIC,
        instance=inst,
        part="torso",
    )
    for sy in (-1.0, 1.0):
        p.add(
            BOX,
            (0.0, sy * 0.25, leg + 0.45 * torso_h),
            (0.045, 0.045, 0.55 * torso_h),
            label=label,
            color=shirt,
            reflectivity=0.35,
            texture=TEX_FABRIC,
            instance=inst,
            part="arm",
        )
    head_r = 0.1 + 0.01 * (h - 1.5)
    p.add(
        ELLIPSOID,
        (0.0, 0.0, h - head_r),
        (head_r * 0.95, head_r * 0.85, head_r),
        label=label,
        color=skin,
        reflectivity=0.4,
        instance=inst,
        part="head",
    )
    return p


def _cyclist(rng: np.random.Generator, label: int, inst: int) -> _Parts:
    p = _Parts()
    frame = _jitter(rng, _pick(rng, CAR_PALETTE))
    shirt = _jitter(rng, _pick(rng, SHIRT_PALETTE))
    wr = rng.uniform(0.32, 0.36)
    for x in (-0.52, 0.52):
        p.add(
            ELLIPSOID,
            (x, 0.0, wr),
            (wr, 0.03, wr),
            label=label,
            color=(0.08, 0.08, 0.08),
            reflectivity=0.2,
            instance=inst,
        )
    p.add(
        BOX,
        (0.0, 0.0, wr + 0.22),
        (0.45, 0.025, 0.05),
        label=label,
        color=frame,
        reflectivity=0.5,
        instance=inst,
    )
    p.add(
        BOX,
        (0.45, 0.0, wr + 0.45),
        (0.03, 0.25, 0.03),
        label=label,
        color=(0.2, 0.2, 0.2),
        reflectivity=0.5,
        instance=inst,
    )
    p.add(
        BOX,
        (-0.12, 0.0, wr + 0.35),
        (0.15, 0.13, 0.32),
        label=label,
        color=_jitter(rng, _pick(rng, TROUSER_PALETTE)),
        reflectivity=0.3,
        texture=TEX_FABRIC,
        instance=inst,
    )
    p.add(
        ELLIPSOID,
        (0.05, 0.0, wr + 0.95),
        (0.2, 0.2, 0.3),
        label=label,
        color=shirt,
        reflectivity=0.35,
        texture=TEX_FABRIC,
        instance=inst,
    )
    p.add(
        ELLIPSOID,
        (0.22, 0.0, wr + 1.37),
        (0.11, 0.1, 0.12),
        label=label,
        color=_jitter(rng, _pick(rng, SHIRT_PALETTE)),
        reflectivity=0.5,
        instance=inst,
    )
    return p


def _cone(rng: np.random.Generator, label: int, inst: int) -> _Parts:
    p = _Parts()
    h = rng.uniform(0.5, 0.75)
    p.add(
        BOX,
        (0.0, 0.0, 0.02),
        (0.19, 0.19, 0.02),
        label=label,
        color=(0.9, 0.35, 0.05),
        reflectivity=0.6,
        instance=inst,
    )
    p.add(
        CONE,
        (0.0, 0.0, 0.04 + 0.5 * h),
        (0.16, 0.16, 0.5 * h),
        label=label,
        color=(0.95, 0.4, 0.05),
        color2=(0.95, 0.95, 0.95),
        reflectivity=0.7,
        texture=TEX_CONE,
        instance=inst,
    )
    return p


# --------------------------------------------------------------------------- street


@dataclass
class _Layout:
    road: float = 7.2  # road half width
    lane: float = 1.75
    bike: float = 4.25
    park: float = 6.1
    curb: float = 0.15
    walk_out: float = 11.0  # sidewalk outer edge
    tree: float = 7.9
    pole: float = 7.55
    walkers: tuple[float, float] = (9.6, 10.4)


def _blocks(lo: float, hi: float, crossings: list[float], half: float) -> list[tuple[float, float]]:
    """``[lo, hi]`` minus ``[xc - half, xc + half]`` for each crossing."""
    out = []
    x = lo
    for xc in crossings:
        if xc - half > x:
            out.append((x, xc - half))
        x = max(x, xc + half)
    if hi > x:
        out.append((x, hi))
    return out


def _build_street(rng: np.random.Generator, duration: float, classes: tuple[SimClass, ...]):
    L = _Layout()
    cid = {c.name: c.id for c in classes}
    ids = _Ids()
    static = _Parts()
    dyn_parts = _Parts()
    owner: list[int] = []
    motion: list[tuple[float, float, float, float]] = []

    def add_moving(parts: _Parts, x: float, y: float, yaw: float, speed: float) -> None:
        dyn_parts.extend(parts)
        owner.extend([len(motion)] * len(parts))
        motion.append((x, y, yaw, speed))

    ego_speed = float(rng.uniform(5.0, 10.0))
    travel = ego_speed * duration
    max_range = 100.0
    margin = max_range + 30.0
    x_lo, x_hi = -margin, travel + margin

    # Cross streets every 90-170 m; the first may be in view at the start.
    crossings: list[float] = []
    x = x_lo + rng.uniform(30.0, 150.0)
    while x < x_hi - 20.0:
        crossings.append(float(x))
        x += rng.uniform(90.0, 170.0)
    # Main-street pieces stop at different distances from a crossing.
    blocks_mark = _blocks(x_lo, x_hi, crossings, L.road + 4.5)
    blocks = _blocks(x_lo, x_hi, crossings, L.walk_out)

    # ---- ground regions and markings
    asphalt = _jitter(rng, (0.26, 0.26, 0.27), 0.03)
    grass = _jitter(rng, (0.30, 0.42, 0.16), 0.04)
    rects = [(-1e6, 1e6, -1e6, 1e6)]
    rlabel = [cid["terrain"]]
    rcolor = [grass]
    rcolor2 = [(0.45, 0.40, 0.25)]
    rrefl = [0.45]
    rtex = [TEX_GRASS]

    def region(rect, label, color, color2, refl, tex):
        rects.append(rect)
        rlabel.append(label)
        rcolor.append(color)
        rcolor2.append(color2)
        rrefl.append(refl)
        rtex.append(tex)

    far = 200.0
    region(
        (x_lo - 50, x_hi + 50, -L.road, L.road), cid["road"], asphalt, asphalt, 0.18, TEX_ASPHALT
    )
    for xc in crossings:
        region(
            (xc - L.road, xc + L.road, -far, far), cid["road"], asphalt, asphalt, 0.18, TEX_ASPHALT
        )
    white, yellow = (0.9, 0.9, 0.88), (0.9, 0.75, 0.2)
    marks = []
    for b0, b1 in blocks_mark:
        marks.append((b0, b1, -0.07, 0.07, 0, 6.0, 0.5, *white))
        for sy in (-1.0, 1.0):
            y = sy * 3.5
            marks.append((b0, b1, y - 0.06, y + 0.06, 0, 0.0, 1.0, *white))
            y = sy * 5.0
            marks.append((b0, b1, y - 0.05, y + 0.05, 0, 2.0, 0.6, *white))
    for xc in crossings:
        for sx in (-1.0, 1.0):
            x0 = xc + sx * (L.road + 0.8)
            marks.append(
                (
                    min(x0, x0 + sx * 3.5),
                    max(x0, x0 + sx * 3.5),
                    -L.road,
                    L.road,
                    1,
                    1.0,
                    0.5,
                    *white,
                )
            )
        for sy in (-1.0, 1.0):
            y0 = sy * (L.road + 0.5)
            marks.append(
                (
                    xc - L.road,
                    xc + L.road,
                    min(y0, y0 + sy * 3.5),
                    max(y0, y0 + sy * 3.5),
                    0,
                    1.0,
                    0.5,
                    *white,
                )
            )
        marks.append((xc - 0.07, xc + 0.07, L.road, far, 1, 6.0, 0.5, *yellow))
        marks.append((xc - 0.07, xc + 0.07, -far, -L.road, 1, 6.0, 0.5, *yellow))
    ground = Ground(
        z=0.0,
        rects=np.array(rects, np.float64),
        label=np.array(rlabel, np.int32),
        color=np.array(rcolor, np.float32),
        color2=np.array(rcolor2, np.float32),
        reflectivity=np.array(rrefl, np.float32),
        texture=np.array(rtex, np.int8),
        markings=np.array(marks, np.float64).reshape(-1, 10),
    )

    # ---- sidewalks (segmented so the azimuth index stays tight)
    pave = _jitter(rng, (0.62, 0.61, 0.58), 0.03)
    sw_half = 0.5 * (L.walk_out - L.road)
    sw_mid = 0.5 * (L.walk_out + L.road)

    def sidewalk_x(b0: float, b1: float, y_mid: float, half_y: float) -> None:
        n = max(1, math.ceil((b1 - b0) / 12.0))
        edges = np.linspace(b0, b1, n + 1)
        for a, b in itertools.pairwise(edges):
            static.add(
                BOX,
                (0.5 * (a + b), y_mid, 0.5 * L.curb),
                (0.5 * (b - a), half_y, 0.5 * L.curb),
                label=cid["sidewalk"],
                color=pave,
                reflectivity=0.35,
                texture=TEX_TILES,
            )

    for b0, b1 in blocks:
        for sy in (-1.0, 1.0):
            # Half the block sides have a grass verge (with the trees) between curb and sidewalk.
            inner = L.road + (1.5 if rng.random() < 0.5 else 0.0)
            sidewalk_x(b0, b1, sy * 0.5 * (inner + L.walk_out), 0.5 * (L.walk_out - inner))
    cross_len = 90.0
    for xc in crossings:
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                n = math.ceil((cross_len - L.walk_out) / 12.0)
                edges = np.linspace(L.walk_out, cross_len, n + 1)
                for a, b in itertools.pairwise(edges):
                    static.add(
                        BOX,
                        (xc + sx * sw_mid, sy * 0.5 * (a + b), 0.5 * L.curb),
                        (sw_half, 0.5 * (b - a), 0.5 * L.curb),
                        label=cid["sidewalk"],
                        color=pave,
                        reflectivity=0.35,
                        texture=TEX_TILES,
                    )
                # Corner: the square where the two sidewalks meet.
                static.add(
                    BOX,
                    (xc + sx * sw_mid, sy * sw_mid, 0.5 * L.curb),
                    (sw_half, sw_half, 0.5 * L.curb),
                    label=cid["sidewalk"],
                    color=pave,
                    reflectivity=0.35,
                    texture=TEX_TILES,
                )

    # ---- things and stuff along each block side
    def tree(x: float, y: float, scale: float = 1.0) -> None:
        trunk_h = rng.uniform(2.2, 3.5) * scale
        trunk_r = rng.uniform(0.1, 0.22) * scale
        bark = _jitter(rng, (0.33, 0.24, 0.16), 0.04)
        static.add(
            CYLINDER,
            (x, y, 0.5 * trunk_h + 0.05),
            (trunk_r, trunk_r, 0.5 * trunk_h + 0.05),
            label=cid["vegetation"],
            color=bark,
            reflectivity=0.4,
            texture=TEX_BARK,
        )
        rx = rng.uniform(1.2, 2.8) * scale
        rz = rng.uniform(1.3, 2.6) * scale
        leaf = _jitter(rng, (0.18, 0.36, 0.12), 0.05)
        leaf2 = _jitter(rng, (0.32, 0.45, 0.12), 0.05)
        # The crown starts above head height so walkers never pass through it.
        crown_z = max(trunk_h + 0.6 * rz, 2.2 + rz)
        static.add(
            ELLIPSOID,
            (x, y, crown_z),
            (rx, rx * rng.uniform(0.85, 1.15), rz),
            yaw=rng.uniform(0, math.pi),
            label=cid["vegetation"],
            color=leaf,
            color2=leaf2,
            reflectivity=0.55,
            texture=TEX_FOLIAGE,
        )
        if rng.random() < 0.4:  # a second, offset crown lobe
            r2 = rx * rng.uniform(0.5, 0.8)
            static.add(
                ELLIPSOID,
                (x + rng.uniform(-0.6, 0.6) * rx, y + rng.uniform(-0.5, 0.5), crown_z + 0.45 * rz),
                (r2, r2, r2 * 0.9),
                label=cid["vegetation"],
                color=leaf,
                color2=leaf2,
                reflectivity=0.55,
                texture=TEX_FOLIAGE,
            )

    def bush(x: float, y: float) -> None:
        r = rng.uniform(0.4, 1.1)
        leaf = _jitter(rng, (0.2, 0.38, 0.13), 0.05)
        static.add(
            ELLIPSOID,
            (x, y, 0.6 * r),
            (r, r * rng.uniform(0.7, 1.3), r * 0.75),
            label=cid["vegetation"],
            color=leaf,
            color2=(0.3, 0.42, 0.1),
            reflectivity=0.55,
            texture=TEX_FOLIAGE,
        )

    def street_light(x: float, side: float) -> None:
        h = rng.uniform(6.0, 8.0)
        gray = _jitter(rng, (0.45, 0.46, 0.48), 0.05)
        y = side * L.pole
        static.add(
            CYLINDER,
            (x, y, 0.5 * h),
            (0.1, 0.1, 0.5 * h),
            label=cid["pole"],
            color=gray,
            reflectivity=0.5,
        )
        arm = rng.uniform(1.2, 2.0)
        static.add(
            BOX,
            (x, y - side * 0.5 * arm, h - 0.1),
            (0.05, 0.5 * arm, 0.05),
            label=cid["pole"],
            color=gray,
            reflectivity=0.5,
        )
        static.add(
            BOX,
            (x, y - side * arm, h - 0.18),
            (0.25, 0.14, 0.08),
            label=cid["pole"],
            color=(0.85, 0.85, 0.8),
            reflectivity=0.6,
        )

    sign_colors = [
        ((0.8, 0.1, 0.1), (0.95, 0.95, 0.95)),
        ((0.1, 0.3, 0.75), (0.95, 0.95, 0.95)),
        ((0.95, 0.8, 0.1), (0.1, 0.1, 0.1)),
        ((0.95, 0.95, 0.95), (0.8, 0.1, 0.1)),
    ]

    def sign(x: float, side: float, y: float | None = None) -> None:
        y = side * L.pole if y is None else y
        h = rng.uniform(2.1, 2.7)
        static.add(
            CYLINDER,
            (x, y, 0.5 * h),
            (0.035, 0.035, 0.5 * h),
            label=cid["pole"],
            color=(0.55, 0.56, 0.58),
            reflectivity=0.5,
        )
        front, border = sign_colors[int(rng.integers(len(sign_colors)))]
        size = rng.uniform(0.3, 0.45)
        wide = size * rng.uniform(1.0, 1.6)
        # Faces oncoming traffic: -x for the right side (traffic drives +x), +x on the left.
        static.add(
            BOX,
            (x + 0.05 * side, y, h + size * 0.9),
            (0.02, wide, size),
            yaw=0.0 if side < 0 else math.pi,
            label=cid["traffic sign"],
            color=front,
            color2=border,
            reflectivity=0.95,
            texture=TEX_SIGN,
        )

    def fence(x0: float, x1: float, y: float) -> None:
        h = rng.uniform(0.9, 1.7)
        col = _jitter(
            rng,
            _pick(rng, [(0.35, 0.3, 0.25), (0.75, 0.73, 0.7), (0.2, 0.25, 0.2), (0.55, 0.4, 0.25)]),
            0.04,
        )
        n = max(1, math.ceil((x1 - x0) / 6.0))
        edges = np.linspace(x0, x1, n + 1)
        for a, b in itertools.pairwise(edges):
            static.add(
                BOX,
                (0.5 * (a + b), y, 0.5 * h),
                (0.5 * (b - a), 0.03, 0.5 * h),
                label=cid["fence"],
                color=col,
                reflectivity=0.35,
                texture=TEX_WOOD,
            )
            static.add(
                BOX,
                (a + 0.05, y, 0.5 * h + 0.05),
                (0.05, 0.06, 0.5 * h + 0.05),
                label=cid["fence"],
                color=col,
                reflectivity=0.35,
            )

    def building(x0: float, x1: float, y_front: float, side: float) -> None:
        depth = rng.uniform(10.0, 18.0)
        height = rng.uniform(6.0, 24.0)
        color = _jitter(rng, _pick(rng, FACADE_PALETTE), 0.04)
        glass = _jitter(rng, (0.22, 0.28, 0.35), 0.05)
        cx, cy = 0.5 * (x0 + x1), side * (y_front + 0.5 * depth)
        static.add(
            BOX,
            (cx, cy, 0.5 * height),
            (0.5 * (x1 - x0), 0.5 * depth, 0.5 * height),
            label=cid["building"],
            color=color,
            color2=glass,
            reflectivity=0.45,
            texture=TEX_FACADE,
        )
        if rng.random() < 0.5:  # roof structure
            w = rng.uniform(2.0, 0.6 * (x1 - x0))
            static.add(
                BOX,
                (cx + rng.uniform(-0.2, 0.2) * (x1 - x0), cy, height + 1.0),
                (0.5 * w, 0.25 * depth, 1.0),
                label=cid["building"],
                color=_jitter(rng, (0.5, 0.5, 0.5)),
                reflectivity=0.4,
            )
        if rng.random() < 0.4:  # an awning over the ground floor
            static.add(
                BOX,
                (cx, side * (y_front - 0.6), 3.2),
                (0.4 * (x1 - x0), 0.6, 0.08),
                label=cid["building"],
                color=_jitter(rng, _pick(rng, SHIRT_PALETTE)),
                reflectivity=0.4,
            )

    def parked(x_from: float, x_to: float, y: float, yaw: float, along_y: bool = False) -> None:
        pos = x_from + rng.uniform(0.5, 4.0)
        while True:
            r = rng.random()
            if r < 0.1:
                n_cones = int(rng.integers(3, 6))
                if pos + 1.5 * n_cones > x_to:
                    break
                for k in range(n_cones):
                    c = pos + 1.5 * k
                    cx, cy = (y, c) if along_y else (c, y)
                    _place(_cone(rng, cid["traffic cone"], ids()), static, cx, cy, 0.0)
                pos += 1.5 * n_cones + rng.uniform(1.0, 3.0)
                continue
            is_truck = r < 0.17
            parts_fn = _truck if is_truck else _car
            label = cid["truck"] if is_truck else cid["car"]
            inst = ids()
            parts, length, _ = parts_fn(rng, label, inst)
            if pos + length > x_to:
                ids.next -= 1  # not placed: give the id back so ids stay dense
                break
            if rng.random() < 0.55:
                c = pos + 0.5 * length
                cx, cy = (y, c) if along_y else (c, y)
                _place(parts, static, cx, cy, yaw + rng.uniform(-0.04, 0.04))
            else:
                ids.next -= 1
            pos += length + rng.uniform(0.8, 4.0)

    for b0, b1 in blocks:
        for side in (-1.0, 1.0):
            # Street furniture along the curb.
            x = b0 + rng.uniform(1.0, 5.0)
            next_light = b0 + rng.uniform(5.0, 25.0)
            while x < b1 - 1.0:
                if x >= next_light:
                    street_light(x, side)
                    next_light = x + rng.uniform(25.0, 40.0)
                elif rng.random() < 0.08:
                    sign(x, side)
                elif rng.random() < 0.8:
                    tree(x, side * L.tree)
                x += rng.uniform(5.0, 9.0)
            parked(b0 + 2.0, b1 - 2.0, side * L.park, 0.0 if side < 0 else math.pi)
            # Lots: a building with a front yard, or a gap with trees.
            x = b0 + (2.0 if b0 > x_lo else 0.0) + rng.uniform(0.0, 3.0)
            while x < b1 - 6.0:
                width = min(rng.uniform(9.0, 26.0), b1 - x)
                setback = rng.uniform(13.0, 18.0)
                if rng.random() < 0.7:
                    building(x, x + width, setback, side)
                    yard = rng.random()
                    if yard < 0.3:
                        fence(x + 0.5, x + width - 0.5, side * (L.walk_out + 0.3))
                    elif yard < 0.5:
                        hedge_h = rng.uniform(0.7, 1.5)
                        static.add(
                            BOX,
                            (x + 0.5 * width, side * (L.walk_out + 0.6), 0.5 * hedge_h),
                            (0.5 * width - 0.5, 0.4, 0.5 * hedge_h),
                            label=cid["vegetation"],
                            color=_jitter(rng, (0.16, 0.33, 0.1)),
                            color2=(0.25, 0.4, 0.1),
                            reflectivity=0.55,
                            texture=TEX_FOLIAGE,
                        )
                    for _ in range(int(rng.integers(0, 3))):
                        if setback - L.walk_out > 2.5:
                            bush(
                                rng.uniform(x + 1, x + width - 1),
                                side * rng.uniform(L.walk_out + 1.4, setback - 0.8),
                            )
                else:
                    for _ in range(int(rng.integers(1, 4))):
                        tree(
                            rng.uniform(x + 1.0, x + width - 1.0),
                            side * rng.uniform(L.walk_out + 2.5, 30.0),
                            1.2,
                        )
                x += width + (rng.uniform(1.0, 7.0) if rng.random() < 0.35 else 0.0)
            # Standing pedestrians near the buildings.
            for _ in range(int(rng.poisson((b1 - b0) / 60.0))):
                px = rng.uniform(b0 + 1.0, b1 - 1.0)
                parts = _person(rng, cid["pedestrian"], ids())
                _place(
                    parts, static, px, side * rng.uniform(8.9, 9.0), rng.uniform(-math.pi, math.pi)
                )

    # Cross streets: buildings, parked cars and trees along them.
    for xc in crossings:
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                y = L.walk_out + 2.0
                while y < cross_len - 5.0:
                    depth = rng.uniform(10.0, 16.0)
                    width = rng.uniform(10.0, 22.0)
                    height = rng.uniform(6.0, 22.0)
                    setback = rng.uniform(13.0, 17.0)
                    color = _jitter(rng, _pick(rng, FACADE_PALETTE), 0.04)
                    cy = sy * (y + 0.5 * width)
                    cxb = xc + sx * (setback + 0.5 * depth)
                    static.add(
                        BOX,
                        (cxb, cy, 0.5 * height),
                        (0.5 * depth, 0.5 * width, 0.5 * height),
                        label=cid["building"],
                        color=color,
                        color2=_jitter(rng, (0.22, 0.28, 0.35)),
                        reflectivity=0.45,
                        texture=TEX_FACADE,
                    )
                    y += width + (rng.uniform(1.0, 6.0) if rng.random() < 0.3 else 0.0)
                yy = L.walk_out + rng.uniform(1.0, 6.0)
                while yy < cross_len - 5:
                    if rng.random() < 0.5:
                        tree(xc + sx * L.tree, sy * yy)
                    yy += rng.uniform(7.0, 12.0)
                lo, hi = L.walk_out + 2.0, cross_len - 5.0
                side_yaw = math.pi / 2 if sx > 0 else -math.pi / 2
                if sy > 0:
                    parked(lo, hi, xc + sx * L.park, side_yaw, along_y=True)
                else:
                    parked(-hi, -lo, xc + sx * L.park, side_yaw, along_y=True)
            sign(xc + sx * (L.road + 0.4), -sx, y=-sx * (L.road + 0.4))

    # ---- moving traffic (straight lines; each lane moves at one speed, so nothing collides)
    def lane_traffic(
        y: float, yaw: float, speed: float, gap: tuple[float, float], make, p_truck: float = 0.0
    ) -> None:
        direction = math.cos(yaw)
        lo = x_lo - (speed * duration if direction > 0 else 0.0)
        hi = x_hi + (speed * duration if direction < 0 else 0.0)
        pos = lo + rng.uniform(0.0, gap[1])
        while pos < hi:
            inst = ids()
            if make == "vehicle":
                if rng.random() < p_truck:
                    parts, length, _ = _truck(rng, cid["truck"], inst)
                else:
                    parts, length, _ = _car(rng, cid["car"], inst)
            elif make == "cyclist":
                parts, length = _cyclist(rng, cid["cyclist"], inst), 1.8
            else:
                parts, length = _person(rng, cid["pedestrian"], inst), 0.6
            add_moving(parts, pos + 0.5 * length, y + rng.uniform(-0.15, 0.15), yaw, speed)
            pos += length + rng.uniform(*gap)

    lane_traffic(L.lane, math.pi, rng.uniform(7.0, 13.0), (12.0, 70.0), "vehicle", 0.15)
    lane_traffic(-L.bike, 0.0, rng.uniform(3.0, 6.0), (12.0, 60.0), "cyclist")
    lane_traffic(L.bike, math.pi, rng.uniform(3.0, 6.0), (12.0, 60.0), "cyclist")
    for side in (-1.0, 1.0):
        for k, wy in enumerate(L.walkers):
            yaw = 0.0 if (k == 0) == (side < 0) else math.pi
            lane_traffic(side * wy, yaw, rng.uniform(1.0, 1.6), (3.0, 20.0), "pedestrian")
    # The ego lane: a lead car and maybe a follower at the ego's speed.
    if rng.random() < 0.75:
        inst = ids()
        parts, length, _ = _car(rng, cid["car"], inst)
        add_moving(parts, rng.uniform(10.0, 30.0) + 0.5 * length, -L.lane, 0.0, ego_speed)
    if rng.random() < 0.5:
        inst = ids()
        parts, length, _ = _car(rng, cid["car"], inst)
        add_moving(parts, -rng.uniform(8.0, 25.0) - 0.5 * length, -L.lane, 0.0, ego_speed)

    sun = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), 1.0])
    return dict(
        static=static.build(),
        dynamic_parts=dyn_parts.build(),
        dynamic_owner=np.array(owner, np.int64),
        motion=motion,
        ground=ground,
        ego_start=np.array([0.0, -L.lane, 0.0]),
        ego_speed=ego_speed,
        max_range=max_range,
        sun=sun / np.linalg.norm(sun),
        ambient=0.45,
        sky_zenith=np.array([0.30, 0.50, 0.85]),
        sky_horizon=np.array([0.80, 0.87, 0.95]),
        fog_distance=450.0,
        cloudiness=float(rng.uniform(0.2, 0.9)),
        extent=(x_lo, x_hi),
    )


# --------------------------------------------------------------------------- indoor


def _table(rng: np.random.Generator, label: int, inst: int, length: float, width: float) -> _Parts:
    p = _Parts()
    h = rng.uniform(0.72, 0.78)
    wood = _jitter(rng, _pick(rng, [(0.55, 0.38, 0.22), (0.85, 0.85, 0.82), (0.3, 0.2, 0.12)]))
    p.add(
        BOX,
        (0.0, 0.0, h - 0.02),
        (0.5 * length, 0.5 * width, 0.02),
        label=label,
        color=wood,
        reflectivity=0.5,
        texture=TEX_WOOD,
        instance=inst,
    )
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            p.add(
                BOX,
                (sx * (0.5 * length - 0.06), sy * (0.5 * width - 0.06), 0.5 * (h - 0.04)),
                (0.03, 0.03, 0.5 * (h - 0.04)),
                label=label,
                color=(0.2, 0.2, 0.2),
                reflectivity=0.4,
                instance=inst,
            )
    return p


def _chair(rng: np.random.Generator, label: int, inst: int, color: Color) -> _Parts:
    """A chair facing +x (its back at -x)."""
    p = _Parts()
    seat = rng.uniform(0.43, 0.48)
    p.add(
        BOX,
        (0.0, 0.0, seat),
        (0.22, 0.22, 0.025),
        label=label,
        color=color,
        reflectivity=0.4,
        texture=TEX_FABRIC,
        instance=inst,
        part="seat",
    )
    p.add(
        BOX,
        (-0.2, 0.0, seat + 0.25),
        (0.025, 0.21, 0.22),
        label=label,
        color=color,
        reflectivity=0.4,
        texture=TEX_FABRIC,
        instance=inst,
        part="back",
    )
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            p.add(
                BOX,
                (sx * 0.18, sy * 0.18, 0.5 * seat - 0.01),
                (0.018, 0.018, 0.5 * seat - 0.02),
                label=label,
                color=(0.25, 0.25, 0.27),
                reflectivity=0.4,
                instance=inst,
                part="leg",
            )
    return p


def _sofa(rng: np.random.Generator, label: int, inst: int) -> tuple[_Parts, float]:
    """A sofa facing +x."""
    p = _Parts()
    length = rng.uniform(1.6, 2.4)
    depth = rng.uniform(0.85, 1.0)
    fabric = _jitter(
        rng,
        _pick(
            rng,
            [
                (0.3, 0.35, 0.5),
                (0.55, 0.2, 0.2),
                (0.4, 0.4, 0.4),
                (0.6, 0.55, 0.45),
                (0.2, 0.4, 0.3),
            ],
        ),
    )
    p.add(
        BOX,
        (0.0, 0.0, 0.22),
        (0.5 * depth, 0.5 * length, 0.2),
        label=label,
        color=fabric,
        reflectivity=0.35,
        texture=TEX_FABRIC,
        instance=inst,
    )
    p.add(
        BOX,
        (-0.5 * depth + 0.11, 0.0, 0.6),
        (0.11, 0.5 * length, 0.2),
        label=label,
        color=fabric,
        reflectivity=0.35,
        texture=TEX_FABRIC,
        instance=inst,
    )
    for sy in (-1.0, 1.0):
        p.add(
            BOX,
            (0.0, sy * (0.5 * length - 0.1), 0.5),
            (0.5 * depth, 0.1, 0.12),
            label=label,
            color=fabric,
            reflectivity=0.35,
            texture=TEX_FABRIC,
            instance=inst,
        )
    return p, length


def _shelf(rng: np.random.Generator, label: int, inst: int) -> tuple[_Parts, float]:
    """A bookshelf with its open side at +x."""
    p = _Parts()
    width = rng.uniform(0.8, 1.6)
    height = rng.uniform(1.6, 2.2)
    depth = 0.35
    wood = _jitter(rng, _pick(rng, [(0.55, 0.38, 0.22), (0.9, 0.9, 0.88), (0.25, 0.2, 0.15)]))
    p.add(
        BOX,
        (-0.5 * depth + 0.01, 0.0, 0.5 * height),
        (0.01, 0.5 * width, 0.5 * height),
        label=label,
        color=wood,
        reflectivity=0.45,
        texture=TEX_WOOD,
        instance=inst,
    )
    for sy in (-1.0, 1.0):
        p.add(
            BOX,
            (0.0, sy * (0.5 * width - 0.01), 0.5 * height),
            (0.5 * depth, 0.01, 0.5 * height),
            label=label,
            color=wood,
            reflectivity=0.45,
            texture=TEX_WOOD,
            instance=inst,
        )
    n = int(rng.integers(4, 6))
    pitch = height / n
    for k in range(n + 1):
        z = min(k * pitch + 0.01, height - 0.01)
        p.add(
            BOX,
            (0.0, 0.0, z),
            (0.5 * depth, 0.5 * width - 0.02, 0.01),
            label=label,
            color=wood,
            reflectivity=0.45,
            texture=TEX_WOOD,
            instance=inst,
        )
        if k < n and rng.random() < 0.85:
            bh = 0.5 * (pitch - 0.06)
            p.add(
                BOX,
                (-0.03, 0.0, z + 0.01 + bh),
                (0.5 * depth - 0.06, 0.5 * width - 0.06, bh),
                label=label,
                color=wood,
                color2=wood,
                reflectivity=0.4,
                texture=TEX_BOOKS,
                instance=inst,
            )
    return p, width


def _plant(rng: np.random.Generator, label: int, inst: int) -> _Parts:
    p = _Parts()
    pot_r = rng.uniform(0.15, 0.25)
    pot_h = rng.uniform(0.3, 0.5)
    p.add(
        CYLINDER,
        (0.0, 0.0, 0.5 * pot_h),
        (pot_r, pot_r, 0.5 * pot_h),
        label=label,
        color=_jitter(rng, _pick(rng, [(0.7, 0.35, 0.2), (0.9, 0.9, 0.9), (0.2, 0.2, 0.2)])),
        reflectivity=0.45,
        instance=inst,
    )
    r = rng.uniform(0.3, 0.6)
    p.add(
        ELLIPSOID,
        (0.0, 0.0, pot_h + r * 0.9),
        (r, r, r * rng.uniform(1.0, 1.6)),
        label=label,
        color=_jitter(rng, (0.2, 0.45, 0.15)),
        color2=(0.3, 0.5, 0.1),
        reflectivity=0.5,
        texture=TEX_FOLIAGE,
        instance=inst,
    )
    return p


def _build_indoor(rng: np.random.Generator, duration: float, classes: tuple[SimClass, ...]):
    cid = {c.name: c.id for c in classes}
    ids = _Ids()
    static = _Parts()
    dyn_parts = _Parts()
    owner: list[int] = []
    motion: list[tuple[float, float, float, float]] = []

    ego_speed = float(rng.uniform(0.4, 0.8))
    travel = ego_speed * duration
    max_range = 30.0
    x0, x1 = -12.0, max(travel + 12.0, 24.0)
    half_w = rng.uniform(5.5, 7.0)
    ceil = rng.uniform(2.7, 3.2)
    wall_color = _jitter(rng, _pick(rng, [(0.85, 0.84, 0.8), (0.8, 0.78, 0.7), (0.7, 0.75, 0.8)]))

    # Walls (segmented), doors, pillars, ceiling tiles with lights.
    t = 0.1
    n = math.ceil((x1 - x0) / 8.0)
    edges = np.linspace(x0, x1, n + 1)
    for a, b in itertools.pairwise(edges):
        for sy in (-1.0, 1.0):
            static.add(
                BOX,
                (0.5 * (a + b), sy * (half_w + t), 0.5 * ceil),
                (0.5 * (b - a), t, 0.5 * ceil),
                label=cid["wall"],
                color=wall_color,
                reflectivity=0.6,
            )
        static.add(
            BOX,
            (0.5 * (a + b), 0.0, ceil + 0.1),
            (0.5 * (b - a), half_w + 2 * t, 0.1),
            label=cid["ceiling"],
            color=(0.92, 0.92, 0.9),
            reflectivity=0.6,
            texture=TEX_TILES,
        )
    for x in (x0 - t, x1 + t):
        static.add(
            BOX,
            (x, 0.0, 0.5 * ceil),
            (t, half_w + 2 * t, 0.5 * ceil),
            label=cid["wall"],
            color=wall_color,
            reflectivity=0.6,
        )
    door_color = _jitter(rng, _pick(rng, [(0.55, 0.35, 0.2), (0.9, 0.9, 0.9), (0.3, 0.4, 0.55)]))
    for sy in (-1.0, 1.0):
        x = x0 + rng.uniform(1.0, 6.0)
        while x < x1 - 1.5:
            static.add(
                BOX,
                (x, sy * (half_w - 0.03), 1.05),
                (0.48, 0.04, 1.05),
                label=cid["door"],
                color=door_color,
                reflectivity=0.5,
                texture=TEX_WOOD,
            )
            x += rng.uniform(6.0, 14.0)
    for x in (x0 + 0.03, x1 - 0.03):
        static.add(
            BOX,
            (x, rng.uniform(-half_w + 1, half_w - 1), 1.05),
            (0.04, 0.48, 1.05),
            label=cid["door"],
            color=door_color,
            reflectivity=0.5,
            texture=TEX_WOOD,
        )
    pillar_pitch = rng.uniform(6.0, 9.0)
    for x in np.arange(x0 + pillar_pitch, x1, pillar_pitch):
        for sy in (-1.0, 1.0):
            static.add(
                BOX,
                (float(x), sy * 2.6, 0.5 * ceil),
                (0.22, 0.22, 0.5 * ceil),
                label=cid["wall"],
                color=wall_color,
                reflectivity=0.6,
            )
    for x in np.arange(x0 + 1.5, x1, 3.0):
        for y in (-0.35 * half_w, 0.35 * half_w):
            static.add(
                BOX,
                (float(x), y, ceil - 0.015),
                (0.6, 0.15, 0.015),
                label=cid["ceiling"],
                color=(1.0, 1.0, 0.95),
                reflectivity=0.7,
                texture=TEX_LIGHT,
            )

    # Floor regions: the default floor and rugs.
    floor_color = _jitter(rng, _pick(rng, [(0.6, 0.45, 0.3), (0.7, 0.7, 0.68), (0.45, 0.3, 0.2)]))
    rects = [(-1e6, 1e6, -1e6, 1e6)]
    rlabel = [cid["floor"]]
    rcolor = [floor_color]
    rtex = [TEX_WOOD if rng.random() < 0.6 else TEX_TILES]

    # Furniture groups along both sides, leaving |y| < 3 free (aisle and walkways).
    zone = 3.0
    for sy in (-1.0, 1.0):
        x = x0 + rng.uniform(0.5, 2.0)
        while x < x1 - 2.5:
            kind = rng.random()
            slot = rng.uniform(3.0, 5.0)
            if kind < 0.35:  # table with chairs
                tl, tw = rng.uniform(1.2, 1.9), rng.uniform(0.7, 0.9)
                cy = sy * (zone + 0.55 + 0.5 * tw)
                cx = x + 0.5 * slot
                _place(_table(rng, cid["table"], ids(), tl, tw), static, cx, cy, 0.0)
                chair_color = _jitter(rng, _pick(rng, SHIRT_PALETTE))
                n_side = 2 if tl > 1.5 else 1
                for side in (-1.0, 1.0):
                    for k in range(n_side):
                        if rng.random() < 0.85:
                            off = (k - 0.5 * (n_side - 1)) * 0.65
                            yaw = -math.pi / 2 * side + rng.uniform(-0.3, 0.3)
                            _place(
                                _chair(rng, cid["chair"], ids(), chair_color),
                                static,
                                cx + off,
                                cy + side * (0.5 * tw + 0.3),
                                yaw,
                            )
            elif kind < 0.6:  # lounge: sofa against the wall, coffee table, plant, rug
                parts, length = _sofa(rng, cid["sofa"], ids())
                cx = x + 0.5 * slot
                wall_y = sy * (half_w - 0.5)
                _place(parts, static, cx, wall_y, -math.pi / 2 * sy)
                _place(
                    _table(rng, cid["table"], ids(), 1.0, 0.55), static, cx, wall_y - sy * 1.2, 0.0
                )
                rects.append(
                    (
                        cx - 1.5,
                        cx + 1.5,
                        min(wall_y, wall_y - sy * 2.0),
                        max(wall_y, wall_y - sy * 2.0),
                    )
                )
                rlabel.append(cid["floor"])
                rcolor.append(_jitter(rng, _pick(rng, SHIRT_PALETTE)))
                rtex.append(TEX_FABRIC)
                if rng.random() < 0.7:
                    _place(
                        _plant(rng, cid["plant"], ids()),
                        static,
                        cx + 0.5 * length + 0.5,
                        sy * (half_w - 0.4),
                        0.0,
                    )
            elif kind < 0.85:  # shelves against the wall
                xs = x + 0.3
                for _ in range(int(rng.integers(1, 4))):
                    parts, width = _shelf(rng, cid["shelf"], ids())
                    if xs + width > x + slot:
                        ids.next -= 1
                        break
                    _place(parts, static, xs + 0.5 * width, sy * (half_w - 0.19), -math.pi / 2 * sy)
                    xs += width + 0.05
            else:
                _place(
                    _plant(rng, cid["plant"], ids()),
                    static,
                    x + 0.5 * slot,
                    sy * rng.uniform(zone + 0.5, half_w - 0.5),
                    0.0,
                )
            if kind >= 0.35 and rng.random() < 0.3:  # someone standing there
                _place(
                    _person(rng, cid["person"], ids()),
                    static,
                    x + rng.uniform(0.3, slot - 0.3),
                    sy * rng.uniform(zone + 0.2, zone + 0.5),
                    rng.uniform(-math.pi, math.pi),
                )
            x += slot

    # People walking along the walkways beside the robot's aisle.
    for sy in (-1.0, 1.0):
        speed = rng.uniform(0.6, 1.3)
        yaw = 0.0 if rng.random() < 0.5 else math.pi
        pos = x0 - speed * duration + rng.uniform(0.0, 6.0)
        while pos < x1 + speed * duration:
            parts = _person(rng, cid["person"], ids())
            dyn_parts.extend(parts)
            owner.extend([len(motion)] * len(parts))
            motion.append((pos, sy * 1.65, yaw, speed))
            pos += rng.uniform(4.0, 15.0)

    n_r = len(rects)
    ground = Ground(
        z=0.0,
        rects=np.array(rects, np.float64),
        label=np.array(rlabel, np.int32),
        color=np.array(rcolor, np.float32),
        color2=np.array(rcolor, np.float32),
        reflectivity=np.full(n_r, 0.5, np.float32),
        texture=np.array(rtex, np.int8),
        markings=np.zeros((0, 10), np.float64),
    )
    light = np.array([0.3, -0.2, 1.0])
    return dict(
        static=static.build(),
        dynamic_parts=dyn_parts.build(),
        dynamic_owner=np.array(owner, np.int64),
        motion=motion,
        ground=ground,
        ego_start=np.array([x0 + 6.0, 0.0, 0.0]),
        ego_speed=ego_speed,
        max_range=max_range,
        sun=light / np.linalg.norm(light),
        ambient=0.6,
        sky_zenith=np.array([0.2, 0.2, 0.22]),
        sky_horizon=np.array([0.3, 0.3, 0.32]),
        fog_distance=math.inf,
        cloudiness=0.0,
        extent=(x0, x1),
    )


def build_scene(preset: str, seed: int, duration_s: float) -> Scene:
    """Build the seeded scene of ``preset`` for ``duration_s`` seconds of ego motion."""
    if preset not in PRESET_CLASSES:
        raise Ws3dError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if not duration_s >= 0.0:
        raise Ws3dError(f"duration must be >= 0 s, found {duration_s}")
    classes = PRESET_CLASSES[preset]
    rng = np.random.default_rng([int(seed), 0x5CE7E])
    builder = _build_street if preset == "street" else _build_indoor
    d = builder(rng, float(duration_s), classes)
    motion = np.array(d["motion"], np.float64).reshape(-1, 4)
    # The ids 0 (stuff) and unique positive (things) are a contract: check it once here.
    for name in ("static", "dynamic_parts"):
        prims = d[name]
        thing = np.array([c.thing for c in classes])[prims.label]
        if np.any((prims.instance > 0) != thing):
            raise Ws3dError(f"{preset}: {name} has stuff with instance ids or things without")
    return Scene(
        preset=preset,
        seed=int(seed),
        classes=classes,
        static=d["static"],
        dynamic_parts=d["dynamic_parts"],
        dynamic_owner=d["dynamic_owner"],
        motion_start=motion[:, :3].copy(),
        motion_speed=motion[:, 3].copy(),
        ground=d["ground"],
        ego_start=d["ego_start"],
        ego_speed=d["ego_speed"],
        max_range=d["max_range"],
        sun=d["sun"],
        ambient=d["ambient"],
        sky_zenith=d["sky_zenith"],
        sky_horizon=d["sky_horizon"],
        fog_distance=d["fog_distance"],
        cloudiness=d["cloudiness"],
        duration_s=float(duration_s),
        extent=d["extent"],
    )


__all__ = ["PRESETS", "Ground", "Scene", "build_scene", "class_id"]
