"""bench/gpu_probe.py runs end to end on CPU with tiny sizes (its GPU run is the same code)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _probe():
    spec = importlib.util.spec_from_file_location("gpu_probe", ROOT / "bench" / "gpu_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_writes_per_stage_tables(tmp_path: Path) -> None:
    probe = _probe()
    argv = ["--device", "cpu", "--tiny", "--out", str(tmp_path), "--cameras", "1"]
    argv += ["--iters", "2", "--warmup", "1", "--sweeps", "1", "--graphs", "off,all"]
    assert probe.main(argv) == 0
    data = json.loads((tmp_path / "probe.json").read_text())
    rows = data["rows"]
    assert [(r["mode"], r["precision"], r["graphs"]) for r in rows] == [
        (mode, precision, graphs)
        for precision in ("fp32", "bf16")
        for graphs in ("off", "all")
        for mode in ("fusion", "lidar_only")
    ]
    # No CUDA graph on CPU: the "all" rows ran eagerly and equal the "off" ones.
    assert all(r["captures"] == 0 and r["agree_eager"] == 1.0 for r in rows)
    rows = [r for r in rows if r["graphs"] == "off"]
    for r in rows:
        assert r["iters"] == 2 and r["p95"] >= r["p50"] > 0
        # End to end holds the pipeline's stages plus decode and encode.
        inner = sum(r[s] for s in probe.STAGES)
        assert r["total"] >= 0.9 * inner and r["decode"] > 0 and r["encode"] > 0
        assert (r["clip"] > 0) == (r["mode"] == "fusion")
    assert rows[0]["agree_fp32"] == 1.0 and rows[2]["agree_fp32"] > 0.9
    assert set(data["info"]["vocabulary_change_ms"]) == {"fp32", "bf16"}
    text = (tmp_path / "probe.md").read_text()
    assert "| p95 |" in text and "labels = fp32" in text
