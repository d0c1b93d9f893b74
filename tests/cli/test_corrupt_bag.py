"""Corrupt bags through ``ws3d info``, ``infer`` and ``train``: a corrupt chunk is reported
and skipped; a bag that cannot be read is one error line (no traceback, no partial output)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.crafted import corrupt_mcap_chunk
from ws3d_ros.cli.main import main
from ws3d_ros.sim.bagwrite import write_bag
from ws3d_ros.sim.rig import SimConfig


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("corrupt")
    good = root / "good"
    write_bag(SimConfig(frames=4, lidar_beams=32, seed=5), good, progress=False)
    chunk = Path(shutil.copytree(good, root / "chunk"))
    offset = corrupt_mcap_chunk(chunk, 2)
    broken = Path(shutil.copytree(good, root / "broken"))
    (mcap,) = broken.glob("*.mcap")
    mcap.write_bytes(mcap.read_bytes()[:-5000])  # no footer, no summary: nothing to go on
    return {"chunk": chunk, "broken": broken, "offset": offset}


def _one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ws3d {command}: error: "), err
    return lines[0]


def test_info_reports_the_skipped_chunk(bags: dict[str, object], capsys) -> None:
    assert main(["info", str(bags["chunk"])]) == 0
    out = capsys.readouterr().out
    assert f"skipped a corrupt record: {bags['chunk']}" in out
    assert f"byte {bags['offset']} (chunk" in out and "OverflowError" in out
    assert "synchronised frames:" in out


def test_infer_skips_the_chunk_and_says_so(
    tmp_path: Path, bags: dict[str, object], tiny_model_dir: Path, capsys
) -> None:
    out = tmp_path / "labelled"
    code = main(["infer", "--bag", str(bags["chunk"]), "--model", str(tiny_model_dir),
                 "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert 1 <= summary["frames"] <= 4
    (record,) = summary["frame_stats"]["skipped_records"]
    assert f"byte {bags['offset']} (chunk" in record


@pytest.mark.parametrize("command", ["info", "infer", "train"])
def test_unreadable_bag_is_one_line(
    tmp_path: Path, bags: dict[str, object], tiny_model_dir: Path, command: str, capsys
) -> None:
    bag = str(bags["broken"])
    out = tmp_path / "out"
    argv = {
        "info": ["info", bag],
        "infer": ["infer", "--bag", bag, "--model", str(tiny_model_dir), "--out", str(out)],
        "train": ["train", "--config", "demo_quick", "--bags", bag, "--out", str(out),
                  "--device", "cpu", "--quiet"],
    }[command]  # fmt: skip
    assert main(argv) == 1
    line = _one_error_line(capsys.readouterr().err, command)
    assert "cannot open bag" in line and bag in line
    if command == "infer":
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
