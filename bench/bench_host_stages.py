"""Host stages side by side: the numpy frame path vs the device path's torch stages on CPU.

Run: ``.venv/bin/python bench/bench_host_stages.py [--cameras 1] [--frames 3] [--repeats 5]``.
Not a test. On the default ``config/model.yaml`` grid (0.1 m voxels, 4-stage U-Net tables,
ViT-B/16 at 384x1248 -> 24x78x512 feature maps) and a simulated 64-beam sweep, times the
four stages the networks do not cover, both ways, interleaved frame by frame so a loaded
machine slows both alike (the medians are what is printed):
- voxelise + rulebook: :func:`~ws3d_ros.models.inputs.prepare_geometry` vs
  :func:`~ws3d_ros.models.device.frame.prepare_geometry_t`;
- lift: :func:`~ws3d_ros.models.lifting.lift` vs :func:`~ws3d_ros.models.device.lifting.lift_t`
  (random unit feature maps of the tower's output shape);
- group: :func:`~ws3d_ros.geometry.instances.group_instances` vs
  :func:`~ws3d_ros.models.device.grouping.group_instances_t` on the sweep's ground-truth
  labels (thing classes as the runtime's), offsets zero.
The device path runs them with one torch thread, as the Pipeline does on CPU.

``--path numpy`` times only the numpy functions, so the same script can time an older
checkout's (``PYTHONPATH=OLD_TREE``, run alternately with ``--path device`` here): that is
how docs/runtime.md compares against the code before the device path. The first run of
each frame is a warm-up (numba compiles) and is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# Appended, so PYTHONPATH can point at an older checkout (--path numpy).
sys.path.append(str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, choices=(1, 6), default=1)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--path", choices=("numpy", "device", "both"), default="both")
    args = parser.parse_args()

    import numpy as np
    import torch

    from ws3d_ros.geometry.instances import group_instances
    from ws3d_ros.models.config import ModelConfig
    from ws3d_ros.models.inputs import camera_hits_for, prepare_geometry
    from ws3d_ros.models.lifting import lift
    from ws3d_ros.sim.classes import STREET_CLASSES
    from ws3d_ros.sim.rig import SimConfig, Simulator

    if args.path != "numpy":
        from ws3d_ros.models.device.frame import StageClock, pack_points, prepare_geometry_t
        from ws3d_ros.models.device.grouping import group_instances_t
        from ws3d_ros.models.device.lifting import lift_t
    cfg = ModelConfig.from_yaml()
    sim = Simulator(SimConfig(frames=args.frames, lidar_beams=64, cameras=args.cameras))
    frames = [sim.frame(i).to_frame() for i in range(args.frames)]
    things = [c.id for c in STREET_CLASSES if c.thing]
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {}

    def clock(key: str, t0: float) -> None:
        times.setdefault(key, []).append((time.perf_counter() - t0) * 1e3)

    def run_numpy(frame, geom, hits, maps, sizes, labels, offsets) -> None:
        t0 = time.perf_counter()
        prepare_geometry(frame.points, cfg)
        clock("numpy voxelise+rulebook", t0)
        t0 = time.perf_counter()
        lift(len(geom.kept), hits, maps, sizes)
        clock("numpy lift", t0)
        t0 = time.perf_counter()
        group_instances(geom.xyz, offsets, labels, things, radius=0.5, min_points=8)
        clock("numpy group", t0)

    for frame in frames:
        geom = prepare_geometry(frame.points, cfg)
        hits = camera_hits_for(geom, frame.views)
        maps = []
        for _ in frame.views:
            m = rng.standard_normal((24, 78, 512)).astype(np.float32)
            maps.append(m / np.linalg.norm(m, axis=2, keepdims=True))
        sizes = [v.image.shape[:2] for v in frame.views]
        labels = frame.labels[geom.kept]
        offsets = np.zeros((len(geom.kept), 3), np.float32)
        hits_t = [(torch.from_numpy(h.index), torch.from_numpy(h.uv)) for h in hits]
        maps_t = [torch.from_numpy(m) for m in maps]
        for k in range(args.repeats + 1):
            if k == 1:  # the first run of each frame warms up (numba compiles): dropped
                for v in times.values():
                    v.pop()
            if args.path == "device":
                times.setdefault("numpy voxelise+rulebook", []).append(0.0)
                times.setdefault("numpy lift", []).append(0.0)
                times.setdefault("numpy group", []).append(0.0)
            else:
                run_numpy(frame, geom, hits, maps, sizes, labels, offsets)
            if args.path == "numpy":
                for key in ("voxelise+rulebook", "lift", "group"):
                    times.setdefault(f"device {key}", []).append(0.0)
                continue
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            t0 = time.perf_counter()
            cols = torch.from_numpy(pack_points(frame.points, cfg.point_features))
            g = prepare_geometry_t(cols, cfg, StageClock(torch.device("cpu")))
            clock("device voxelise+rulebook", t0)
            t0 = time.perf_counter()
            lift_t(len(geom.kept), hits_t, maps_t, sizes)
            clock("device lift", t0)
            t0 = time.perf_counter()
            group_instances_t(
                g.xyz,
                torch.from_numpy(offsets),
                torch.from_numpy(labels.astype(np.int32)),
                torch.tensor(things),
                radius=0.5,
                min_points=8,
            )
            clock("device group", t0)
            torch.set_num_threads(previous)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(frames[0].points):,} points, {args.cameras} camera(s), medians of "
          f"{len(next(iter(times.values())))} interleaved runs\n")  # fmt: skip
    print("| stage (median ms) | numpy path | device path (torch, CPU) | speed-up |")
    print("|---|---:|---:|---:|")
    total = {"numpy": 0.0, "device": 0.0}
    for stage in ("voxelise+rulebook", "lift", "group"):
        a, b = med[f"numpy {stage}"], med[f"device {stage}"]
        total["numpy"] += a
        total["device"] += b
        print(f"| {stage} | {a:.1f} | {b:.1f} | {a / max(b, 1e-9):.1f}x |")
    a, b = total["numpy"], total["device"]
    print(f"| **host stages** | **{a:.1f}** | **{b:.1f}** | **{a / max(b, 1e-9):.1f}x** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
