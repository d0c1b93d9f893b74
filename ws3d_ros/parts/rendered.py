"""2D models made from rendered ground truth, with controlled noise.

They stand in for SAM and GLIP when the 3D algorithm is measured apart from 2D model
quality. They read per-view *segment maps* (``(H, W)`` int, one id per part instance,
``0`` = background; any renderer can make them, the simulator does in
:mod:`ws3d_ros.sim.parts`) and never import the simulator.

Contract:
- :class:`RenderedSegmenter` (a :class:`~ws3d_ros.parts.interfaces.MaskSegmenter`):
  ``everything()`` lists the view's segments of at least ``min_pixels`` pixels;
  ``prompt(points)`` returns the segment under most prompt pixels (``None`` when every
  prompt is on background). Noise (:class:`MaskNoise`), drawn per mask from a generator
  seeded by ``(seed, view, call)``: ``drop`` (the mask is missing), ``split`` (the mask is
  cut by a random line through its centroid; ``everything`` lists both halves, ``prompt``
  returns the half holding most prompts), ``merge`` (the mask is joined with a touching
  segment), ``jitter`` (the boundary moves in or out by 1..``jitter`` pixels).
- :class:`RenderedDetector` (a :class:`~ws3d_ros.parts.interfaces.BoxDetector`): the box
  of each visible segment whose class (``segment_class[id]``) is among the queried names,
  score 1 minus noise; :class:`BoxNoise` drops boxes, jitters their sides by a share of
  their size and gives a box a wrong class.
- :data:`NOISE_LEVELS`: the named levels ``0``, ``low``, ``high`` of both.
- Same inputs, seed and call sequence -> the same masks and boxes.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ws3d_ros.parts.interfaces import Detection, mask_box


@dataclass(frozen=True)
class MaskNoise:
    """Per-mask probabilities of the segmenter's errors and the jitter in pixels."""

    split: float = 0.0
    merge: float = 0.0
    drop: float = 0.0
    jitter: int = 0


@dataclass(frozen=True)
class BoxNoise:
    """Per-box probabilities of the detector's errors and the side jitter (share of size)."""

    drop: float = 0.0
    confuse: float = 0.0
    jitter: float = 0.0


NOISE_LEVELS: dict[str, tuple[MaskNoise, BoxNoise]] = {
    "0": (MaskNoise(), BoxNoise()),
    "low": (MaskNoise(split=0.1, merge=0.1, drop=0.05, jitter=1), BoxNoise(0.1, 0.05, 0.05)),
    "high": (MaskNoise(split=0.3, merge=0.3, drop=0.15, jitter=3), BoxNoise(0.25, 0.15, 0.12)),
}


def noise_level(name: str) -> tuple[MaskNoise, BoxNoise]:
    """The named noise level, or a ``ValueError`` listing the names."""
    try:
        return NOISE_LEVELS[name]
    except KeyError:
        raise ValueError(
            f"noise level must be one of {list(NOISE_LEVELS)}, found {name!r}"
        ) from None


def _rng(seed: int, *keys: object) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(repr(k).encode()) for k in keys)])


