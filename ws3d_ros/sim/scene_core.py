"""The scene's data and the building blocks every scene builder shares.

- :class:`Scene` (and its :class:`Ground`): what :func:`ws3d_ros.sim.scene.build_scene`
  returns (see :mod:`ws3d_ros.sim.scene` for the contract).
- :class:`_Parts`: primitives accumulated row by row, with part names; :func:`_place` puts
  parts given in an object frame into the world.
- :class:`SceneBuilder`: the state a builder draws into (the seeded rng, class ids,
  instance ids, static and moving primitives); :mod:`.scene_street` and
  :mod:`.scene_indoor` subclass it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sim.classes import SimClass
from ws3d_ros.sim.raycast import Primitives
from ws3d_ros.sim.shading import (
    TEX_PLAIN,
)

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


class SceneBuilder(ABC):
    """What a scene builder draws into; :meth:`build` returns the fields of a :class:`Scene`.

    The random draws happen in the order the builder's steps run: that order is the
    seeded scene (same seed -> the same bytes)."""

    def __init__(
        self, rng: np.random.Generator, duration: float, classes: tuple[SimClass, ...]
    ) -> None:
        self.rng = rng
        self.duration = duration
        self.classes = classes
        self.cid = {c.name: c.id for c in classes}
        self.ids = _Ids()
        self.static = _Parts()
        self.dyn_parts = _Parts()
        self.owner: list[int] = []
        self.motion: list[tuple[float, float, float, float]] = []

    def add_moving(self, parts: _Parts, x: float, y: float, yaw: float, speed: float) -> None:
        """A thing moving in a straight line from ``(x, y)`` along ``yaw`` at ``speed``."""
        self.dyn_parts.extend(parts)
        self.owner.extend([len(self.motion)] * len(parts))
        self.motion.append((x, y, yaw, speed))

    def result(self, **fields: Any) -> dict[str, Any]:
        """The built primitives and motions plus the builder's other scene ``fields``."""
        return dict(
            static=self.static.build(),
            dynamic_parts=self.dyn_parts.build(),
            dynamic_owner=np.array(self.owner, np.int64),
            motion=self.motion,
            **fields,
        )

    @abstractmethod
    def build(self) -> dict[str, Any]:
        """The scene's fields (street: :class:`StreetBuilder`, indoor: :class:`IndoorBuilder`)."""
