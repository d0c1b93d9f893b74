"""The street preset's builder (see :mod:`ws3d_ros.sim.scene` for the layout).

:class:`StreetBuilder` draws, in this order (the order is the seeded scene): the ego
speed and the cross streets, the ground regions and markings, the sidewalks, the street
furniture, parked cars, lots and standing pedestrians of every block side, the cross
streets' buildings, trees and parked cars, the moving traffic, the lighting.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ws3d_ros.sim.raycast import BOX, CYLINDER, ELLIPSOID
from ws3d_ros.sim.scene_core import (
    FACADE_PALETTE,
    SHIRT_PALETTE,
    Color,
    Ground,
    SceneBuilder,
    _jitter,
    _pick,
    _place,
)
from ws3d_ros.sim.scene_objects import _car, _cone, _cyclist, _person, _truck
from ws3d_ros.sim.shading import (
    TEX_ASPHALT,
    TEX_BARK,
    TEX_FACADE,
    TEX_FOLIAGE,
    TEX_GRASS,
    TEX_SIGN,
    TEX_TILES,
    TEX_WOOD,
)


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


SIGN_COLORS: list[tuple[Color, Color]] = [
    ((0.8, 0.1, 0.1), (0.95, 0.95, 0.95)),
    ((0.1, 0.3, 0.75), (0.95, 0.95, 0.95)),
    ((0.95, 0.8, 0.1), (0.1, 0.1, 0.1)),
    ((0.95, 0.95, 0.95), (0.8, 0.1, 0.1)),
]
#: Length of a cross street's side (m, from the main street's centre line).
CROSS_LEN = 90.0


class StreetBuilder(SceneBuilder):
    """A seeded street: two lanes, bike and parking lanes, sidewalks, lots with buildings,
    cross streets and traffic."""

    L = _Layout()

    def build(self) -> dict[str, Any]:
        rng, L = self.rng, self.L
        self.ego_speed = float(rng.uniform(5.0, 10.0))
        travel = self.ego_speed * self.duration
        max_range = 100.0
        margin = max_range + 30.0
        self.x_lo, self.x_hi = -margin, travel + margin
        self._plan_crossings()
        ground = self._ground()
        self._sidewalks()
        for b0, b1 in self.blocks:
            for side in (-1.0, 1.0):
                self._block_side(b0, b1, side)
        for xc in self.crossings:
            self._cross_street(xc)
        self._traffic()
        sun = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), 1.0])
        return self.result(
            ground=ground,
            ego_start=np.array([0.0, -L.lane, 0.0]),
            ego_speed=self.ego_speed,
            max_range=max_range,
            sun=sun / np.linalg.norm(sun),
            ambient=0.45,
            sky_zenith=np.array([0.30, 0.50, 0.85]),
            sky_horizon=np.array([0.80, 0.87, 0.95]),
            fog_distance=450.0,
            cloudiness=float(rng.uniform(0.2, 0.9)),
            extent=(self.x_lo, self.x_hi),
        )

    def _plan_crossings(self) -> None:
        """Cross streets every 90-170 m (the first may be in view at the start) and the
        main-street blocks between them."""
        rng, L, x_lo, x_hi = self.rng, self.L, self.x_lo, self.x_hi
        crossings: list[float] = []
        x = x_lo + rng.uniform(30.0, 150.0)
        while x < x_hi - 20.0:
            crossings.append(float(x))
            x += rng.uniform(90.0, 170.0)
        self.crossings = crossings
        # Main-street pieces stop at different distances from a crossing.
        self.blocks_mark = _blocks(x_lo, x_hi, crossings, L.road + 4.5)
        self.blocks = _blocks(x_lo, x_hi, crossings, L.walk_out)

    # ------------------------------------------------------------------ ground
    def _ground(self) -> Ground:
        """Ground regions (terrain, road, cross roads) and painted markings."""
        rng, L, cid = self.rng, self.L, self.cid
        x_lo, x_hi, crossings, blocks_mark = self.x_lo, self.x_hi, self.crossings, self.blocks_mark
        asphalt = _jitter(rng, (0.26, 0.26, 0.27), 0.03)
        grass = _jitter(rng, (0.30, 0.42, 0.16), 0.04)
        # Rows (rect, label, color, color2, reflectivity, texture); row 0: the default ground.
        self.regions = [
            ((-1e6, 1e6, -1e6, 1e6), cid["terrain"], grass, (0.45, 0.40, 0.25), 0.45, TEX_GRASS)
        ]
        far = 200.0
        self.region(
            (x_lo - 50, x_hi + 50, -L.road, L.road),
            cid["road"],
            asphalt,
            asphalt,
            0.18,
            TEX_ASPHALT,
        )
        for xc in crossings:
            self.region(
                (xc - L.road, xc + L.road, -far, far),
                cid["road"],
                asphalt,
                asphalt,
                0.18,
                TEX_ASPHALT,
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
        rects, rlabel, rcolor, rcolor2, rrefl, rtex = (
            list(c) for c in zip(*self.regions, strict=True)
        )
        return Ground(
            z=0.0,
            rects=np.array(rects, np.float64),
            label=np.array(rlabel, np.int32),
            color=np.array(rcolor, np.float32),
            color2=np.array(rcolor2, np.float32),
            reflectivity=np.array(rrefl, np.float32),
            texture=np.array(rtex, np.int8),
            markings=np.array(marks, np.float64).reshape(-1, 10),
        )

    def region(
        self,
        rect: tuple[float, float, float, float],
        label: int,
        color: Color,
        color2: Color,
        refl: float,
        tex: int,
    ) -> None:
        """A ground rectangle (later ones win over earlier ones)."""
        self.regions.append((rect, label, color, color2, refl, tex))

    # ------------------------------------------------------------------ sidewalks
    def _sidewalks(self) -> None:
        """Sidewalks (segmented so the azimuth index stays tight) along every block side
        and cross street, with the corner squares."""
        rng, L, cid, static = self.rng, self.L, self.cid, self.static
        blocks, crossings = self.blocks, self.crossings
        self.pave = pave = _jitter(rng, (0.62, 0.61, 0.58), 0.03)
        sw_half = 0.5 * (L.walk_out - L.road)
        sw_mid = 0.5 * (L.walk_out + L.road)
        for b0, b1 in blocks:
            for sy in (-1.0, 1.0):
                # Half the block sides have a grass verge (with the trees) between curb and
                # sidewalk.
                inner = L.road + (1.5 if rng.random() < 0.5 else 0.0)
                self.sidewalk_x(b0, b1, sy * 0.5 * (inner + L.walk_out), 0.5 * (L.walk_out - inner))
        for xc in crossings:
            for sx in (-1.0, 1.0):
                for sy in (-1.0, 1.0):
                    n = math.ceil((CROSS_LEN - L.walk_out) / 12.0)
                    edges = np.linspace(L.walk_out, CROSS_LEN, n + 1)
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

    def sidewalk_x(self, b0: float, b1: float, y_mid: float, half_y: float) -> None:
        static, cid, L = self.static, self.cid, self.L
        n = max(1, math.ceil((b1 - b0) / 12.0))
        edges = np.linspace(b0, b1, n + 1)
        for a, b in itertools.pairwise(edges):
            static.add(
                BOX,
                (0.5 * (a + b), y_mid, 0.5 * L.curb),
                (0.5 * (b - a), half_y, 0.5 * L.curb),
                label=cid["sidewalk"],
                color=self.pave,
                reflectivity=0.35,
                texture=TEX_TILES,
            )

    # ------------------------------------------------------------------ stuff and things
    def tree(self, x: float, y: float, scale: float = 1.0) -> None:
        rng, static, cid = self.rng, self.static, self.cid
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

    def bush(self, x: float, y: float) -> None:
        rng, static, cid = self.rng, self.static, self.cid
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

    def street_light(self, x: float, side: float) -> None:
        rng, static, cid, L = self.rng, self.static, self.cid, self.L
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

    def sign(self, x: float, side: float, y: float | None = None) -> None:
        rng, static, cid, L = self.rng, self.static, self.cid, self.L
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
        front, border = SIGN_COLORS[int(rng.integers(len(SIGN_COLORS)))]
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

    def fence(self, x0: float, x1: float, y: float) -> None:
        rng, static, cid = self.rng, self.static, self.cid
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

    def building(self, x0: float, x1: float, y_front: float, side: float) -> None:
        rng, static, cid = self.rng, self.static, self.cid
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

    def parked(
        self, x_from: float, x_to: float, y: float, yaw: float, along_y: bool = False
    ) -> None:
        rng, static, cid, ids = self.rng, self.static, self.cid, self.ids
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

    def _block_side(self, b0: float, b1: float, side: float) -> None:
        """One side of a main-street block: street furniture along the curb, parked cars,
        lots (a building with a front yard, or a gap with trees), standing pedestrians."""
        rng, L, cid, static, ids = self.rng, self.L, self.cid, self.static, self.ids
        x_lo = self.x_lo
        # Street furniture along the curb.
        x = b0 + rng.uniform(1.0, 5.0)
        next_light = b0 + rng.uniform(5.0, 25.0)
        while x < b1 - 1.0:
            if x >= next_light:
                self.street_light(x, side)
                next_light = x + rng.uniform(25.0, 40.0)
            elif rng.random() < 0.08:
                self.sign(x, side)
            elif rng.random() < 0.8:
                self.tree(x, side * L.tree)
            x += rng.uniform(5.0, 9.0)
        self.parked(b0 + 2.0, b1 - 2.0, side * L.park, 0.0 if side < 0 else math.pi)
        # Lots: a building with a front yard, or a gap with trees.
        x = b0 + (2.0 if b0 > x_lo else 0.0) + rng.uniform(0.0, 3.0)
        while x < b1 - 6.0:
            width = min(rng.uniform(9.0, 26.0), b1 - x)
            setback = rng.uniform(13.0, 18.0)
            if rng.random() < 0.7:
                self.building(x, x + width, setback, side)
                yard = rng.random()
                if yard < 0.3:
                    self.fence(x + 0.5, x + width - 0.5, side * (L.walk_out + 0.3))
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
                        self.bush(
                            rng.uniform(x + 1, x + width - 1),
                            side * rng.uniform(L.walk_out + 1.4, setback - 0.8),
                        )
            else:
                for _ in range(int(rng.integers(1, 4))):
                    self.tree(
                        rng.uniform(x + 1.0, x + width - 1.0),
                        side * rng.uniform(L.walk_out + 2.5, 30.0),
                        1.2,
                    )
            x += width + (rng.uniform(1.0, 7.0) if rng.random() < 0.35 else 0.0)
        # Standing pedestrians near the buildings.
        for _ in range(int(rng.poisson((b1 - b0) / 60.0))):
            px = rng.uniform(b0 + 1.0, b1 - 1.0)
            parts = _person(rng, cid["pedestrian"], ids())
            _place(parts, static, px, side * rng.uniform(8.9, 9.0), rng.uniform(-math.pi, math.pi))

    def _cross_street(self, xc: float) -> None:
        """A cross street's buildings, trees and parked cars, and its stop sign."""
        rng, L, cid, static = self.rng, self.L, self.cid, self.static
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                y = L.walk_out + 2.0
                while y < CROSS_LEN - 5.0:
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
                while yy < CROSS_LEN - 5:
                    if rng.random() < 0.5:
                        self.tree(xc + sx * L.tree, sy * yy)
                    yy += rng.uniform(7.0, 12.0)
                lo, hi = L.walk_out + 2.0, CROSS_LEN - 5.0
                side_yaw = math.pi / 2 if sx > 0 else -math.pi / 2
                if sy > 0:
                    self.parked(lo, hi, xc + sx * L.park, side_yaw, along_y=True)
                else:
                    self.parked(-hi, -lo, xc + sx * L.park, side_yaw, along_y=True)
            self.sign(xc + sx * (L.road + 0.4), -sx, y=-sx * (L.road + 0.4))

    # ------------------------------------------------------------------ traffic
    def lane_traffic(
        self,
        y: float,
        yaw: float,
        speed: float,
        gap: tuple[float, float],
        make,
        p_truck: float = 0.0,
    ) -> None:
        rng, cid, ids, duration = self.rng, self.cid, self.ids, self.duration
        x_lo, x_hi = self.x_lo, self.x_hi
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
            self.add_moving(parts, pos + 0.5 * length, y + rng.uniform(-0.15, 0.15), yaw, speed)
            pos += length + rng.uniform(*gap)

    def _traffic(self) -> None:
        """Moving traffic (straight lines; each lane moves at one speed, so nothing
        collides) and the ego lane's lead car and maybe a follower at the ego's speed."""
        rng, L, cid, ids, ego_speed = self.rng, self.L, self.cid, self.ids, self.ego_speed
        self.lane_traffic(L.lane, math.pi, rng.uniform(7.0, 13.0), (12.0, 70.0), "vehicle", 0.15)
        self.lane_traffic(-L.bike, 0.0, rng.uniform(3.0, 6.0), (12.0, 60.0), "cyclist")
        self.lane_traffic(L.bike, math.pi, rng.uniform(3.0, 6.0), (12.0, 60.0), "cyclist")
        for side in (-1.0, 1.0):
            for k, wy in enumerate(L.walkers):
                yaw = 0.0 if (k == 0) == (side < 0) else math.pi
                self.lane_traffic(side * wy, yaw, rng.uniform(1.0, 1.6), (3.0, 20.0), "pedestrian")
        # The ego lane: a lead car and maybe a follower at the ego's speed.
        if rng.random() < 0.75:
            inst = ids()
            parts, length, _ = _car(rng, cid["car"], inst)
            self.add_moving(parts, rng.uniform(10.0, 30.0) + 0.5 * length, -L.lane, 0.0, ego_speed)
        if rng.random() < 0.5:
            inst = ids()
            parts, length, _ = _car(rng, cid["car"], inst)
            self.add_moving(parts, -rng.uniform(8.0, 25.0) - 0.5 * length, -L.lane, 0.0, ego_speed)
