"""Click-region consistency of propagated labels: every labelled region must hold a click.

Under One Thing One Click's annotation protocol (Liu et al., CVPR 2021, Sec. 3.1) every
object of a sweep carries a click: each thing instance and each *connected* stuff region
(:func:`training.weak_labels.stuff_components`: the points of one class joined through
occupied ``cell``-metre voxels). A propagated labelling that puts class ``c`` on a
connected region containing no click of ``c`` therefore contradicts the annotation: that
region is some other class, or part of a ``c`` region whose click was lost to a wrong
label in between. Measured on the simulated benchmark (docs/experiments.md) most
propagation errors are such regions: road patches claimed as terrain, tree crowns as
building.

Contract (numpy; ``S`` supervoxels, ``C`` classes, ``N`` points):
- :func:`enforce_click_regions` takes the propagated ``probs (S, C)``, ``point_to_sv
  (N,)`` (``-1`` = not in the graph), the points ``xyz (N, 3)`` and the point
  ``clicks (N,)`` (class id, ``-1`` = none) and returns new probabilities. For every
  class ``c``, the points whose supervoxel's argmax is ``c`` are split into connected
  components with :func:`training.weak_labels.connected_components` (the protocol's own
  connectivity, ``cell`` metres); a supervoxel is *supported* when one of its points lies
  in a component holding a click of ``c``. An unsupported supervoxel loses its argmax
  class (probability set to 0, row renormalised) and the check repeats with the next
  best class, ``rounds`` times; a supervoxel still unsupported after that gets an all-zero
  row (no pseudo label: selection never keeps it). Clicked supervoxels are supported by
  their own click, so they are never dropped.
- ``thing_ids``: a stuff class's region continues through points labelled a thing class.
  Things stand on stuff and hide it (a parked car and its LiDAR shadow split the visible
  road), and a thing label that leaks onto stuff cuts the stuff region behind it; neither
  separates the stuff surface the click was drawn on. Without the bridge such cut-off
  road patches lost their correct class. Thing classes never bridge each other, and
  support still goes only to supervoxels labelled with the clicked class. Measured on the
  simulated benchmark (seed 0, round 3): propagated field 86.2 -> 90.8 % accuracy,
  72.6 -> 75.7 mIoU, road pseudo-label IoU 72 -> 80 (docs/experiments.md).
- Deterministic; the input array is not modified.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.weak_labels import connected_components

__all__ = ["enforce_click_regions", "supported_supervoxels"]


def supported_supervoxels(
    labels: np.ndarray,
    alive: np.ndarray,
    point_to_sv: np.ndarray,
    xyz: np.ndarray,
    clicks: np.ndarray,
    cell: float,
    thing_ids: Sequence[int] = (),
) -> np.ndarray:
    """``(S,)`` bool: supervoxel ``s`` (label ``labels[s]``, considered where
    ``alive[s]``) has a point in a ``cell``-connected region of its label that holds a
    click of that label; regions of a stuff class continue through thing-labelled points
    (``thing_ids``; module docstring)."""
    num = len(labels)
    supported = np.zeros(num, bool)
    p2s = np.asarray(point_to_sv, np.int64)
    in_graph = p2s >= 0
    safe = np.maximum(p2s, 0)
    point_label = np.where(in_graph & alive[safe], labels[safe], -1)
    click = np.asarray(clicks, np.int64)
    things = np.asarray(list(thing_ids), np.int64)
    on_thing = np.isin(point_label, things) if len(things) else np.zeros(len(p2s), bool)
    for c in np.unique(point_label[point_label >= 0]):
        own = point_label == c
        idx = np.flatnonzero(own if c in things else own | on_thing)
        comp = connected_components(xyz[idx], cell)
        clicked = comp[(click[idx] == c) & own[idx] & (comp >= 0)]
        if len(clicked) == 0:
            continue
        ok = np.isin(comp, np.unique(clicked)) & own[idx]
        supported[p2s[idx[ok]]] = True
    return supported


def enforce_click_regions(
    probs: np.ndarray,
    point_to_sv: np.ndarray,
    xyz: np.ndarray,
    clicks: np.ndarray,
    *,
    cell: float = 1.0,
    rounds: int = 3,
    thing_ids: Sequence[int] = (),
) -> np.ndarray:
    """Probabilities with the unsupported argmax classes removed (module docstring)."""
    if cell <= 0:
        raise ValueError(f"the click-region cell must be > 0 m, found {cell}")
    q = np.array(probs, dtype=np.float64, copy=True)
    if q.size == 0:
        return q.astype(np.asarray(probs).dtype)
    pts = np.asarray(xyz, np.float64)
    rows = np.arange(len(q))
    for attempt in range(max(int(rounds), 0) + 1):
        alive = q.max(axis=1) > 0
        labels = q.argmax(axis=1)
        bad = alive & ~supported_supervoxels(
            labels, alive, point_to_sv, pts, clicks, cell, thing_ids
        )
        if not bad.any():
            break
        if attempt == rounds:
            q[bad] = 0.0
            break
        q[rows[bad], labels[bad]] = 0.0
        total = q.sum(axis=1, keepdims=True)
        q = np.where(total > 0, q / np.maximum(total, 1e-12), 0.0)
    return q.astype(np.asarray(probs).dtype)
