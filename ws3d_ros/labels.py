"""Class labels and ready vocabularies: the one home of ``UNKNOWN_LABEL`` and the presets.

Contract:
- :data:`UNKNOWN_LABEL` (65535, the largest uint16) is the label of a point that belongs
  to no class: unlabelled ground truth, a prediction the model abstains on, nothing hit.
  Every module that needs the value imports it from here.
- A preset is a tuple of :class:`ClassInfo` with ids ``0..n-1`` in order; names are plain
  English words (what a user would type as an open-vocabulary prompt), each a thing (has
  instances) or stuff, with a display colour (the SemanticKITTI palette where the class
  exists there). :data:`PRESET_CLASSES` holds them by the simulator's preset name
  (``street``, ``indoor``); :data:`VOCABULARY_PRESETS` by the name of the node's ready
  vocabulary file (``config/vocabularies/driving.yaml``, ``indoor.yaml``; a test keeps the
  files equal to these tuples). :data:`DRIVING_CLASSES` / :data:`DRIVING_THINGS` are the
  node's default vocabulary.
- Nothing downstream may depend on a fixed list: a list travels with the data as
  ``classes.yaml`` (``classes: [{id, name, thing, color: [r, g, b]}, ...]``), written by
  :func:`write_classes` and read back with :func:`load_classes`.

Layer 1: numpy and yaml only (no torch, no rclpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ws3d_ros.errors import Ws3dError

#: Label of a point that belongs to no class (uint16 max; never a class id).
UNKNOWN_LABEL = 65535


@dataclass(frozen=True)
class ClassInfo:
    """One semantic class: id, name, thing (has instances) or stuff, display colour."""

    id: int
    name: str
    thing: bool
    color: tuple[int, int, int]


def _make(rows: Sequence[tuple[str, bool, tuple[int, int, int]]]) -> tuple[ClassInfo, ...]:
    return tuple(ClassInfo(i, name, thing, color) for i, (name, thing, color) in enumerate(rows))


# Colours follow the SemanticKITTI palette where a class exists there.
STREET_CLASSES = _make(
    [
        ("road", False, (255, 0, 255)),
        ("sidewalk", False, (75, 0, 75)),
        ("terrain", False, (150, 240, 80)),
        ("building", False, (255, 200, 0)),
        ("vegetation", False, (0, 175, 0)),
        ("pole", False, (255, 240, 150)),
        ("traffic sign", False, (255, 0, 0)),
        ("fence", False, (255, 120, 50)),
        ("car", True, (100, 150, 245)),
        ("truck", True, (80, 30, 180)),
        ("pedestrian", True, (255, 30, 30)),
        ("cyclist", True, (255, 40, 200)),
        ("traffic cone", True, (255, 150, 0)),
    ]
)

INDOOR_CLASSES = _make(
    [
        ("floor", False, (150, 110, 70)),
        ("wall", False, (200, 200, 200)),
        ("ceiling", False, (120, 120, 170)),
        ("door", False, (140, 60, 20)),
        ("table", True, (255, 200, 0)),
        ("chair", True, (0, 160, 255)),
        ("sofa", True, (160, 40, 200)),
        ("shelf", True, (40, 200, 120)),
        ("plant", True, (0, 120, 0)),
        ("person", True, (255, 30, 30)),
    ]
)

#: The simulator's scene presets -> their classes.
PRESET_CLASSES: dict[str, tuple[ClassInfo, ...]] = {
    "street": STREET_CLASSES,
    "indoor": INDOOR_CLASSES,
}

#: The node's ready vocabularies (``config/vocabularies/<name>.yaml``) -> their classes.
VOCABULARY_PRESETS: dict[str, tuple[ClassInfo, ...]] = {
    "driving": STREET_CLASSES,
    "indoor": INDOOR_CLASSES,
}

#: The node's default vocabulary (the same as config/vocabularies/driving.yaml).
DRIVING_CLASSES: tuple[str, ...] = tuple(c.name for c in STREET_CLASSES)
DRIVING_THINGS: tuple[str, ...] = tuple(c.name for c in STREET_CLASSES if c.thing)


def preset_palette() -> dict[str, tuple[int, int, int]]:
    """Class name -> display colour over every preset (the first preset naming it wins)."""
    out: dict[str, tuple[int, int, int]] = {}
    for classes in PRESET_CLASSES.values():
        for c in classes:
            out.setdefault(c.name, tuple(c.color))
    return out


def class_id(classes: Sequence[ClassInfo], name: str) -> int:
    """Id of the class called ``name``; raises :class:`Ws3dError` naming the choices."""
    for c in classes:
        if c.name == name:
            return c.id
    raise Ws3dError(f"no class {name!r}; classes are {[c.name for c in classes]}")


def class_colors(classes: Sequence[ClassInfo]) -> np.ndarray:
    """(n, 3) uint8 RGB colour table indexed by class id."""
    return np.array([c.color for c in classes], dtype=np.uint8).reshape(-1, 3)


def classes_to_dict(classes: Sequence[ClassInfo]) -> dict:
    return {
        "classes": [
            {"id": c.id, "name": c.name, "thing": c.thing, "color": list(c.color)} for c in classes
        ]
    }


def write_classes(path: str | Path, classes: Sequence[ClassInfo]) -> Path:
    """Write ``classes.yaml`` (block style, stable key order) and return its path."""
    import yaml

    path = Path(path)
    lines = ["classes:"]
    for c in classes:
        # Flow-style rows keep the file readable; yaml.safe_dump quotes names safely.
        name = yaml.safe_dump(c.name, default_style=None).strip().removesuffix("...").strip()
        r, g, b = c.color
        lines.append(
            f"  - {{id: {c.id}, name: {name}, thing: {'true' if c.thing else 'false'}, "
            f"color: [{r}, {g}, {b}]}}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def load_classes(path: str | Path) -> tuple[ClassInfo, ...]:
    """Read a ``classes.yaml`` written by :func:`write_classes` (or by hand)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise Ws3dError(f"cannot read classes file {path}: {exc}") from exc
    rows = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise Ws3dError(f"{path}: expected a non-empty 'classes' list")
    out = []
    for k, row in enumerate(rows):
        try:
            color = tuple(int(v) for v in row.get("color", (128, 128, 128)))
            out.append(ClassInfo(int(row["id"]), str(row["name"]), bool(row["thing"]), color))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Ws3dError(f"{path}: classes[{k}] needs id, name, thing ({exc})") from exc
        if len(color) != 3:
            raise Ws3dError(f"{path}: classes[{k}].color must have 3 entries, found {len(color)}")
    return tuple(sorted(out, key=lambda c: c.id))
