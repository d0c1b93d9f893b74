"""Per-stage CPU latency of the runtime on a simulated 64-beam sweep: ONNX Runtime vs torch.

Run: ``.venv/bin/python bench/bench_pipeline.py [--clip ViT-B-16] [--cameras 1] [--runs 5]``.
Not a test. It builds a model from ``config/model.yaml`` with random weights (no weights
can be downloaded here; latency does not depend on the values), exports it with
``ws3d export`` code into a temporary directory, then runs the same frames through the
``torch`` and ``onnxruntime`` backends side by side and prints the median milliseconds
of every stage (decode and encode of the ROS messages included), the ratio torch/ORT,
and end-to-end Hz, for each mode (fusion, lidar_only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from ws3d_ros.models.checkpoint import build_model, save_checkpoint
from ws3d_ros.models.config import ModelConfig
from ws3d_ros.msg.pointcloud2 import array_to_cloud, cloud_to_array
from ws3d_ros.runtime.export import export_model
from ws3d_ros.runtime.outputs import panoptic_cloud
from ws3d_ros.runtime.pipeline import Pipeline
from ws3d_ros.sim.classes import STREET_CLASSES
from ws3d_ros.sim.rig import SimConfig, Simulator

STAGES = ("decode", "voxelise", "rulebook", "projection", "clip", "lift", "net", "group",
          "encode", "total")  # fmt: skip


def run(clip: str = "ViT-B-16", cameras: int = 1, runs: int = 5, beams: int = 64) -> list[dict]:
    import torch

    torch.set_num_threads(2)
    cfg = ModelConfig.from_yaml().with_overrides(clip={"model": clip, "pretrained": "random"})
    sim = Simulator(SimConfig(frames=runs + 1, lidar_beams=beams, cameras=cameras))
    frames = [sim.frame(i).to_frame() for i in range(runs + 1)]
    classes = [c.name for c in STREET_CLASSES]
    things = [c.name for c in STREET_CLASSES if c.thing]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "ckpt.pt", build_model(cfg), meta={"classes": classes})
        export_model(ckpt, Path(tmp) / "model", frame=frames[0], classes=classes)
        for backend in ("onnxruntime", "torch"):
            path = Path(tmp) / ("model" if backend == "onnxruntime" else "ckpt.pt")
            pipe = Pipeline.load(path, backend=backend, classes=classes, thing_classes=things)
            for mode in ("fusion", "lidar_only"):
                samples: dict[str, list[float]] = {s: [] for s in STAGES}
                for k, frame in enumerate(frames):
                    msg = array_to_cloud(frame.points, frame_id="lidar", stamp_ns=frame.stamp_ns)
                    t0 = time.perf_counter()
                    frame.points = cloud_to_array(msg)
                    decode = (time.perf_counter() - t0) * 1e3
                    result = pipe(frame, mode=mode)
                    t0 = time.perf_counter()
                    panoptic_cloud(frame.points, result, frame_id="lidar", stamp_ns=frame.stamp_ns)
                    encode = (time.perf_counter() - t0) * 1e3
                    if k == 0:
                        continue  # warm-up
                    times = {**result.timings, "decode": decode, "encode": encode}
                    times["total"] = result.timings["total"] + decode + encode
                    for s in STAGES:
                        samples[s].append(times.get(s, 0.0))
                rows.append(
                    {
                        "backend": backend,
                        "mode": mode,
                        "points": len(frames[0]),
                        **{s: statistics.median(v) for s, v in samples.items()},
                    }
                )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| stage (median ms) | " + " | ".join(f"{r['backend']} {r['mode']}" for r in rows) + " |",
        "|---|" + "---:|" * len(rows),
    ]
    for s in STAGES:
        lines.append(f"| {s} | " + " | ".join(f"{r[s]:.1f}" for r in rows) + " |")
    lines.append("| Hz | " + " | ".join(f"{1e3 / r['total']:.2f}" for r in rows) + " |")
    by = {(r["backend"], r["mode"]): r for r in rows}
    for mode in ("fusion", "lidar_only"):
        a, b = by.get(("torch", mode)), by.get(("onnxruntime", mode))
        if a and b:
            lines.append(
                f"\n{mode}: torch/ORT total {a['total'] / b['total']:.2f}x, "
                f"net {a['net'] / max(b['net'], 1e-9):.2f}x, clip "
                f"{a['clip'] / max(b['clip'], 1e-9):.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="ViT-B-16", help="open_clip architecture (random init)")
    parser.add_argument("--cameras", type=int, choices=(1, 6), default=1)
    parser.add_argument("--beams", type=int, choices=(32, 64, 128), default=64)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    rows = run(args.clip, args.cameras, args.runs, args.beams)
    print(f"Pipeline stages, {rows[0]['points']:,} points, {args.cameras} camera(s), "
          f"CLIP {args.clip}\n")  # fmt: skip
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
