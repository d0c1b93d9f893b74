"""GPU validation: TensorRT engines built from the export, parity with torch, per-stage latency.

Run on a machine with an NVIDIA GPU, CUDA torch and ``tensorrt`` (see README, GPU set):

    python scripts/gpu_check.py [--model DIR] [--clip ViT-B-16] [--fp16] [--runs 10]

Without ``--model`` it builds a model from ``config/model.yaml`` with random weights
(latency does not depend on weight values) and exports it. Then, for 1 and 6 cameras on a
simulated 64-beam sweep (~124k points): builds/loads the TensorRT engines (cached), checks
TensorRT vs torch (label agreement, max |score| diff), and prints per-stage medians and
end-to-end Hz for the tensorrt, onnxruntime-CUDA (when available) and torch-CUDA backends.
Exits 1 when TensorRT disagrees with torch on more than 0.1 % of labels (FP32) / 1 % (FP16).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _frames(cameras: int, n: int) -> list:
    from ws3d_ros.sim.rig import SimConfig, Simulator

    sim = Simulator(SimConfig(frames=n, lidar_beams=64, cameras=cameras))
    return [sim.frame(i).to_frame() for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="exported model directory (ws3d export)")
    parser.add_argument("--clip", default="ViT-B-16", help="CLIP architecture (random weights)")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU visible to torch: nothing to check here", file=sys.stderr)
        return 2
    try:
        import tensorrt

        print(f"TensorRT {tensorrt.__version__} on {torch.cuda.get_device_name(0)}")
    except ImportError:
        print("tensorrt is not installed (pip install tensorrt)", file=sys.stderr)
        return 2

    from ws3d_ros.models.checkpoint import build_model, save_checkpoint
    from ws3d_ros.models.config import ModelConfig
    from ws3d_ros.runtime.export import export_model
    from ws3d_ros.runtime.pipeline import Pipeline
    from ws3d_ros.sim.classes import STREET_CLASSES

    classes = [c.name for c in STREET_CLASSES]
    things = [c.name for c in STREET_CLASSES if c.thing]
    tmp = Path(tempfile.mkdtemp(prefix="ws3d_gpu_"))
    model_dir = args.model
    if model_dir is None:
        cfg = ModelConfig.from_yaml().with_overrides(
            clip={"model": args.clip, "pretrained": "random"}
        )
        ckpt = save_checkpoint(tmp / "ckpt.pt", build_model(cfg), meta={"classes": classes})
        model_dir = tmp / "model"
        print("exporting ...", flush=True)
        export_model(ckpt, model_dir, frame=_frames(1, 1)[0], classes=classes)

    failed = False
    for cameras in (1, 6):
        frames = _frames(cameras, args.runs + 1)
        pipes = {
            "tensorrt": Pipeline.load(model_dir, backend="tensorrt", fp16=args.fp16),
            "torch-cuda": Pipeline.load(model_dir, backend="torch", device="cuda"),
        }
        try:
            pipes["onnxruntime-cuda"] = Pipeline.load(model_dir, device="cuda")
        except Exception as exc:  # no onnxruntime-gpu: report and go on
            print(f"onnxruntime CUDA skipped: {exc}")
        for p in pipes.values():
            p.set_vocabulary(classes, things)
        results = {}
        for name, pipe in pipes.items():
            samples: dict[str, list[float]] = {}
            outs = []
            for k, frame in enumerate(frames):
                r = pipe(frame)
                outs.append(r)
                if k:
                    for stage, ms in r.timings.items():
                        samples.setdefault(stage, []).append(ms)
            results[name] = (outs, {s: statistics.median(v) for s, v in samples.items()})
        ref = results["torch-cuda"][0]
        trt = results["tensorrt"][0]
        agree = statistics.mean(
            float((a.label == b.label).mean()) for a, b in zip(trt, ref, strict=True)
        )
        diff = max(float(abs(a.score - b.score).max()) for a, b in zip(trt, ref, strict=True))
        limit = 0.99 if args.fp16 else 0.999
        failed |= agree < limit
        print(f"\n{cameras} camera(s), {len(frames[0].points):,} points: TensorRT vs torch "
              f"label agreement {agree * 100:.3f} %, max |score diff| {diff:.2e}")  # fmt: skip
        stages = list(next(iter(results.values()))[1])
        print("| stage (ms) | " + " | ".join(results) + " |")
        print("|---|" + "---:|" * len(results))
        for stage in stages:
            print(
                f"| {stage} | " + " | ".join(f"{t[stage]:.1f}" for _, t in results.values()) + " |"
            )
        print("| Hz | " + " | ".join(f"{1e3 / t['total']:.1f}" for _, t in results.values()) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
