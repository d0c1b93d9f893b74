"""The one-click label sidecar: a JSON-lines file of clicked points, one per line.

One Thing One Click (Liu et al., "One Thing One Click: A Self-Training Approach for
Weakly Supervised 3D Semantic Segmentation", CVPR 2021) trains from one labelled point
per object; this file is how those points are stored, whether they come from a person
clicking in rviz/Foxglove (:mod:`ws3d_ros.ros.click_labeler`) or are derived from dense
ground truth (``ws3d clicks --from-labels``).

Contract:
- Format (``FORMAT = "ws3d-clicks/1"``): UTF-8 JSON lines. Line 1 is a header
  ``{"format": "ws3d-clicks/1"}``; every other line one :class:`Click`:
  ``{"bag": str, "stamp_ns": int, "index": int, "class": str, "xyz": [x, y, z],
  "source": str}``. ``bag`` is the bag's directory (or file) *name*, ``stamp_ns`` the
  sweep's header stamp, ``index`` the point's index in that sweep as recorded (before
  any range filtering), ``xyz`` its coordinates in the LiDAR frame (lets a reader that
  only holds a filtered copy of the sweep find the point, and lets :func:`validate`
  catch a file applied to the wrong sweep). Blank lines are ignored.
- The key of a click is ``(bag, stamp_ns, index)``; a later line with the same key
  replaces the earlier one (a re-click relabels the point).
- :func:`read_clicks` raises :class:`ClicksError` naming the file, line and field for
  every malformed line (bad JSON, missing/mistyped field, negative index, unknown
  format); :func:`validate` checks clicks against class names and sweeps.
- :func:`write_clicks` and :func:`append_clicks` are atomic: the new file is written
  beside the old one and renamed over it under an exclusive ``fcntl`` lock, so a reader
  never sees a half-written line and two writers never lose each other's clicks.
- :func:`labels_for_sweep` turns the clicks of one sweep into per-point training labels
  (uint16 class ids, 65535 = unlabelled), the layout of :mod:`training.weak_labels`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import UNKNOWN_LABEL

__all__ = [
    "FORMAT",
    "UNKNOWN",
    "Click",
    "ClicksError",
    "append_clicks",
    "by_sweep",
    "labels_for_sweep",
    "read_clicks",
    "validate",
    "write_clicks",
]

FORMAT = "ws3d-clicks/1"
UNKNOWN = UNKNOWN_LABEL


class ClicksError(Ws3dError, ValueError):
    """A clicks file is malformed, or a click does not fit its classes or sweep."""


@dataclass(frozen=True)
class Click:
    """One labelled point (see the module docstring)."""

    bag: str
    stamp_ns: int
    index: int
    cls: str
    xyz: tuple[float, float, float]
    source: str = "rviz"

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.bag, self.stamp_ns, self.index)

    def to_json(self) -> dict[str, Any]:
        return {
            "bag": self.bag,
            "stamp_ns": int(self.stamp_ns),
            "index": int(self.index),
            "class": self.cls,
            "xyz": [float(v) for v in self.xyz],
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "click") -> Click:
        if not isinstance(data, Mapping):
            raise ClicksError(f"{where}: expected a JSON object, found {type(data).__name__}")
        for key, types in (
            ("bag", str),
            ("stamp_ns", int),
            ("index", int),
            ("class", str),
            ("xyz", list),
        ):
            if key not in data:
                raise ClicksError(f"{where}: missing field {key!r}")
            value = data[key]
            if not isinstance(value, types) or isinstance(value, bool):
                raise ClicksError(
                    f"{where}: field {key!r} must be {types.__name__}, "
                    f"found {type(value).__name__} {value!r}"
                )
        unknown = set(data) - {"bag", "stamp_ns", "index", "class", "xyz", "source"}
        if unknown:
            raise ClicksError(f"{where}: unknown fields {sorted(unknown)}")
        if not data["bag"]:
            raise ClicksError(f"{where}: field 'bag' is empty")
        if not data["class"]:
            raise ClicksError(f"{where}: field 'class' is empty")
        if data["index"] < 0:
            raise ClicksError(f"{where}: field 'index' must be >= 0, found {data['index']}")
        xyz = data["xyz"]
        if len(xyz) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in xyz
        ):
            raise ClicksError(f"{where}: field 'xyz' must be 3 finite numbers, found {xyz!r}")
        source = data.get("source", "rviz")
        if not isinstance(source, str):
            raise ClicksError(f"{where}: field 'source' must be str, found {source!r}")
        return cls(
            bag=data["bag"],
            stamp_ns=int(data["stamp_ns"]),
            index=int(data["index"]),
            cls=data["class"],
            xyz=(float(xyz[0]), float(xyz[1]), float(xyz[2])),
            source=source,
        )


def _parse(lines: Iterable[str], name: str) -> list[Click]:
    out: dict[tuple[str, int, int], Click] = {}
    header_seen = False
    for lineno, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ClicksError(f"{name}:{lineno}: not valid JSON ({exc.msg})") from exc
        if not header_seen:
            fmt = data.get("format") if isinstance(data, Mapping) else None
            if fmt != FORMAT:
                raise ClicksError(
                    f'{name}:{lineno}: expected the header {{"format": "{FORMAT}"}}, '
                    f"found {text[:80]!r}"
                )
            header_seen = True
            continue
        click = Click.from_json(data, f"{name}:{lineno}")
        out.pop(click.key, None)  # a re-click moves to the end (latest wins)
        out[click.key] = click
    return list(out.values())


def read_clicks(path: str | Path) -> list[Click]:
    """All clicks of ``path`` (latest line per key wins); ``[]`` for a missing file."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClicksError(f"cannot read clicks file {path}: {exc}") from exc
    return _parse(text.splitlines(), str(path))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _dump(path: Path, clicks: Sequence[Click]) -> None:
    lines = [json.dumps({"format": FORMAT})]
    lines += [json.dumps(c.to_json()) for c in clicks]
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_clicks(path: str | Path, clicks: Iterable[Click]) -> Path:
    """Replace ``path`` with ``clicks`` (atomic). Returns the path."""
    path = Path(path)
    items = _parse([json.dumps({"format": FORMAT})] + [json.dumps(c.to_json()) for c in clicks], "")
    with _locked(path):
        _dump(path, items)
    return path


