"""Class lists of the simulator presets and their ``classes.yaml`` form.

The lists, :data:`UNKNOWN_LABEL` and the ``classes.yaml`` reader/writer live in
:mod:`ws3d_ros.labels` (layer 1, shared with the node and the runtime); this module
re-exports them under the simulator's names (:class:`SimClass` is
:class:`ws3d_ros.labels.ClassInfo`).
"""

from __future__ import annotations

from ws3d_ros.labels import (
    INDOOR_CLASSES,
    PRESET_CLASSES,
    STREET_CLASSES,
    UNKNOWN_LABEL,
    class_colors,
    class_id,
    classes_to_dict,
    load_classes,
    write_classes,
)
from ws3d_ros.labels import ClassInfo as SimClass

__all__ = [
    "INDOOR_CLASSES",
    "PRESET_CLASSES",
    "STREET_CLASSES",
    "UNKNOWN_LABEL",
    "SimClass",
    "class_colors",
    "class_id",
    "classes_to_dict",
    "load_classes",
    "write_classes",
]
