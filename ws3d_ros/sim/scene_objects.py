"""The things and furniture of the scenes, each built in its own frame (x forward, origin
on the ground at its centre) as :class:`~ws3d_ros.sim.scene_core._Parts`: cars, trucks,
pedestrians, cyclists, cones (street); tables, chairs, sofas, shelves, plants (indoor).
Each takes the scene's rng, its class id and instance id; the part studio
(:mod:`ws3d_ros.sim.parts`) uses the part names they give."""

from __future__ import annotations

import numpy as np

from ws3d_ros.sim.raycast import BOX, CONE, CYLINDER, ELLIPSOID
from ws3d_ros.sim.scene_core import (
    CAR_PALETTE,
    GLASS,
    SHIRT_PALETTE,
    SKIN_PALETTE,
    TROUSER_PALETTE,
    Color,
    _jitter,
    _Parts,
    _pick,
)
from ws3d_ros.sim.shading import (
    TEX_BOOKS,
    TEX_CABIN,
    TEX_CARBODY,
    TEX_CONE,
    TEX_FABRIC,
    TEX_FOLIAGE,
    TEX_LIGHT,
    TEX_PLAIN,
    TEX_WOOD,
)


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
