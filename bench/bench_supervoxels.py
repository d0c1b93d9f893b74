"""Benchmark of supervoxel over-segmentation: wall time, count and class purity.

Run: ``.venv/bin/python bench/bench_supervoxels.py``. A bench runner imports this file
and calls :func:`run`, which returns one dict per measured configuration.

The data: one simulated sweep per row (``Simulator(SimConfig(preset, frames=1,
lidar_beams=beams)).frame(0)``; the 64-beam street sweep has ~124k points). Rows use
xyz + intensity, and for the street sweep also the front camera's colours (projected with
a 4x4 z-buffer; about a quarter of the points have one).

Measured: median wall time of ``RUNS`` calls of :func:`supervoxels` after a warm-up
(numba compilation is cached on disk and excluded); the number of supervoxels; purity =
fraction of points whose supervoxel's majority ground-truth class is their own.
Acceptance: <= 500 ms and purity >= 0.95 on the 64-beam street sweep.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

# Runnable as a plain script from a checkout: the package need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.geometry.projection import pixel_indices, project_points
from ws3d_ros.geometry.supervoxels import supervoxels
from ws3d_ros.sim.rig import SimConfig, SimFrame, Simulator

RUNS = 7
ACCEPT_MS = 500.0
ACCEPT_PURITY = 0.95
CONFIGS: tuple[tuple[str, int, bool], ...] = (
    ("street", 64, False),
    ("street", 64, True),
    ("street", 128, False),
    ("indoor", 64, False),
)


def purity(labels: np.ndarray, gt: np.ndarray) -> float:
    """Fraction of points whose supervoxel's majority class equals their own."""
    s, c = int(labels.max()) + 1, int(gt.max()) + 1
    hist = np.bincount(labels * c + gt, minlength=s * c).reshape(s, c)
    return float(np.mean(hist.argmax(axis=1)[labels] == gt))


def camera_colors(frame: SimFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(N,3)`` uint8 colours from every camera (first one that sees a point) + valid."""
    colors = np.zeros((len(frame), 3), np.uint8)
    valid = np.zeros(len(frame), bool)
    for name, shot in frame.cameras.items():
        proj = project_points(frame.points, shot.camera, shot.T_cam_from_lidar, zbuffer_block=4)
        idx = np.flatnonzero(proj.mask & ~valid)
        rc = pixel_indices(proj)[np.isin(np.flatnonzero(proj.mask), idx)]
        colors[idx] = frame.images[name][rc[:, 0], rc[:, 1]]
        valid[idx] = True
    return colors, valid


def run(runs: int = RUNS, configs: tuple[tuple[str, int, bool], ...] = CONFIGS) -> list[dict]:
    rows = []
    for preset, beams, use_color in configs:
        frame = Simulator(SimConfig(preset=preset, frames=1, lidar_beams=beams)).frame(0)
        kw: dict = {"intensity": frame.points["intensity"]}
        if use_color:
            kw["colors"], kw["color_valid"] = camera_colors(frame)
        xyz = frame.xyz
        sv = supervoxels(xyz, **kw)  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            sv = supervoxels(xyz, **kw)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "name": f"{preset} {beams}-beam" + (" + colour" if use_color else ""),
                "points": len(xyz),
                "voxels": len(sv.voxels),
                "supervoxels": sv.num,
                "edges": len(sv.adjacency()),
                "median_points": float(np.median(sv.counts())),
                "purity": purity(sv.labels, frame.labels.astype(np.int64)),
                "median_ms": statistics.median(times) * 1e3,
                "runs": runs,
            }
        )
    return rows


def markdown(results: list[dict]) -> str:
    lines = [
        f"Supervoxels (voxel 0.2 m, seeds 1.0 m; median of {results[0]['runs']} runs)",
        "",
        "| sweep | points | voxels | supervoxels | edges | median pts/sv | purity | ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['points']} | {r['voxels']} | {r['supervoxels']} | "
            f"{r['edges']} | {r['median_points']:.0f} | {r['purity']:.4f} | "
            f"{r['median_ms']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    results = run()
    print(markdown(results))
    ref = results[0]
    ok = ref["median_ms"] <= ACCEPT_MS and ref["purity"] >= ACCEPT_PURITY
    print(
        f"\n{ref['name']}: {ref['median_ms']:.0f} ms, purity {ref['purity']:.4f} "
        f"(acceptance: <= {ACCEPT_MS:.0f} ms, >= {ACCEPT_PURITY})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
