"""Benchmark of LiDAR -> camera projection against a naive per-point Python loop.

Run: ``.venv/bin/python bench/bench_projection.py``. A bench runner imports this file
and calls :func:`run`, which returns one dict per measured operation.

The data: 131072 points (one 128-beam sweep: 360 deg azimuth, -25..+5 deg elevation,
1-80 m, float32) projected into one 1242x375 plumb_bob camera (KITTI-like intrinsics,
mild distortion) looking forward from the LiDAR.

Operations (median wall time of >= 7 runs, ``time.perf_counter``; the naive baseline
runs 3 times):
- ``project_points``: transform, divide, wrap-around guard, distortion and image mask;
- ``project_points`` with the 4x4-pixel z-buffer (``zbuffer_block=4``);
- naive: a Python loop that, per point, applies the 3x4 transform, divides by depth,
  applies plumb_bob distortion and checks the image bounds, the way a node written
  without numpy would.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Runnable as a plain script from a checkout: the package need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.geometry.projection import project_points

N_POINTS = 128 * 1024
RUNS = 9
NAIVE_RUNS = 3
ACCEPT_SPEEDUP = 10.0


def make_sweep(n: int = N_POINTS, seed: int = 0) -> np.ndarray:
    """A LiDAR-like sweep, ``(n, 3)`` float32 in the LiDAR frame (x forward, z up)."""
    rng = np.random.default_rng(seed)
    azimuth = rng.uniform(-math.pi, math.pi, n)
    elevation = np.radians(rng.uniform(-25.0, 5.0, n))
    rng_m = rng.uniform(1.0, 80.0, n)
    return np.column_stack(
        [
            rng_m * np.cos(elevation) * np.cos(azimuth),
            rng_m * np.cos(elevation) * np.sin(azimuth),
            rng_m * np.sin(elevation),
        ]
    ).astype(np.float32)


def make_camera() -> tuple[CameraModel, Transform]:
    camera = CameraModel.from_intrinsics(
        1242, 375, 721.5377, 721.5377, 609.5593, 172.854, D=(-0.05, 0.012, 0.0004, -0.0003, 0.0)
    )
    # Optical frame 0.27 m ahead of and 0.08 m below the LiDAR, looking along its x axis.
    T_lidar_from_cam = Transform.from_xyz_rpy((0.27, 0.0, -0.08), (-math.pi / 2, 0.0, -math.pi / 2))
    return camera, T_lidar_from_cam.inverse()


# --------------------------------------------------------------------------- naive baseline


def naive_project(
    points: np.ndarray, camera: CameraModel, T: Transform, min_depth: float = 0.1
) -> tuple[list[int], list[float], list[float]]:
    """Per point: transform, divide, distort, bounds check (indices and pixels in view)."""
    (r00, r01, r02, tx), (r10, r11, r12, ty), (r20, r21, r22, tz) = T.matrix[:3].tolist()
    k1, k2, p1, p2, k3 = camera.D.tolist()
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    width, height = camera.width, camera.height
    index, us, vs = [], [], []
    for i, (x, y, z) in enumerate(points.tolist()):
        zc = r20 * x + r21 * y + r22 * z + tz
        if zc <= min_depth:
            continue
        xn = (r00 * x + r01 * y + r02 * z + tx) / zc
        yn = (r10 * x + r11 * y + r12 * z + ty) / zc
        r2 = xn * xn + yn * yn
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = xn * radial + 2.0 * p1 * xn * yn + p2 * (r2 + 2.0 * xn * xn)
        yd = yn * radial + p1 * (r2 + 2.0 * yn * yn) + 2.0 * p2 * xn * yn
        u = fx * xd + cx
        v = fy * yd + cy
        if 0.0 <= u < width and 0.0 <= v < height:
            index.append(i)
            us.append(u)
            vs.append(v)
    return index, us, vs


# --------------------------------------------------------------------------- timing


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up (caches, the camera's guard radius, first-touch page faults)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def run(n_points: int = N_POINTS, runs: int = RUNS, naive_runs: int = NAIVE_RUNS) -> list[dict]:
    """Time every operation; one dict per row (times in ms, speed-up vs. naive)."""
    points = make_sweep(n_points)
    camera, T = make_camera()

    # Sanity: both paths select the same points at the same pixels (float32 aside).
    proj = project_points(points, camera, T)
    index, us, vs = naive_project(points, camera, T)
    ours = np.flatnonzero(proj.mask)
    disagree = np.setxor1d(ours, index)
    assert len(disagree) <= max(2, len(index) // 10_000), f"{len(disagree)} points disagree"
    common, _, b = np.intersect1d(ours, index, return_indices=True)
    assert np.max(np.abs(proj.uv[common] - np.column_stack([us, vs])[b])) < 1e-2

    naive = median_ms(lambda: naive_project(points, camera, T), naive_runs)
    plain = median_ms(lambda: project_points(points, camera, T), runs)
    zbuf = median_ms(
        lambda: project_points(points, camera, T, zbuffer_block=4, zbuffer_tolerance=0.5), runs
    )
    in_view = int(proj.mask.sum())
    return [
        _row("project_points", plain, naive, n_points, in_view, runs, naive_runs),
        _row("project_points + z-buffer 4x4", zbuf, naive, n_points, in_view, runs, naive_runs),
    ]


def _row(
    name: str, ours_ms: float, naive_ms: float, n: int, in_view: int, runs: int, naive_runs: int
) -> dict:
    return {
        "name": name,
        "points": n,
        "in_view": in_view,
        "median_ms": ours_ms,
        "naive_ms": naive_ms,
        "speedup": naive_ms / ours_ms if ours_ms > 0 else float("inf"),
        "runs": runs,
        "naive_runs": naive_runs,
    }


def markdown(results: list[dict]) -> str:
    r0 = results[0]
    lines = [
        f"LiDAR -> camera projection, {r0['points']} points into 1242x375 plumb_bob "
        f"({r0['in_view']} in view; median of {r0['runs']} runs, naive: {r0['naive_runs']})",
        "",
        "| operation | ws3d_ros (ms) | naive Python loop (ms) | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['median_ms']:.2f} | {r['naive_ms']:.1f} | {r['speedup']:,.0f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    results = run()
    print(markdown(results))
    worst = min(r["speedup"] for r in results)
    print(f"\nworst speed-up: {worst:,.0f}x (acceptance: >= {ACCEPT_SPEEDUP:.0f}x)")
    return 0 if worst >= ACCEPT_SPEEDUP else 1


if __name__ == "__main__":
    sys.exit(main())