def append_clicks(path: str | Path, clicks: Iterable[Click]) -> int:
    """Add ``clicks`` to ``path`` (atomic; creates it). Returns the number of clicks now."""
    path = Path(path)
    new = list(clicks)
    with _locked(path):
        current = read_clicks(path)
        merged = _parse(
            [json.dumps({"format": FORMAT})] + [json.dumps(c.to_json()) for c in current + new],
            str(path),
        )
        _dump(path, merged)
    return len(merged)


def by_sweep(clicks: Iterable[Click]) -> dict[tuple[str, int], list[Click]]:
    """Clicks grouped by ``(bag, stamp_ns)``."""
    out: dict[tuple[str, int], list[Click]] = {}
    for c in clicks:
        out.setdefault((c.bag, c.stamp_ns), []).append(c)
    return out


def validate(
    clicks: Iterable[Click],
    *,
    classes: Sequence[str] | None = None,
    sweeps: Mapping[tuple[str, int], np.ndarray] | None = None,
    tolerance: float = 1e-3,
) -> None:
    """Raise :class:`ClicksError` for a click whose class is not in ``classes`` or whose
    ``index`` / ``xyz`` do not match the sweep in ``sweeps`` (``{(bag, stamp): (N,3)}``;
    sweeps not in the mapping are not checked)."""
    names = set(classes) if classes is not None else None
    for c in clicks:
        where = f"click {c.bag}@{c.stamp_ns}#{c.index}"
        if names is not None and c.cls not in names:
            raise ClicksError(f"{where}: class {c.cls!r} is not one of {sorted(names)}")
        if sweeps is None or (c.bag, c.stamp_ns) not in sweeps:
            continue
        xyz = np.asarray(sweeps[(c.bag, c.stamp_ns)])
        if c.index >= len(xyz):
            raise ClicksError(f"{where}: index beyond the sweep's {len(xyz)} points")
        err = float(np.max(np.abs(xyz[c.index].astype(np.float64) - np.asarray(c.xyz))))
        if not err <= tolerance:
            raise ClicksError(
                f"{where}: xyz {list(c.xyz)} differs from the sweep's point "
                f"{xyz[c.index].tolist()} by {err:.4g} m (file made for another sweep?)"
            )


def labels_for_sweep(
    clicks: Iterable[Click],
    xyz: np.ndarray,
    classes: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    tolerance: float = 1e-3,
) -> np.ndarray:
    """``(N,)`` uint16 training labels of one sweep from its clicks (65535 elsewhere).

    ``xyz``: the sweep's points as held by the caller. ``indices``: for each row of
    ``xyz`` its index in the recorded sweep (``None``: the rows *are* the recorded
    sweep). A click whose point is not among the rows is located by ``xyz`` (nearest
    row within ``tolerance``) and skipped when none is that close (filtered out).
    Unknown class names raise :class:`ClicksError`.
    """
    pts = np.asarray(xyz, dtype=np.float64)
    out = np.full(len(pts), UNKNOWN, np.uint16)
    lut = {name: k for k, name in enumerate(classes)}
    row_of: dict[int, int] | None = None
    if indices is not None:
        row_of = {int(i): r for r, i in enumerate(np.asarray(indices).tolist())}
    for c in clicks:
        if c.cls not in lut:
            raise ClicksError(f"click {c.bag}@{c.stamp_ns}#{c.index}: unknown class {c.cls!r}")
        row = c.index if row_of is None else row_of.get(c.index, -1)
        if row < 0 or row >= len(pts) or np.max(np.abs(pts[row] - c.xyz)) > tolerance:
            if len(pts) == 0:
                continue
            d = np.max(np.abs(pts - np.asarray(c.xyz)), axis=1)
            row = int(np.argmin(d))
            if d[row] > tolerance:
                continue
        out[row] = lut[c.cls]
    return out
