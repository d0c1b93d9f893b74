"""Benchmark of the simulator: frames per second for presets, camera counts and beam counts.

Measures, per configuration, the whole ``ws3d sim`` path (scene, LiDAR ray
casting, camera rendering, message encoding and MCAP bag writing) and the
frame generation alone, after a one-frame warm-up (numba compilation is cached
on disk and excluded). Run standalone (prints a Markdown table) or call
:func:`run` for the rows.

    python bench/bench_sim.py [--frames 10] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Standalone runs from a checkout: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.sim.bagwrite import write_bag
from ws3d_ros.sim.rig import SimConfig, Simulator

CONFIGS: tuple[tuple[str, int, int], ...] = (
    ("street", 1, 64),
    ("street", 1, 32),
    ("street", 1, 128),
    ("street", 6, 64),
    ("indoor", 1, 64),
    ("indoor", 6, 32),
)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(frames: int = 10, configs: tuple[tuple[str, int, int], ...] = CONFIGS) -> list[dict]:
    """One row per ``(preset, cameras, beams)``: frames/s with and without bag writing."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="ws3d_bench_sim_") as tmp:
        for k, (preset, cameras, beams) in enumerate(configs):
            config = SimConfig(preset=preset, frames=frames, cameras=cameras, lidar_beams=beams)
            write_bag(
                SimConfig(preset=preset, frames=1, cameras=cameras, lidar_beams=beams),
                Path(tmp) / f"warm{k}",
                progress=False,
            )
            t0 = time.perf_counter()
            sim = Simulator(config)
            points = [len(f.points) for f in sim.frames()]
            t_gen = time.perf_counter() - t0
            out = Path(tmp) / f"bag{k}"
            t0 = time.perf_counter()
            write_bag(config, out, progress=False)
            t_bag = time.perf_counter() - t0
            rows.append(
                {
                    "preset": preset,
                    "cameras": cameras,
                    "beams": beams,
                    "frames": frames,
                    "points_per_sweep": int(np.mean(points)),
                    "generate_fps": frames / t_gen,
                    "with_bag_fps": frames / t_bag,
                    "bag_mb_per_frame": _dir_size(out) / frames / 1e6,
                }
            )
    return rows


def to_markdown(rows: list[dict]) -> str:
    head = (
        "| preset | cameras | beams | points/sweep | frames/s (generate) | "
        "frames/s (incl. MCAP bag) | MB/frame |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    body = "".join(
        f"| {r['preset']} | {r['cameras']} | {r['beams']} | {r['points_per_sweep']:,} | "
        f"{r['generate_fps']:.2f} | {r['with_bag_fps']:.2f} | {r['bag_mb_per_frame']:.1f} |\n"
        for r in rows
    )
    return head + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="only street, 1 camera, 64 beams")
    args = parser.parse_args()
    configs = CONFIGS[:1] if args.quick else CONFIGS
    print(to_markdown(run(args.frames, configs)))


if __name__ == "__main__":
    main()
