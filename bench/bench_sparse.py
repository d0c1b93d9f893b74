"""Benchmark of the sparse LiDAR encoder: rulebook, gather-form MinkUNet, spconv, ONNX Runtime.

Run: ``.venv/bin/python bench/bench_sparse.py``. A bench runner imports this file and
calls :func:`run`, which returns one dict per measured row.

The data: frame 0 of the simulated street rig (128 beams), 120k points drawn from it
(seeded), voxelised at 0.1 m (``ws3d_ros.geometry.voxel.voxelize``); 4 input channels.
The network is ``MinkUNet.from_config`` with the ``lidar_encoder`` defaults of
``config/model.yaml`` (4 stages), eval mode, random weights and BatchNorm statistics.

Rows (median wall time, ``time.perf_counter``, after one warm-up run):
- rulebook: the 3x3x3 table of each level and each stride-2 step, and the whole index;
- one level-0 submanifold conv per ``offsets_per_matmul`` (27/9/3/1), to back the
  default chosen in ``ws3d_ros/models/sparse/conv.py``;
- MinkUNet forward, gather form (torch, 2 threads and 1 thread);
- the spconv twin with the same weights (1 thread: spconv's CPU scatter races with more);
- ONNX Runtime on the dynamo-exported graph, ``intra_op_num_threads=2``.
Parity of spconv and ORT against the gather form is checked (max abs difference).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Runnable as a plain script from a checkout: the package need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from ws3d_ros.geometry.voxel import voxelize
from ws3d_ros.models.sparse.conv import SubMConv3d
from ws3d_ros.models.sparse.minkunet import DEFAULT_CONFIG, MinkUNet
from ws3d_ros.models.sparse.rulebook import build_sparse_index, downsample, subm_table
from ws3d_ros.sim.rig import SimConfig, Simulator

N_POINTS = 120_000
VOXEL = 0.1
IN_CHANNELS = 4


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def make_coords(n_points: int = N_POINTS, seed: int = 0) -> np.ndarray:
    frame = Simulator(SimConfig(lidar_beams=128, frames=1, seed=seed)).frame(0)
    xyz = frame.xyz
    pick = np.random.default_rng(seed).permutation(len(xyz))[: min(n_points, len(xyz))]
    return voxelize(xyz[np.sort(pick)], VOXEL).coords


def _row(name: str, ms: float, size: str, note: str = "") -> dict:
    return {"name": name, "median_ms": ms, "size": size, "note": note}


def _randomise_bn(net: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def run(n_points: int = N_POINTS, runs: int = 5, net_runs: int = 3) -> list[dict]:
    """Time every operation; one dict per row (times in ms)."""
    import onnxruntime as ort

    coords = make_coords(n_points)
    rows: list[dict] = []
    stages = len(DEFAULT_CONFIG["encoder_channels"])
    index = build_sparse_index(coords, stages)
    sizes = index.sizes()

    # Rulebook, per level.
    for level, c in enumerate(index.coords):
        rows.append(
            _row(
                f"rulebook subm table, level {level}",
                median_ms(lambda c=c: subm_table(c), runs),
                f"M={len(c)}",
            )
        )
    for level in range(stages):
        c = index.coords[level]
        rows.append(
            _row(
                f"rulebook down/up step {level}->{level + 1}",
                median_ms(lambda c=c: downsample(c), runs),
                f"M={len(c)}",
            )
        )
    rows.append(
        _row(
            "rulebook, whole index (4 stages)",
            median_ms(lambda: build_sparse_index(coords, stages), runs),
            f"M0={sizes[0]}",
        )
    )

    torch.set_num_threads(2)
    table0 = torch.from_numpy(index.subm[0])
    for cin, cout in ((32, 32), (96, 96)):
        x = torch.randn(sizes[0], cin)
        for group in (27, 9, 3, 1):
            conv = SubMConv3d(cin, cout, offsets_per_matmul=group)
            with torch.no_grad():
                ms = median_ms(lambda conv=conv, x=x: conv(x, table0), runs)
            rows.append(
                _row(
                    f"subm conv level 0 {cin}->{cout}, {group} taps/matmul",
                    ms,
                    f"M={sizes[0]}",
                    "2 threads",
                )
            )

    torch.manual_seed(0)
    net = MinkUNet.from_config(DEFAULT_CONFIG, IN_CHANNELS)
    _randomise_bn(net)
    net.eval()
    feats = torch.randn(sizes[0], IN_CHANNELS)
    tensors = index.to_torch()
    with torch.no_grad():
        ref = net(feats, *tensors)
        gather2 = median_ms(lambda: net(feats, *tensors), net_runs)
        torch.set_num_threads(1)
        gather1 = median_ms(lambda: net(feats, *tensors), net_runs)
        twin = net.build_spconv_twin().eval()
        out_sp = twin(feats, coords)
        spconv1 = median_ms(lambda: twin(feats, coords), net_runs)
        torch.set_num_threads(2)
    sp_err = float((out_sp - ref).abs().max())
    index_ms = median_ms(lambda: build_sparse_index(coords, stages), runs)
    rows.append(
        _row(
            "MinkUNet gather form (torch), 2 threads", gather2, f"M0={sizes[0]}", "tables prebuilt"
        )
    )
    rows.append(
        _row("MinkUNet gather form (torch), 1 thread", gather1, f"M0={sizes[0]}", "tables prebuilt")
    )
    rows.append(
        _row(
            "MinkUNet spconv twin, 1 thread",
            spconv1,
            f"M0={sizes[0]}",
            f"incl. its rulebook; max|diff|={sp_err:.1e}",
        )
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "minkunet.onnx"
        start = time.perf_counter()
        how = net.export_onnx(path, feats, index)
        export_s = time.perf_counter() - start
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = {"features": feats.numpy(), **index.feeds()}
        (out_ort,) = session.run(None, feeds)
        ort_ms = median_ms(lambda: session.run(None, feeds), net_runs)
    ort_err = float(np.abs(out_ort - ref.numpy()).max())
    rows.append(
        _row(
            "MinkUNet ONNX Runtime, 2 threads",
            ort_ms,
            f"M0={sizes[0]}",
            f"{how} export {export_s:.0f} s; max|diff|={ort_err:.1e}",
        )
    )
    rows.append(
        _row(
            "gather form 1 thread + rulebook",
            gather1 + index_ms,
            f"M0={sizes[0]}",
            "vs spconv incl. rulebook",
        )
    )
    for r in rows:
        r["levels"] = sizes
    return rows


def markdown(results: list[dict]) -> str:
    sizes = results[0]["levels"]
    by = {r["name"]: r["median_ms"] for r in results}
    sp = by["MinkUNet spconv twin, 1 thread"]
    lines = [
        f"Sparse encoder, {N_POINTS} simulated points at {VOXEL} m: voxels per level {sizes}",
        "",
        "| operation | size | median (ms) | vs spconv 1 thread | note |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in results:
        ratio = (
            f"{sp / r['median_ms']:.2f}x" if r["name"].startswith(("MinkUNet", "gather")) else ""
        )
        lines.append(
            f"| {r['name']} | {r['size']} | {r['median_ms']:.1f} | {ratio} | {r['note']} |"
        )
    return "\n".join(lines)


def main() -> int:
    print(markdown(run()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