def _neighbours(seg: np.ndarray, sid: int) -> np.ndarray:
    """Segment ids (not 0, not ``sid``) touching segment ``sid`` (8-connected)."""
    ring = cv2.dilate((seg == sid).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ids = np.unique(seg[ring])
    return ids[(ids != 0) & (ids != sid)]


def _split(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(mask)
    angle = rng.uniform(0.0, np.pi)
    side = (rows - rows.mean()) * np.cos(angle) - (cols - cols.mean()) * np.sin(angle) >= 0
    a = np.zeros_like(mask)
    a[rows[side], cols[side]] = True
    return a, mask & ~a


def _jitter(mask: np.ndarray, pixels: int, rng: np.random.Generator) -> np.ndarray:
    if pixels <= 0:
        return mask
    k = int(rng.integers(1, pixels + 1))
    kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    op = cv2.dilate if rng.random() < 0.5 else cv2.erode
    out = op(mask.astype(np.uint8), kernel) > 0
    return out if out.any() else mask


class RenderedSegmenter:
    """Masks from segment maps with :class:`MaskNoise` (see the module docstring)."""

    def __init__(
        self,
        segment_maps: Sequence[np.ndarray],
        noise: MaskNoise = MaskNoise(),
        *,
        seed: int = 0,
        min_pixels: int = 12,
    ) -> None:
        self.maps = [np.asarray(m) for m in segment_maps]
        self.noise = noise
        self.seed = int(seed)
        self.min_pixels = int(min_pixels)
        self._view = -1
        self._calls = 0

    def set_view(self, view_index: int, image: np.ndarray) -> None:
        if not 0 <= view_index < len(self.maps):
            raise IndexError(f"view {view_index} outside 0..{len(self.maps) - 1}")
        self._view = int(view_index)

    def _map(self) -> np.ndarray:
        if self._view < 0:
            raise RuntimeError("set_view() first")
        return self.maps[self._view]

    def _noisy(
        self, seg: np.ndarray, sid: int, rng: np.random.Generator
    ) -> list[np.ndarray] | None:
        """The noisy version of segment ``sid``: None (dropped) or one or two masks."""
        nz = self.noise
        if rng.random() < nz.drop:
            return None
        mask = seg == sid
        if rng.random() < nz.merge:
            nb = _neighbours(seg, sid)
            if nb.size:
                mask = mask | (seg == int(nb[rng.integers(nb.size)]))
        masks = list(_split(mask, rng)) if rng.random() < nz.split else [mask]
        return [_jitter(m, nz.jitter, rng) for m in masks if m.any()]

    def everything(self) -> list[np.ndarray]:
        seg = self._map()
        rng = _rng(self.seed, "everything", self._view)
        ids, counts = np.unique(seg, return_counts=True)
        out = []
        for sid, count in zip(ids, counts, strict=True):
            if sid == 0 or count < self.min_pixels:
                continue
            masks = self._noisy(seg, int(sid), rng)
            out.extend(m for m in masks or [] if m.sum() >= self.min_pixels)
        return out

    def prompt(self, points_rc: np.ndarray) -> np.ndarray | None:
        seg = self._map()
        self._calls += 1
        pts = np.asarray(points_rc, np.int64).reshape(-1, 2)
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < seg.shape[0])
        ok &= (pts[:, 1] >= 0) & (pts[:, 1] < seg.shape[1])
        hit = seg[pts[ok, 0], pts[ok, 1]]
        hit = hit[hit != 0]
        if hit.size == 0:
            return None
        ids, counts = np.unique(hit, return_counts=True)
        sid = int(ids[np.argmax(counts)])
        rng = _rng(self.seed, "prompt", self._view, self._calls)
        masks = self._noisy(seg, sid, rng)
        if not masks:
            return None
        inside = [int(m[pts[ok, 0], pts[ok, 1]].sum()) for m in masks]
        return masks[int(np.argmax(inside))]


class RenderedDetector:
    """Boxes from segment maps with :class:`BoxNoise` (see the module docstring)."""

    def __init__(
        self,
        segment_maps: Sequence[np.ndarray],
        segment_class: Mapping[int, str],
        noise: BoxNoise = BoxNoise(),
        *,
        seed: int = 0,
        min_pixels: int = 12,
    ) -> None:
        self.maps = [np.asarray(m) for m in segment_maps]
        self.segment_class = {int(k): str(v) for k, v in segment_class.items()}
        self.noise = noise
        self.seed = int(seed)
        self.min_pixels = int(min_pixels)

    def detect(self, view_index: int, image: np.ndarray, class_names: list[str]) -> list[Detection]:
        seg = self.maps[view_index]
        rng = _rng(self.seed, "detect", view_index)
        names = list(class_names)
        out = []
        ids, counts = np.unique(seg, return_counts=True)
        for sid, count in zip(ids, counts, strict=True):
            name = self.segment_class.get(int(sid))
            if sid == 0 or count < self.min_pixels or name not in names:
                continue
            # Draw every number for every box, so one box's noise never shifts another's.
            drop, confuse, pick, jit = (
                rng.random(),
                rng.random(),
                rng.random(),
                rng.uniform(-1, 1, 4),
            )
            if drop < self.noise.drop:
                continue
            cls = names.index(name)
            if confuse < self.noise.confuse and len(names) > 1:
                others = [i for i in range(len(names)) if i != cls]
                cls = others[int(pick * len(others))]
            x0, y0, x1, y1 = mask_box(seg == sid)
            w, h = x1 - x0, y1 - y0
            j = jit * self.noise.jitter * np.array([w, h, w, h])
            score = 1.0 - 0.5 * max(abs(self.noise.jitter), 0.0) * float(np.abs(jit).mean())
            out.append(
                Detection(
                    float(x0 + j[0]),
                    float(y0 + j[1]),
                    float(x1 + j[2]),
                    float(y1 + j[3]),
                    cls,
                    score,
                )
            )
        return out
