"""The indoor preset's builder (see :mod:`ws3d_ros.sim.scene` for the layout).

:class:`IndoorBuilder` draws, in this order (the order is the seeded scene): the ego
speed and the hall's size, walls, doors, pillars and ceiling lights, the floor, the
furniture groups along both walls (with people standing there), the people walking.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ws3d_ros.sim.raycast import BOX
from ws3d_ros.sim.scene_core import SHIRT_PALETTE, Ground, SceneBuilder, _jitter, _pick, _place
from ws3d_ros.sim.scene_objects import _chair, _person, _plant, _shelf, _sofa, _table
from ws3d_ros.sim.shading import TEX_FABRIC, TEX_LIGHT, TEX_TILES, TEX_WOOD

#: Half width of the free middle of the hall (the robot's aisle and the walkways), m.
ZONE = 3.0


class IndoorBuilder(SceneBuilder):
    """A seeded hall: walls with doors, pillars, a ceiling with lights, furniture groups
    beside a free aisle, standing and walking people, and a slow robot ego."""

    def build(self) -> dict[str, Any]:
        rng = self.rng
        self.ego_speed = float(rng.uniform(0.4, 0.8))
        travel = self.ego_speed * self.duration
        max_range = 30.0
        self.x0, self.x1 = x0, x1 = -12.0, max(travel + 12.0, 24.0)
        self.half_w = rng.uniform(5.5, 7.0)
        self.ceil = rng.uniform(2.7, 3.2)
        self.wall_color = _jitter(
            rng, _pick(rng, [(0.85, 0.84, 0.8), (0.8, 0.78, 0.7), (0.7, 0.75, 0.8)])
        )
        self._walls()
        # Floor regions: the default floor and rugs.
        floor_color = _jitter(
            rng, _pick(rng, [(0.6, 0.45, 0.3), (0.7, 0.7, 0.68), (0.45, 0.3, 0.2)])
        )
        self.rects = [(-1e6, 1e6, -1e6, 1e6)]
        self.rlabel = [self.cid["floor"]]
        self.rcolor = [floor_color]
        self.rtex = [TEX_WOOD if rng.random() < 0.6 else TEX_TILES]
        # Furniture groups along both sides, leaving |y| < ZONE free (aisle and walkways).
        for sy in (-1.0, 1.0):
            x = x0 + rng.uniform(0.5, 2.0)
            while x < x1 - 2.5:
                x += self._furniture_slot(x, sy)
        self._walkers()
        n_r = len(self.rects)
        ground = Ground(
            z=0.0,
            rects=np.array(self.rects, np.float64),
            label=np.array(self.rlabel, np.int32),
            color=np.array(self.rcolor, np.float32),
            color2=np.array(self.rcolor, np.float32),
            reflectivity=np.full(n_r, 0.5, np.float32),
            texture=np.array(self.rtex, np.int8),
            markings=np.zeros((0, 10), np.float64),
        )
        light = np.array([0.3, -0.2, 1.0])
        return self.result(
            ground=ground,
            ego_start=np.array([x0 + 6.0, 0.0, 0.0]),
            ego_speed=self.ego_speed,
            max_range=max_range,
            sun=light / np.linalg.norm(light),
            ambient=0.6,
            sky_zenith=np.array([0.2, 0.2, 0.22]),
            sky_horizon=np.array([0.3, 0.3, 0.32]),
            fog_distance=math.inf,
            cloudiness=0.0,
            extent=(x0, x1),
        )

    def _walls(self) -> None:
        """Walls (segmented), doors, pillars, ceiling tiles with lights."""
        rng, cid, static = self.rng, self.cid, self.static
        x0, x1, half_w, ceil = self.x0, self.x1, self.half_w, self.ceil
        wall_color = self.wall_color
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
        door_color = _jitter(
            rng, _pick(rng, [(0.55, 0.35, 0.2), (0.9, 0.9, 0.9), (0.3, 0.4, 0.55)])
        )
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

    def _furniture_slot(self, x: float, sy: float) -> float:
        """One slot of furniture at ``x`` on side ``sy`` (a table with chairs, a lounge,
        shelves or a plant; maybe someone standing there); returns the slot's length."""
        rng, cid, static, ids, half_w = self.rng, self.cid, self.static, self.ids, self.half_w
        zone = ZONE
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
            _place(_table(rng, cid["table"], ids(), 1.0, 0.55), static, cx, wall_y - sy * 1.2, 0.0)
            self.rects.append(
                (
                    cx - 1.5,
                    cx + 1.5,
                    min(wall_y, wall_y - sy * 2.0),
                    max(wall_y, wall_y - sy * 2.0),
                )
            )
            self.rlabel.append(cid["floor"])
            self.rcolor.append(_jitter(rng, _pick(rng, SHIRT_PALETTE)))
            self.rtex.append(TEX_FABRIC)
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
        return slot

    def _walkers(self) -> None:
        """People walking along the walkways beside the robot's aisle."""
        rng, cid, ids, duration = self.rng, self.cid, self.ids, self.duration
        x0, x1 = self.x0, self.x1
        for sy in (-1.0, 1.0):
            speed = rng.uniform(0.6, 1.3)
            yaw = 0.0 if rng.random() < 0.5 else math.pi
            pos = x0 - speed * duration + rng.uniform(0.0, 6.0)
            while pos < x1 + speed * duration:
                parts = _person(rng, cid["person"], ids())
                self.add_moving(parts, pos, sy * 1.65, yaw, speed)
                pos += rng.uniform(4.0, 15.0)
