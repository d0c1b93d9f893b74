"""Benchmark of the CLIP branch: dense image features (torch eager vs onnxruntime) and text.

Run: ``HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_clip.py [--runs N] [--quick]``.
A bench runner may import this file and call :func:`run` (one dict per row)
and :func:`markdown`. Not a test.

Models are random-init (no weights can be downloaded here; speed does not
depend on the weights): ``ViT-B-16`` (the default of ``config/model.yaml``) and
the project's ``ws3d-tiny``. Input: one normalised 384x1248 image (the
configured ``clip.image_size``), batch 1.

Rows (median wall time, ``time.perf_counter``, after one warm-up run):
- dense features, torch eager, blocks through ``scaled_dot_product_attention``
  (the default ``attn_impl="sdpa"``);
- dense features, torch eager, blocks through their nn.MultiheadAttention
  (``attn_impl="module"``, the inference fast path), to justify the default;
- dense features, onnxruntime CPU (``intra_op_num_threads`` = torch threads)
  on the file written by ``export_dense_onnx`` (export time reported apart);
- text: 20 class names x 4 templates, cold (tower runs) and warm (cache hits).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

# Runnable as a plain script from a checkout: the package need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.models.clip import (
    ClipDenseEncoder,
    TextEncoder,
    export_dense_onnx,
    load_clip,
)

HW = (384, 1248)
TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a rendering of a {}.",
    "{} in a street scene.",
)
CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle", "stroller",
]  # fmt: skip


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up (allocator, oneDNN primitive caches, ORT arena)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _ort_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort  # lazily: only the bench needs it at import time

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench_model(name: str, runs: int, tmp: Path) -> list[dict]:
    """Dense-feature rows for open_clip architecture ``name`` (random init)."""
    model = load_clip(name, "random").model
    threads = torch.get_num_threads()
    x = torch.randn(1, 3, *HW, generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode():
        for impl in ("sdpa", "module"):
            enc = ClipDenseEncoder.from_clip(model, attn_impl=impl)
            ms = median_ms(lambda enc=enc: enc(x), runs)
            rows.append({"model": name, "backend": f"torch eager ({impl})", "median_ms": ms})
        enc = ClipDenseEncoder.from_clip(model)
        ref = enc(x).numpy()
    t = time.perf_counter()
    path = export_dense_onnx(enc, tmp / f"{name}.onnx", example_hw=HW)
    export_s = time.perf_counter() - t
    sess = _ort_session(path, threads)
    feed = {"image": x.numpy()}
    diff = float(np.abs(sess.run(None, feed)[0] - ref).max())
    ms = median_ms(lambda: sess.run(None, feed), runs)
    rows.append(
        {
            "model": name,
            "backend": f"onnxruntime ({threads} threads)",
            "median_ms": ms,
            "export_s": export_s,
            "max_abs_diff": diff,
            "onnx_mb": path.stat().st_size / 2**20,
        }
    )
    for r in rows:
        r.update(runs=runs, threads=threads, shape=f"1x3x{HW[0]}x{HW[1]}")
    return rows


def bench_text(name: str, runs: int) -> list[dict]:
    """Text rows: a 20-class vocabulary encoded cold (fresh cache) and warm (cached)."""
    model, tokenizer, _ = load_clip(name, "random")

    def cold() -> None:
        TextEncoder(model, tokenizer).encode(CLASSES, TEMPLATES)

    warm_enc = TextEncoder(model, tokenizer)
    warm_enc.encode(CLASSES, TEMPLATES)
    return [
        {"model": name, "backend": "text, 20 classes x 4 templates, cold",
         "median_ms": median_ms(cold, max(1, runs // 2)), "runs": max(1, runs // 2)},
        {"model": name, "backend": "text, same vocabulary, cached",
         "median_ms": median_ms(lambda: warm_enc.encode(CLASSES, TEMPLATES), runs), "runs": runs},
    ]  # fmt: skip


def run(runs: int = 5, tiny_runs: int = 20, quick: bool = False) -> list[dict]:
    """All rows; ``quick`` skips ViT-B-16."""
    logging.getLogger().setLevel(logging.ERROR)  # open_clip warns about random init
    with tempfile.TemporaryDirectory(prefix="ws3d_bench_clip_") as tmp:
        rows = bench_model("ws3d-tiny", tiny_runs, Path(tmp))
        rows += bench_text("ws3d-tiny", tiny_runs)
        if not quick:
            rows += bench_model("ViT-B-16", runs, Path(tmp))
            rows += bench_text("ViT-B-16", runs)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        f"CLIP branch, random init, dense input 1x3x{HW[0]}x{HW[1]}, "
        f"{torch.get_num_threads()} CPU threads (median ms)",
        "",
        "| model | path | median (ms) | runs | notes |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        notes = ""
        if "export_s" in r:
            notes = (
                f"export {r['export_s']:.1f} s, {r['onnx_mb']:.0f} MiB, "
                f"max abs diff ORT vs torch {r['max_abs_diff']:.1e}"
            )
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['median_ms']:.2f} | {r['runs']} | {notes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per ViT-B-16 row")
    parser.add_argument("--quick", action="store_true", help="tiny model only")
    args = parser.parse_args(argv)
    print(markdown(run(args.runs, quick=args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
