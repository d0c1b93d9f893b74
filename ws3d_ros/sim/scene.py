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

Modules: :mod:`.scene_core` (the :class:`Scene` data, ``_Parts`` and the
:class:`~.scene_core.SceneBuilder` base), :mod:`.scene_objects` (cars, people,
furniture ...), :mod:`.scene_street` (:class:`~.scene_street.StreetBuilder`) and
:mod:`.scene_indoor` (:class:`~.scene_indoor.IndoorBuilder`); this module picks the
preset's builder and checks the result.
"""

from __future__ import annotations

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import PRESET_CLASSES, class_id
from ws3d_ros.sim.scene_core import Ground, Scene, SceneBuilder, _Parts  # noqa: F401  (re-exported)
from ws3d_ros.sim.scene_indoor import IndoorBuilder
from ws3d_ros.sim.scene_objects import _car, _chair, _person  # noqa: F401  (re-exported)
from ws3d_ros.sim.scene_street import StreetBuilder

PRESETS = tuple(PRESET_CLASSES)

#: The builder of each preset.
BUILDERS: dict[str, type[SceneBuilder]] = {"street": StreetBuilder, "indoor": IndoorBuilder}


def build_scene(preset: str, seed: int, duration_s: float) -> Scene:
    """Build the seeded scene of ``preset`` for ``duration_s`` seconds of ego motion."""
    if preset not in PRESET_CLASSES:
        raise Ws3dError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if not duration_s >= 0.0:
        raise Ws3dError(f"duration must be >= 0 s, found {duration_s}")
    classes = PRESET_CLASSES[preset]
    rng = np.random.default_rng([int(seed), 0x5CE7E])
    builder = BUILDERS[preset](rng, float(duration_s), classes)
    d = builder.build()
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


__all__ = ["BUILDERS", "PRESETS", "Ground", "Scene", "build_scene", "class_id"]
