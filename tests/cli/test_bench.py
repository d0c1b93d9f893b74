"""``ws3d bench`` measures every stage for each backend and mode."""

from __future__ import annotations

import json

from ws3d_ros.cli.main import main
from ws3d_ros.runtime.benchmark import STAGES


def test_bench_rows_for_backends_and_modes(tiny_model_dir, capsys) -> None:
    code = main(
        ["bench", "--model", str(tiny_model_dir), "--frames", "2", "--beams", "32", "--json"]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["backend"], r["mode"]) for r in rows} == {
        (b, m) for b in ("onnxruntime", "torch") for m in ("fusion", "lidar_only")
    }
    for r in rows:
        assert all(r[s] >= 0 for s in STAGES)
        assert r["total"] >= r["net"] > 0
        assert r["points"] > 50_000
    lidar = next(r for r in rows if r["mode"] == "lidar_only")
    assert lidar["clip"] == 0.0  # no image tower in LiDAR-only mode
