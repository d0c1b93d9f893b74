"""Benchmark of instance grouping (:func:`group_instances`): wall time and recovery.

Run: ``.venv/bin/python bench/bench_grouping.py``. A bench runner imports this file and
calls :func:`run`, which returns one dict per measured configuration.

The data: the 64-beam street sweep of the simulator (~124k points, ~18k of thing classes)
with ground-truth classes and offsets derived from ground truth (offset = instance
centroid - point), exact or with Gaussian noise (sigma 0.1 m / 0.3 m per axis), and with
no offsets (clustering the points where they are).

Measured: median wall time of ``RUNS`` calls after a warm-up (numba compilation cached on
disk and excluded); recovery = fraction of ground-truth instances with >= ``min_points``
points matched by a predicted instance with IoU > 0.5. Acceptance: <= 50 ms for the
single-set grouping with offsets.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

# Runnable as a plain script from a checkout: the package need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.geometry.instances import group_instances
from ws3d_ros.sim.rig import SimConfig, Simulator

RUNS = 9
MIN_POINTS = 8
ACCEPT_MS = 50.0


def gt_offsets(xyz: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """Offset of each instance point to its instance centroid (0 for stuff)."""
    _, inv = np.unique(instances, return_inverse=True)
    count = np.bincount(inv)
    centre = np.stack([np.bincount(inv, weights=xyz[:, a]) for a in range(3)], axis=1)
    off = centre[inv] / count[inv, None] - xyz
    off[instances == 0] = 0.0
    return off


def recovery(pred: np.ndarray, truth: np.ndarray, min_points: int = MIN_POINTS) -> float:
    """Fraction of GT instances (>= min_points) matched with IoU > 0.5."""
    pred = pred.astype(np.int64)
    pred_size = np.bincount(pred)
    ok = total = 0
    for g in np.unique(truth[truth > 0]):
        m = truth == g
        if m.sum() < min_points:
            continue
        total += 1
        ids, inter = np.unique(pred[m], return_counts=True)
        inter, ids = inter[ids > 0], ids[ids > 0]
        if len(ids):
            ok += bool(np.max(inter / (m.sum() + pred_size[ids] - inter)) > 0.5)
    return ok / max(total, 1)


def run(runs: int = RUNS) -> list[dict]:
    frame = Simulator(SimConfig(preset="street", frames=1, lidar_beams=64)).frame(0)
    xyz = frame.xyz.astype(np.float64)
    things = [c.id for c in frame.classes if c.thing]
    exact = gt_offsets(xyz, frame.instances.astype(np.int64))
    rng = np.random.default_rng(0)
    is_thing = np.isin(frame.labels, things)
    cases = [
        ("GT offsets", exact),
        ("GT offsets + 0.1 m noise", exact + rng.normal(0, 0.1, xyz.shape)),
        ("GT offsets + 0.3 m noise", exact + rng.normal(0, 0.3, xyz.shape)),
        ("no offsets", None),
    ]
    rows = []
    for dual in (False, True):
        for name, off in cases:
            fn = lambda off=off, dual=dual: group_instances(  # noqa: E731
                xyz, off, frame.labels, things, min_points=MIN_POINTS, dual_set=dual
            )
            pred = fn()
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            rows.append(
                {
                    "name": name + (" (dual set)" if dual else ""),
                    "points": len(xyz),
                    "thing_points": int(is_thing.sum()),
                    "instances": int(pred.max()),
                    "gt_instances": len(np.unique(frame.instances[frame.instances > 0])),
                    "recovery": recovery(pred, frame.instances),
                    "median_ms": statistics.median(times) * 1e3,
                    "runs": runs,
                }
            )
    return rows


def markdown(results: list[dict]) -> str:
    r0 = results[0]
    lines = [
        f"Instance grouping, {r0['points']} points ({r0['thing_points']} thing points, "
        f"{r0['gt_instances']} GT instances), radius 0.5 m, min_points {MIN_POINTS}; "
        f"median of {r0['runs']} runs",
        "",
        "| offsets | instances | recovery (IoU > 0.5) | ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['instances']} | {r['recovery']:.3f} | {r['median_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    results = run()
    print(markdown(results))
    ref = results[0]
    print(f"\n{ref['name']}: {ref['median_ms']:.1f} ms (acceptance: <= {ACCEPT_MS:.0f} ms)")
    return 0 if ref["median_ms"] <= ACCEPT_MS else 1


if __name__ == "__main__":
    sys.exit(main())
