"""Ground-truth label sources of a bag, shared by ``ws3d train`` and ``ws3d eval``.

Formats (README, "Your own bags"):
1. A labels ``sensor_msgs/PointCloud2`` topic with a ``label`` field (class id, any
   integer type; 65535 = unknown) and optionally ``instance`` (0 = none), same point
   count and order as the sweep, same header stamp. The simulator's ``/lidar/labels`` is
   one; so is the ``/panoptic/points`` that ``ws3d infer`` writes (its ids are named by
   the ``/panoptic/label_map`` beside it: :func:`label_map_names`).
2. SemanticKITTI ``.label`` sidecars: ``DIR/NNNNNN.label`` for the N-th sweep of the
   bag (0-based, bag order), uint32 per point, class in the low 16 bits and instance
   in the high 16 (:class:`SidecarLabels`).

Either can carry raw dataset ids (SemanticKITTI: 10 car, 40 road, 252 moving car, ...):
a *label map* file turns them into the class ids 0..C-1 (:func:`load_label_map`; the
project ships ``config/label_maps/semantic_kitti.yaml`` for the 19 SemanticKITTI
classes). A label map is a ``classes.yaml`` (``classes: [{id, name, thing, color}]``)
plus ``learning_map: {raw id: class id}`` (a raw id mapped to -1 or absent is unknown).
:func:`no_labels_message` is the one error every command prints when no sweep had
labels: which formats were looked for and the flags that select them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import UNKNOWN_LABEL

UNKNOWN = UNKNOWN_LABEL
SHIPPED_MAPS = Path(__file__).resolve().parents[2] / "config" / "label_maps"


@dataclass(frozen=True)
class LabelMap:
    """Raw label ids -> class ids 0..C-1 with the classes' names (module docstring)."""

    path: Path
    names: tuple[str, ...]
    things: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    lut: np.ndarray  # (65536,) uint16: raw id (low 16 bits) -> class id, 65535 unknown

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """``(N,)`` raw ids (any integer type) -> ``(N,)`` uint16 class ids."""
        return self.lut[np.asarray(raw).astype(np.int64) & 0xFFFF]


def load_label_map(path: str | Path) -> LabelMap:
    """Read a label map file (module docstring); a bare name looks in the shipped maps."""
    import yaml

    from ws3d_ros.labels import load_classes

    path = Path(path)
    if not path.is_file() and (SHIPPED_MAPS / f"{path.name}.yaml").is_file():
        path = SHIPPED_MAPS / f"{path.name}.yaml"
    if not path.is_file():
        raise Ws3dError(f"label map {path} does not exist")
    classes = load_classes(path)
    if [c.id for c in classes] != list(range(len(classes))):
        raise Ws3dError(f"{path}: class ids must be 0..n-1")
    doc = yaml.safe_load(path.read_text())
    mapping = doc.get("learning_map")
    if not isinstance(mapping, dict) or not mapping:
        raise Ws3dError(f"{path}: expected a 'learning_map' of raw id -> class id")
    lut = np.full(65536, UNKNOWN, np.uint16)
    for raw, cid in mapping.items():
        try:
            raw_i, cid_i = int(raw), int(cid)
        except (TypeError, ValueError):
            raise Ws3dError(f"{path}: learning_map {raw!r}: {cid!r} is not integers") from None
        if not 0 <= raw_i < 65536 or cid_i >= len(classes):
            raise Ws3dError(
                f"{path}: learning_map {raw_i}: {cid_i} is out of range "
                f"(raw 0..65535, class -1..{len(classes) - 1})"
            )
        lut[raw_i] = UNKNOWN if cid_i < 0 else cid_i
    return LabelMap(
        path,
        tuple(c.name for c in classes),
        tuple(c.name for c in classes if c.thing),
        tuple(tuple(c.color) for c in classes),  # type: ignore[misc]
        lut,
    )


