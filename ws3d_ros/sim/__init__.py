"""The simulated LiDAR + camera rig (``ws3d sim``): seeded scenes, ray-cast sensors, bags.

Public API (imported lazily, so ``ws3d_ros.sim.classes`` stays light):

- :class:`SimConfig`, :class:`Simulator` (``.frames()`` -> :class:`SimFrame`),
  :func:`write_bag` (rosbag2 + ``classes.yaml``; optional SemanticKITTI export
  and preview picture) from :mod:`.rig` and :mod:`.bagwrite`;
- :func:`render_preview` from :mod:`.preview`;
- :class:`SimClass`, :func:`load_classes`, :func:`write_classes` from :mod:`.classes`.

Modules: ``classes`` (class lists, classes.yaml), ``scene`` (procedural
street/indoor scenes), ``raycast`` (numba ray casting), ``shading``
(materials), ``lidar``, ``camera`` (renderer), ``rig`` (sensors, timing,
frames), ``bagwrite``, ``preview``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SimConfig": "rig",
    "Simulator": "rig",
    "SimFrame": "rig",
    "CameraShot": "rig",
    "sample_frame": "rig",
    "write_bag": "bagwrite",
    "export_semantickitti": "bagwrite",
    "render_preview": "preview",
    "SimClass": "classes",
    "load_classes": "classes",
    "write_classes": "classes",
    "build_scene": "scene",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ws3d_ros.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ws3d_ros.sim.{module}"), name)
