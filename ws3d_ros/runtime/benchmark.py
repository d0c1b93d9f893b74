"""Per-stage latency of the runtime, backends and modes side by side (``ws3d bench``).

Contract: :func:`bench_pipeline` runs the same frames through every requested
``(backend, frame path, mode)``, after one warm-up frame each, and returns one row each with
the median milliseconds of every stage of :class:`~ws3d_ros.runtime.pipeline.Pipeline`
plus the ROS message ``decode`` (PointCloud2 -> array) and ``encode`` (result ->
``panoptic/points``) and ``total``. :func:`markdown` prints the table with end-to-end Hz
and the torch / ONNX Runtime ratios. :func:`random_model_dir` builds and exports a model
with random weights from a config, for latency studies where no trained model exists
(latency does not depend on weight values).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STAGES = ("decode", "voxelise", "rulebook", "projection", "clip", "lift", "net", "group",
          "encode", "total")  # fmt: skip


def random_model_dir(out: Path, clip: str, frame: Any) -> Path:
    """``out/model``: config/model.yaml with random CLIP ``clip`` and a random 3D net,
    exported with ``frame`` as its example input."""
    from ws3d_ros.labels import STREET_CLASSES
    from ws3d_ros.models.checkpoint import build_model, save_checkpoint
    from ws3d_ros.models.config import ModelConfig
    from ws3d_ros.runtime.export import export_model

    classes = [c.name for c in STREET_CLASSES]
    cfg = ModelConfig.from_yaml().with_overrides(clip={"model": clip, "pretrained": "random"})
    meta = {"classes": classes, "things": [c.name for c in STREET_CLASSES if c.thing]}
    ckpt = save_checkpoint(out / "checkpoint.pt", build_model(cfg), meta=meta)
    export_model(ckpt, out / "model", frame=frame, classes=classes)
    return out / "model"


def bench_pipeline(
    model_dir: Path,
    frames: Sequence[Any],
    *,
    backends: Sequence[str] = ("onnxruntime", "torch"),
    modes: Sequence[str] = ("fusion", "lidar_only"),
    classes: Sequence[str] | None = None,
    things: Sequence[str] = (),
    frame_paths: Sequence[str] = ("device",),
) -> list[dict[str, Any]]:
    from ws3d_ros.msg.pointcloud2 import array_to_cloud, cloud_to_array
    from ws3d_ros.runtime.backends import read_model_json
    from ws3d_ros.runtime.outputs import panoptic_cloud
    from ws3d_ros.runtime.pipeline import Pipeline

    rows = []
    for backend in backends:
        path = model_dir
        if backend == "torch":
            path = model_dir / read_model_json(model_dir)["checkpoint"]
        pipe = Pipeline.load(path, backend=backend)
        names = list(classes or pipe.backend.loaded.meta.get("classes") or ["road", "car"])
        pipe.set_vocabulary(names, [t for t in things if t in names])
        for frame_path, mode in ((p, m) for p in frame_paths for m in modes):
            pipe.frame_path = frame_path
            samples: dict[str, list[float]] = {s: [] for s in STAGES}
            for k, frame in enumerate(frames):
                msg = array_to_cloud(frame.points, frame_id="lidar", stamp_ns=frame.stamp_ns)
                t0 = time.perf_counter()
                points = cloud_to_array(msg)
                decode = (time.perf_counter() - t0) * 1e3
                result = pipe(frame, mode=mode)
                t0 = time.perf_counter()
                panoptic_cloud(points, result, frame_id="lidar", stamp_ns=frame.stamp_ns)
                encode = (time.perf_counter() - t0) * 1e3
                if k == 0 and len(frames) > 1:
                    continue  # warm-up
                times = {**result.timings, "decode": decode, "encode": encode}
                times["total"] = result.timings["total"] + decode + encode
                for s in STAGES:
                    samples[s].append(times.get(s, 0.0))
            rows.append(
                {
                    "backend": backend,
                    "frame_path": frame_path,
                    "mode": mode,
                    "points": len(frames[0].points),
                    **{s: statistics.median(v) for s, v in samples.items()},
                }
            )
    return rows


HOST_STAGES = ("voxelise", "rulebook", "lift", "group")


def markdown(rows: list[dict[str, Any]]) -> str:
    paths = {r.get("frame_path", "device") for r in rows}
    head = " | ".join(
        f"{r['backend']} {r['mode']}" + (f" ({r['frame_path']})" if len(paths) > 1 else "")
        for r in rows
    )
    lines = [f"| stage (median ms) | {head} |", "|---|" + "---:|" * len(rows)]
    for s in STAGES:
        lines.append(f"| {s} | " + " | ".join(f"{r[s]:.1f}" for r in rows) + " |")
    lines.append("| Hz | " + " | ".join(f"{1e3 / max(r['total'], 1e-9):.2f}" for r in rows) + " |")
    host = [sum(r[s] for s in HOST_STAGES) for r in rows]
    lines.append("| host stages | " + " | ".join(f"{h:.1f}" for h in host) + " |")
    if len(paths) > 1:
        by_path = {(r["backend"], r["mode"], r.get("frame_path")): r for r in rows}
        for r in rows:
            old = by_path.get((r["backend"], r["mode"], "numpy"))
            if r.get("frame_path") == "device" and old:
                h_old = sum(old[s] for s in HOST_STAGES)
                h_new = sum(r[s] for s in HOST_STAGES)
                lines.append(
                    f"\n{r['backend']} {r['mode']}: host stages (voxelise + rulebook + lift + "
                    f"group) numpy {h_old:.1f} ms -> device path {h_new:.1f} ms "
                    f"({h_old / max(h_new, 1e-9):.1f}x); end to end {old['total']:.1f} -> "
                    f"{r['total']:.1f} ms"
                )
        rows = [r for r in rows if r.get("frame_path", "device") == "device"]
    by = {(r["backend"], r["mode"]): r for r in rows}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        a, b = by.get(("torch", mode)), by.get(("onnxruntime", mode))
        if a and b:
            lines.append(
                f"\n{mode}: torch / ONNX Runtime: total {a['total'] / b['total']:.2f}x, "
                f"net {a['net'] / max(b['net'], 1e-9):.2f}x"
            )
    return "\n".join(lines)
