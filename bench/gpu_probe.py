"""GPU latency probe of the device-resident runtime: per-stage medians, p50/p95 end to end.

Run: ``python bench/gpu_probe.py --device cuda --out DIR`` (``--tiny --device cpu`` for the
CPU smoke test). Not a test. It needs torch and numpy plus the project's own light
dependencies (open_clip_torch, ftfy, wcwidth, rosbags and its pure deps), so it runs on a
bare GPU machine with carried wheels; it never loads ONNX, TensorRT or spconv.

What it measures, for 1 and 6 cameras x fusion / LiDAR-only x each precision:
- one end-to-end frame = decode (PointCloud2 and Image messages -> numpy, zero-copy) +
  ``Pipeline.__call__`` on the device + encode (the ``panoptic/points`` cloud), timed with
  ``time.perf_counter`` after the result is on the host (the pipeline's own copy back
  synchronises); per-stage medians come from the pipeline's timings, which synchronise
  CUDA at each stage boundary;
- p50 / p95 of end to end, peak GPU memory (``torch.cuda.max_memory_allocated``);
- label agreement of each precision with fp32 on the same frames (points in range);
- the vocabulary change time (``set_vocabulary`` with one new name: one text-tower call);
- with ``--graphs off,tower,all``: each configuration eager, with a CUDA graph of the
  image tower (the torch backend's ``cuda_graphs``, its default), and with the 3D net
  graphed too (``cuda_graph_net``); the label agreement with the first setting and how
  many graphs were captured.

The model is ``config/model.yaml`` (ViT-B/16 at 384x1248, the default U-Net) with random
weights (latency does not depend on their values); sweeps are simulated (64 beams, street
scene). Writes ``probe.json`` and ``probe.md`` into ``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STAGES = ("decode", "voxelise", "rulebook", "projection", "clip", "lift", "net", "group",
          "encode")  # fmt: skip

#: Small sizes for the CPU smoke test (tests/bench): a tiny CLIP tower and U-Net.
TINY = {
    "voxel_size": 0.2,
    "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [192, 624]},
    "lidar_encoder": {
        "stem_channels": 16,
        "encoder_channels": [16, 32, 64],
        "decoder_channels": [32, 32, 32],
    },
    "fusion": {"channels": 32},
}


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def build_checkpoint(out: Path, tiny: bool) -> tuple[Path, list[str], list[str]]:
    import torch

    from ws3d_ros.models.checkpoint import build_model, save_checkpoint
    from ws3d_ros.models.config import ModelConfig
    from ws3d_ros.sim.classes import STREET_CLASSES

    torch.manual_seed(0)
    cfg = ModelConfig.from_yaml()
    cfg = cfg.with_overrides(**TINY) if tiny else cfg.with_overrides(clip={"pretrained": "random"})
    classes = [c.name for c in STREET_CLASSES]
    things = [c.name for c in STREET_CLASSES if c.thing]
    meta = {"classes": classes, "things": things}
    return save_checkpoint(out / "checkpoint.pt", build_model(cfg), meta=meta), classes, things


def simulate(cameras: int, beams: int, count: int) -> list[Any]:
    from ws3d_ros.sim.rig import SimConfig, Simulator

    sim = Simulator(SimConfig(frames=count, lidar_beams=beams, cameras=cameras, seed=1))
    return [sim.frame(i).to_frame() for i in range(count)]


def as_messages(frame: Any) -> tuple[Any, list[Any]]:
    """The frame as the node receives it: a PointCloud2 and one Image per camera."""
    from ws3d_ros.msg.image import array_to_image
    from ws3d_ros.msg.pointcloud2 import array_to_cloud

    cloud = array_to_cloud(frame.points, frame_id="lidar", stamp_ns=frame.stamp_ns)
    images = [
        array_to_image(v.image, "rgb8", frame_id=v.name, stamp_ns=frame.stamp_ns)
        for v in frame.views
    ]
    return cloud, images


def run_config(
    pipe: Any, frames: list[Any], mode: str, iters: int, warmup: int
) -> tuple[dict[str, Any], list[Any]]:
    """Median stages, p50/p95 end to end and the results of the first pass over ``frames``."""
    import torch

    from ws3d_ros.msg.image import image_to_rgb8
    from ws3d_ros.msg.pointcloud2 import cloud_to_array
    from ws3d_ros.runtime.outputs import panoptic_cloud

    msgs = [as_messages(f) for f in frames]
    cuda = pipe.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    samples: dict[str, list[float]] = {s: [] for s in (*STAGES, "pipeline", "total")}
    results: list[Any] = []
    for k in range(warmup + iters):
        frame = frames[k % len(frames)]
        cloud, images = msgs[k % len(frames)]
        t0 = time.perf_counter()
        points = cloud_to_array(cloud)
        views = [
            dataclasses.replace(v, image=image_to_rgb8(m))
            for v, m in zip(frame.views, images, strict=True)
        ]
        t1 = time.perf_counter()
        result = pipe(dataclasses.replace(frame, points=points, views=views), mode=mode)
        t2 = time.perf_counter()
        panoptic_cloud(points, result, frame_id="lidar", stamp_ns=frame.stamp_ns)
        t3 = time.perf_counter()
        if k < len(frames):
            results.append(result)
        if k < warmup:
            continue
        times = {**result.timings, "decode": (t1 - t0) * 1e3, "encode": (t3 - t2) * 1e3}
        times["pipeline"] = (t2 - t1) * 1e3
        times["total"] = (t3 - t0) * 1e3
        for s in samples:
            samples[s].append(times.get(s, 0.0))
    row: dict[str, Any] = {s: statistics.median(v) for s, v in samples.items()}
    row["p50"] = row["total"]  # the median end to end
    row["p95"] = _percentile(samples["total"], 95)
    row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
    row["iters"] = iters
    return row, results


def agreement(a: list[Any], b: list[Any]) -> float:
    import numpy as np

    same = total = 0
    for x, y in zip(a, b, strict=True):
        valid = x.label != 65535
        same += int(np.sum(x.label[valid] == y.label[valid]))
        total += int(valid.sum())
    return same / max(total, 1)


def vocabulary_change_ms(pipe: Any, classes: list[str], things: list[str]) -> float:
    """Median time of swapping in a vocabulary with one never-seen name."""
    times = []
    for k in range(3):
        t0 = time.perf_counter()
        pipe.set_vocabulary([*classes, f"stroller {k}"], things)
        times.append((time.perf_counter() - t0) * 1e3)
    pipe.set_vocabulary(classes, things)
    return statistics.median(times)


def profile_frame(pipe: Any, frame: Any, mode: str) -> str:
    """The ops of one frame by total CPU time (where launch overhead shows) and GPU time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if pipe.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    pipe(frame, mode=mode)
    with profile(activities=activities) as prof:
        pipe(frame, mode=mode)
        if pipe.device.type == "cuda":
            torch.cuda.synchronize()
    table = prof.key_averages().table(
        sort_by="cpu_time_total", row_limit=25, max_name_column_width=40
    )
    n_ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    return f"aten op calls in one frame: {n_ops}\n{table}"


