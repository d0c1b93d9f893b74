"""``ws3d demo`` end to end on a miniature setting: real training, export, node over DDS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ROS_DOMAIN_ID": str(100 + os.getpid() % 100),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    }
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "ws3d_ros.cli.main", "demo", "--out", str(out), "--steps", "20",
         "--train-frames", "4", "--test-frames", "3", "--beams", "32"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ws3d demo summary" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3  # every sweep of the test bag was labelled over DDS
    assert 0.0 <= summary["miou"]["all"] <= 1.0
    assert summary["miou"]["in_fov"] is not None and summary["miou"]["out_fov"] is not None
    vc = summary["vocabulary_change"]
    assert vc["ids_unchanged"] and vc["traffic_cone_points_after"] == 0
    assert vc["stroller_id"] == 13
    assert summary["parity"]["label_agreement_pct"] >= 99.9
    for name in ("overlay.png", "bev.png", "metrics/metrics.md", "metrics/confusion.png"):
        assert (out / name).stat().st_size > 1000, name
