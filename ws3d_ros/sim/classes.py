"""Class lists of the simulator presets and their ``classes.yaml`` form.

Contract: a preset's classes are a tuple of :class:`SimClass` with ids
``0..n-1`` in order; names are plain English words (what a user would type as
an open-vocabulary prompt). Nothing downstream may depend on a fixed list: the
list travels with the data as ``classes.yaml``
(``classes: [{id, name, thing, color: [r, g, b]}, ...]``), written beside every
simulated bag and read back with :func:`load_classes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ws3d_ros.errors import Ws3dError

#: Label value of points that belong to no class (matches ``Frame`` / the node).
UNKNOWN_LABEL = 65535


@dataclass(frozen=True)
class SimClass:
    """One semantic class: id, name, thing (has instances) or stuff, display colour."""

    id: int
    name: str
    thing: bool
    color: tuple[int, int, int]


def _make(rows: Sequence[tuple[str, bool, tuple[int, int, int]]]) -> tuple[SimClass, ...]:
    return tuple(SimClass(i, name, thing, color) for i, (name, thing, color) in enumerate(rows))


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

PRESET_CLASSES: dict[str, tuple[SimClass, ...]] = {
    "street": STREET_CLASSES,
    "indoor": INDOOR_CLASSES,
}


def class_id(classes: Sequence[SimClass], name: str) -> int:
    """Id of the class called ``name``; raises :class:`Ws3dError` naming the choices."""
    for c in classes:
        if c.name == name:
            return c.id
    raise Ws3dError(f"no class {name!r}; classes are {[c.name for c in classes]}")


def class_colors(classes: Sequence[SimClass]) -> np.ndarray:
    """(n, 3) uint8 RGB colour table indexed by class id."""
    return np.array([c.color for c in classes], dtype=np.uint8).reshape(-1, 3)


def classes_to_dict(classes: Sequence[SimClass]) -> dict:
    return {
        "classes": [
            {"id": c.id, "name": c.name, "thing": c.thing, "color": list(c.color)} for c in classes
        ]
    }


def write_classes(path: str | Path, classes: Sequence[SimClass]) -> Path:
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


def load_classes(path: str | Path) -> tuple[SimClass, ...]:
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
            out.append(SimClass(int(row["id"]), str(row["name"]), bool(row["thing"]), color))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Ws3dError(f"{path}: classes[{k}] needs id, name, thing ({exc})") from exc
        if len(color) != 3:
            raise Ws3dError(f"{path}: classes[{k}].color must have 3 entries, found {len(color)}")
    return tuple(sorted(out, key=lambda c: c.id))