def _captures(pipe: Any) -> int:
    """CUDA graphs the pipeline's torch backend has captured so far."""
    return sum(
        g.cache.captures
        for g in (
            getattr(pipe.backend, "_graphed_net", None),
            getattr(pipe.backend, "_graphed_tower", None),
        )
        if g is not None
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    head = " | ".join(
        f"{r['cameras']} cam {r['mode']} {r['precision']} graphs {r['graphs']}" for r in rows
    )
    lines = [f"| median ms | {head} |", "|---|" + "---:|" * len(rows)]
    for s in (*STAGES, "total", "p50", "p95"):
        lines.append(f"| {s} | " + " | ".join(f"{r[s]:.1f}" for r in rows) + " |")
    lines.append("| peak GPU MiB | " + " | ".join(f"{r['peak_gpu_mib']:.0f}" for r in rows) + " |")
    lines.append(
        "| labels = fp32 | " + " | ".join(f"{100 * r['agree_fp32']:.2f} %" for r in rows) + " |"
    )
    lines.append(
        "| labels = eager | " + " | ".join(f"{100 * r['agree_eager']:.2f} %" for r in rows) + " |"
    )
    lines.append("| graphs captured | " + " | ".join(str(r["captures"]) for r in rows) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="tiny model and 32 beams (CPU test)")
    parser.add_argument("--cameras", default="1,6")
    parser.add_argument("--modes", default="fusion,lidar_only")
    parser.add_argument(
        "--configs",
        default="",
        help="cameras:mode pairs, e.g. 1:fusion,1:lidar_only,6:fusion (instead of "
        "--cameras x --modes)",
    )
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--iters", type=int, default=20, help="timed frames per configuration")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--sweeps", type=int, default=2, help="distinct simulated sweeps")
    parser.add_argument(
        "--graphs",
        default="tower",
        help="off,tower,all: eager / CUDA graph of the image tower / tower and 3D net",
    )
    parser.add_argument(
        "--profile", action="store_true", help="torch.profiler op table of one frame per mode"
    )
    args = parser.parse_args(argv)

    import torch

    from ws3d_ros.runtime.pipeline import Pipeline

    args.out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    rows: list[dict[str, Any]] = []
    vocab: dict[str, float] = {}
    beams = 32 if args.tiny else 64
    with tempfile.TemporaryDirectory(prefix="ws3d_probe_") as tmp:
        ckpt, classes, things = build_checkpoint(Path(tmp), args.tiny)
        if args.configs:
            pairs = [(int(c), m) for c, m in (p.split(":") for p in args.configs.split(","))]
        else:
            pairs = [(int(c), m) for c in args.cameras.split(",") for m in args.modes.split(",")]
        frames = {c: simulate(c, beams, args.sweeps) for c in dict.fromkeys(c for c, _ in pairs)}
        info["points"] = len(next(iter(frames.values()))[0].points)
        reference: dict[tuple[int, str], list[Any]] = {}
        eager: dict[tuple[int, str, str], list[Any]] = {}
        for precision in args.precisions.split(","):
            pipe = Pipeline.load(
                ckpt,
                backend="torch",
                device=args.device,
                precision=precision,
                classes=classes,
                thing_classes=things,
            )
            vocab[precision] = vocabulary_change_ms(pipe, classes, things)
            for graphs in args.graphs.split(","):
                if graphs not in ("off", "tower", "all"):
                    raise SystemExit(f"--graphs takes off, tower, all; found {graphs!r}")
                pipe.backend.cuda_graphs = graphs != "off"
                pipe.backend.cuda_graph_net = graphs == "all"
                # Every sweep's first pass may capture a graph: warm up past all of them.
                warmup = max(args.warmup, args.sweeps + 1) if graphs != "off" else args.warmup
                for cams, mode in pairs:
                    before = _captures(pipe)
                    row, results = run_config(pipe, frames[cams], mode, args.iters, warmup)
                    key = (cams, mode)
                    reference.setdefault(key, results)  # the first run is the reference
                    eager.setdefault((cams, mode, precision), results)
                    row.update(cameras=cams, mode=mode, precision=precision, graphs=graphs)
                    row["agree_fp32"] = agreement(reference[key], results)
                    row["agree_eager"] = agreement(eager[(cams, mode, precision)], results)
                    row["captures"] = _captures(pipe) - before
                    rows.append(row)
                    print(
                        f"{cams} cam {mode} {precision} graphs {graphs}: "
                        f"p50 {row['p50']:.1f} ms p95 {row['p95']:.1f} ms, labels = first "
                        f"run {100 * row['agree_fp32']:.2f} %, = first graphs setting "
                        f"{100 * row['agree_eager']:.2f} %, captures {row['captures']}",
                        flush=True,
                    )
            if args.profile:  # with the last graphs setting
                for cams, mode in pairs:
                    if cams == min(frames):
                        (args.out / f"profile_{mode}_{precision}.txt").write_text(
                            profile_frame(pipe, frames[cams][0], mode)
                        )
            del pipe
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    info["vocabulary_change_ms"] = vocab
    table = markdown(rows)
    (args.out / "probe.json").write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    vocab_line = ", ".join(f"{p} {v:.1f} ms" for p, v in vocab.items())
    text = f"{json.dumps(info)}\n\n{table}\n\nvocabulary change (one new name): {vocab_line}\n"
    (args.out / "probe.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
