"""Run every benchmark in ``bench/`` and print their tables (``make bench``).

Not a test: it prints the codec, projection and simulator tables and the
acceptance lines of the Foundation and Simulator issues, and exits 1 when a
target is missed (decode >= 20x and projection >= 10x the naive baselines on
128k points; the simulator >= 2 frames/s for 64 beams + 1 camera, bag
writing included).

    python bench/run_all.py [--quick]   # --quick: only the 64-beam street sim row
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_codec  # noqa: E402
import bench_projection  # noqa: E402
import bench_sim  # noqa: E402

SIM_TARGET_FPS = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only street, 1 camera, 64 beams")
    parser.add_argument("--frames", type=int, default=10, help="frames per simulator row")
    args = parser.parse_args(argv)

    failures = []
    codec = bench_codec.run()
    print(bench_codec.markdown(codec), end="\n\n")
    decode = min(r["speedup"] for r in codec if r["name"].startswith("decode"))
    if decode < 20:
        failures.append(f"decode {decode:.0f}x < 20x")

    projection = bench_projection.run()
    print(bench_projection.markdown(projection), end="\n\n")
    project = min(r["speedup"] for r in projection)
    if project < bench_projection.ACCEPT_SPEEDUP:
        failures.append(f"projection {project:.0f}x < {bench_projection.ACCEPT_SPEEDUP:.0f}x")

    configs = bench_sim.CONFIGS[:1] if args.quick else bench_sim.CONFIGS
    sim = bench_sim.run(args.frames, configs)
    print(f"Simulator, {args.frames} frames per row\n")
    print(bench_sim.to_markdown(sim))
    street = next(r for r in sim if (r["preset"], r["cameras"], r["beams"]) == ("street", 1, 64))
    if street["with_bag_fps"] < SIM_TARGET_FPS:
        failures.append(f"sim {street['with_bag_fps']:.2f} frames/s < {SIM_TARGET_FPS}")

    print(
        f"acceptance: decode {decode:,.0f}x (>= 20x), projection {project:,.0f}x "
        f"(>= {bench_projection.ACCEPT_SPEEDUP:.0f}x), sim 64 beams + 1 camera "
        f"{street['with_bag_fps']:.2f} frames/s incl. bag (>= {SIM_TARGET_FPS})"
    )
    for failure in failures:
        print(f"MISSED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
