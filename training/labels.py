"""Training labels of cached frames, shared by the trainer and OTOC self-training.

- :func:`frame_train_labels`: a frame's ``train_labels`` from the ``labels`` section (the
  weak-label draw of :mod:`training.weak_labels`, then :func:`apply_label_config`).
- :func:`apply_label_config`: clicks file, supervoxel spread, OTOC pseudo labels and
  candidate classes into a frame.
- :func:`vocabulary_lut`: bag class ids -> ids of a vocabulary given by name.
- :func:`resolve_thing_radius`, :func:`resolve_ground_classes`, :func:`thing_click_mask`:
  the ``otoc`` options that restrict classes around clicks / on the ground.
- :func:`safe_key`, :data:`CANDIDATES_SUFFIX`: the file names of a pseudo-label directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from training.weak_labels import UNKNOWN, expand_to_segments, frame_rng, weak_labels
from ws3d_ros.errors import Ws3dError

if TYPE_CHECKING:
    from training.cache import CachedFrame
    from training.config import TrainConfig

#: ``<pseudo dir>/<frame><CANDIDATES_SUFFIX>``: the frame's packed candidate classes
CANDIDATES_SUFFIX = ".candidates.npy"


def safe_key(key: str) -> str:
    """A file name for a frame key ``<bag>:<stamp>``."""
    return key.replace("/", "_").replace(":", "@")


def resolve_ground_classes(names: Sequence[str] | None, classes: Sequence[str]) -> list[int]:
    """Ids of ``otoc.ground_classes`` in the model's vocabulary (empty: the prior is off);
    a name outside the vocabulary is a configuration error, not silently skipped."""
    from ws3d_ros.models.config import ConfigError

    names = list(names or [])
    missing = [n for n in names if n not in classes]
    if missing:
        raise ConfigError(
            f"otoc.ground_classes {missing} are not in the model's classes {list(classes)}"
        )
    return [list(classes).index(n) for n in names]


def resolve_thing_radius(
    value: Any, classes: Sequence[str], thing_ids: Sequence[int]
) -> np.ndarray | None:
    """``otoc.thing_radius`` as ``(C,)`` metres per class (``inf``: no limit), or None when
    off. A number > 0 applies to every thing class; a mapping ``{class name: metres}`` to
    the named ones (the others are unlimited). The mapping may also name a compact stuff
    class whose every connected region carries a click under the annotation protocol
    (one click per connected stuff region: a pole, a traffic sign); a large stuff class
    (road, building) has no useful radius. A name outside the vocabulary is a
    configuration error (checked before round 0 when the classes are known)."""
    from ws3d_ros.models.config import ConfigError

    num = len(classes)
    radius = np.full(num, np.inf)
    if isinstance(value, dict):
        if not value:
            return None
        for name, metres in value.items():
            if name not in classes:
                raise ConfigError(
                    f"otoc.thing_radius names {name!r}, not in the model's classes {list(classes)}"
                )
            k = list(classes).index(name)
            if not float(metres) > 0:
                raise ConfigError(f"otoc.thing_radius.{name} must be > 0 m")
            radius[k] = float(metres)
        return radius
    if not value or float(value) <= 0:
        return None
    radius[[k for k in thing_ids if 0 <= k < num]] = float(value)
    return radius


def thing_click_mask(
    centroids: np.ndarray,
    xyz: np.ndarray,
    clicks: np.ndarray,
    thing_ids: Sequence[int],
    num_classes: int,
    radius: float | Sequence[float] | np.ndarray,
) -> np.ndarray:
    """``(S, C)`` bool: may supervoxel ``s`` take class ``c``? Stuff classes always, unless
    given a finite radius (compact stuff, :func:`resolve_thing_radius`); a thing class (or
    such a stuff class) ``k`` only within ``radius`` metres (one number, or ``(C,)`` per
    class with ``inf`` for no limit) of one of its clicks in this sweep, measured
    horizontally from the supervoxel centroid (objects stand upright; a click anywhere on
    a pedestrian is within its width of every other point of it, but up to its height
    away in 3D). Under One Thing One Click's protocol every object carries a click, so a
    thing label farther from every click of its class than such an object is wide is a
    propagation error (a cone's label leaking over the road it stands on, a pedestrian's
    into the hedge behind)."""
    cen = np.asarray(centroids, np.float64)[:, :2]
    allowed = np.ones((len(cen), num_classes), bool)
    rad = np.broadcast_to(np.asarray(radius, np.float64), (num_classes,))
    c = np.asarray(clicks).astype(np.int64)
    # A single number bounds the thing classes only; per class, a finite radius also
    # marks a compact stuff class.
    per_class = np.ndim(radius) > 0
    compact_stuff = {int(k) for k in np.flatnonzero(np.isfinite(rad))} if per_class else set()
    limited = sorted({int(k) for k in thing_ids} | compact_stuff)
    for k in limited:
        if not 0 <= k < num_classes:
            continue
        pts = np.asarray(xyz, np.float64)[c == k, :2]
        if len(pts) == 0:
            allowed[:, k] = False
            continue
        if not np.isfinite(rad[k]):
            continue
        # One pass per click keeps memory O(S) (the trainer calls this per point).
        d2 = np.full(len(cen), np.inf)
        for p in pts:
            np.minimum(d2, ((cen - p) ** 2).sum(1), out=d2)
        allowed[:, k] = d2 <= rad[k] * rad[k]
    return allowed


def apply_label_config(
    frame: CachedFrame,
    lab: dict,
    class_names: list[str],
    *,
    thing_ids: Sequence[int] = (),
    thing_radius: np.ndarray | None = None,
    thing_ground_height: float = 0.0,
    ground_cell: float = 2.0,
) -> None:
    """Clicks file / OTOC pseudo labels into ``frame.train_labels`` (config ``labels``).
    With ``thing_ground_height`` > 0 (``otoc.thing_ground_height``) the points a click
    of a thing class spreads to over its supervoxel (``labels.expand_to_segments``) stay
    unlabelled where they lie that close to the local ground
    (:func:`training.otoc.ground_prior.ground_level_thing_points`): the supervoxel
    holds the ground under the object too; the clicked point keeps its label.
    Candidate classes of the unlabelled points into ``frame.train_candidates`` (packed
    bits): with ``thing_radius`` (``(C,)`` metres, one click per object) each point's
    thing classes without a click of theirs within that radius
    (:func:`thing_click_mask`, per point); a pseudo-label
    directory's ``<frame>.candidates.npy`` (the same test per supervoxel, written by
    :func:`training.otoc.self_training.write_pseudo_labels`) replaces them."""
    if lab.get("clicks_file"):
        from ws3d_ros.data.clicks import by_sweep, labels_for_sweep, read_clicks

        groups = _clicks_by_sweep(str(lab["clicks_file"]), read_clicks, by_sweep)
        bag, _, stamp = frame.key.rpartition(":")
        mine = groups.get((bag, int(stamp)), [])
        frame.train_labels = labels_for_sweep(mine, frame.xyz, class_names)
    clicks = frame.train_labels  # before the supervoxel spread and the pseudo labels
    if lab.get("expand_to_segments") and frame.train_labels is not None:
        frame.train_labels = expand_to_segments(frame.train_labels, frame.segments)
        if thing_ground_height > 0 and len(thing_ids):
            from training.otoc.ground_prior import ground_level_thing_points

            low = ground_level_thing_points(
                frame.xyz, frame.train_labels, thing_ids, height=thing_ground_height,
                cell=ground_cell,
            )  # fmt: skip
            low &= clicks == UNKNOWN
            frame.train_labels = np.where(low, UNKNOWN, frame.train_labels).astype(np.uint16)
    if lab.get("pseudo_dir"):
        path = Path(lab["pseudo_dir"]) / f"{safe_key(frame.key)}.npy"
        if path.is_file():
            pseudo = np.load(path)
            if len(pseudo) != len(frame):
                raise Ws3dError(f"{path} has {len(pseudo)} labels for {len(frame)} points")
            base = frame.train_labels
            if base is None:
                base = np.full(len(frame), UNKNOWN, np.uint16)
            frame.train_labels = np.where(base != UNKNOWN, base, pseudo).astype(np.uint16)
            cand_path = path.with_name(safe_key(frame.key) + CANDIDATES_SUFFIX)
            if cand_path.is_file():
                cand = np.load(cand_path)
                width = (len(class_names) + 7) // 8
                if cand.shape != (len(frame), width) or cand.dtype != np.uint8:
                    raise Ws3dError(
                        f"{cand_path} holds {cand.dtype} {cand.shape}, not packed candidate "
                        f"bits ({len(frame)}, {width}) uint8 for {len(class_names)} classes"
                    )
                frame.train_candidates = cand
    if (
        thing_radius is not None
        and clicks is not None
        and len(thing_ids)
        and frame.train_candidates is None
    ):
        xyz = frame.xyz
        allowed = thing_click_mask(xyz, xyz, clicks, thing_ids, len(class_names), thing_radius)
        frame.train_candidates = np.packbits(allowed, axis=1)


_CLICKS: dict[str, Any] = {}


def _clicks_by_sweep(path: str, read: Any, group: Any) -> dict:
    if path not in _CLICKS:
        _CLICKS.clear()
        _CLICKS[path] = group(read(path))
    return _CLICKS[path]


def vocabulary_lut(bag_classes: Sequence[str], class_names: Sequence[str]) -> np.ndarray | None:
    """Labels hold the bag's class ids; a vocabulary given by name is remapped onto them
    (a bag class missing from it becomes unknown). None: no remapping needed."""
    if not bag_classes or list(class_names) == list(bag_classes):
        return None
    lut = np.full(65536, UNKNOWN, np.uint16)
    for k, name in enumerate(bag_classes):
        if name in class_names:
            lut[k] = list(class_names).index(name)
    return lut


def frame_train_labels(
    frame: CachedFrame,
    cfg: TrainConfig,
    class_names: list[str],
    thing_ids: Sequence[int],
    thing_radius: np.ndarray | None,
) -> None:
    """``frame.train_labels`` (and candidates) of a training config ``cfg``: the weak-label
    draw of ``labels.mode`` seeded by ``labels.seed`` and the frame key, then
    :func:`apply_label_config`."""
    lab = cfg.labels
    frame.train_labels = weak_labels(
        lab["mode"],
        frame.labels,
        frame.instances,
        frame.xyz,
        frame_rng(int(lab["seed"]), frame.key),
        fraction=float(lab["fraction"]),
        clicks=int(lab["clicks_per_object"]),
        stuff_cell=float(lab["stuff_cell"]),
        min_region_points=int(lab["min_region_points"]),
        scribble_width=float(lab["scribble_width"]),
        scribbles_per_object=int(lab["scribbles_per_object"]),
    )
    apply_label_config(
        frame, lab, class_names, thing_ids=thing_ids, thing_radius=thing_radius,
        thing_ground_height=float(cfg.raw["otoc"]["thing_ground_height"]),
        ground_cell=float(cfg.raw["otoc"]["ground_cell"]),
    )  # fmt: skip