class SidecarLabels:
    """SemanticKITTI ``NNNNNN.label`` files of one bag's sweeps (module docstring)."""

    def __init__(self, directory: str | Path, label_map: LabelMap | None = None) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise Ws3dError(f"label sidecars directory {self.directory} does not exist")
        self.label_map = label_map

    def read(self, index: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(labels uint16, instances uint32)`` of sweep ``index`` (``None``: no file)."""
        path = self.directory / f"{index:06d}.label"
        if not path.is_file():
            return None
        packed = np.fromfile(path, dtype="<u4")
        if len(packed) != n:
            raise Ws3dError(f"{path} has {len(packed)} labels for a sweep of {n} points")
        raw = packed & 0xFFFF
        labels = self.label_map.apply(raw) if self.label_map else raw.astype(np.uint16)
        return labels.astype(np.uint16), (packed >> 16).astype(np.uint32)


@dataclass(frozen=True)
class LabelClasses:
    """The classes that a bag's labels are numbered by (ids 0..C-1 after :attr:`lut`)."""

    names: tuple[str, ...]
    things: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    lut: np.ndarray | None = None  # (65536,) uint16 label id -> class id, None: as is

    def apply(self, labels: np.ndarray) -> np.ndarray:
        if self.lut is None:
            return labels
        return self.lut[np.asarray(labels).astype(np.int64) & 0xFFFF]


def output_label_classes(doc: str) -> LabelClasses:
    """The classes of a ``panoptic/label_map`` JSON message (``ws3d infer`` / the node):
    its class ids (stable vocabulary ids) renumbered 0..C-1 in id order."""
    try:
        data = json.loads(doc)
        rows = sorted(
            (int(e["id"]), str(e["name"]), bool(e.get("thing", False)), e.get("color"))
            for e in data.get("classes", [])
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Ws3dError(f"unreadable panoptic/label_map message: {exc}") from None
    lut = np.full(65536, UNKNOWN, np.uint16)
    for k, row in enumerate(rows):
        lut[row[0]] = k
    colors = tuple(tuple(int(v) for v in (c or (128, 128, 128)))[:3] for _, _, _, c in rows)
    return LabelClasses(
        tuple(r[1] for r in rows),
        tuple(r[1] for r in rows if r[2]),
        colors,  # type: ignore[arg-type]
        lut,
    )


def classes_file(path: str | Path) -> LabelClasses:
    """A ``classes.yaml`` (or a label map file) as :class:`LabelClasses` (ids 0..C-1)."""
    from ws3d_ros.labels import load_classes

    classes = load_classes(path)
    if [c.id for c in classes] != list(range(len(classes))):
        raise Ws3dError(f"{path}: class ids must be 0..n-1")
    return LabelClasses(
        tuple(c.name for c in classes),
        tuple(c.name for c in classes if c.thing),
        tuple(tuple(c.color) for c in classes),  # type: ignore[misc]
    )


def bag_label_classes(
    bag: str | Path, found: LabelClasses | None = None, given: str | Path | None = None
) -> tuple[LabelClasses | None, str]:
    """The classes a bag's labels are numbered by, and where they came from: ``given``
    (a classes file), else ``found`` (the label map file or the labels topic's
    ``panoptic/label_map``: :attr:`BagFrames.label_classes`), else the ``classes.yaml``
    beside/inside the bag; ``(None, what was looked for)`` when none."""
    if given is not None:
        return classes_file(given), str(given)
    if found is not None:
        return found, "the labels' label map"
    bag = Path(bag)
    path = (bag if bag.is_dir() else bag.parent) / "classes.yaml"
    if path.is_file():
        return classes_file(path), str(path)
    return None, f"no {path}, no --label-map, no panoptic/label_map beside the labels topic"


def no_labels_message(bag: Path, looked: Sequence[str]) -> str:
    """The one-line error of a command that found no labelled sweep."""
    return (
        f"no labelled sweep in {bag}: looked for {'; '.join(looked)}. Labels come from a "
        "PointCloud2 topic with a 'label' field (--labels TOPIC; the /panoptic/points of "
        "`ws3d infer` works) or SemanticKITTI sidecars (--label-sidecars DIR "
        "[--label-map config/label_maps/semantic_kitti.yaml])"
    )
