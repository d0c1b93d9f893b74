"""A checkpoint whose pickle runs code is refused by every ``ws3d`` command that reads one:
exit 1, one ``ws3d <command>: error:`` line, and the payload never runs (no marker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crafted import crafted_checkpoint, model_dir_with
from ws3d_ros.cli.main import main
from ws3d_ros.sim.bagwrite import write_bag
from ws3d_ros.sim.rig import SimConfig


def _assert_refused(code: int, err: str, command: str, marker: Path) -> None:
    assert not marker.exists(), "the crafted pickle ran"
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ws3d {command}: error: ")
    assert "refusing to load" in lines[0]


def test_export_refuses_crafted_checkpoint(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "marker"
    ckpt = crafted_checkpoint(tmp_path / "evil.pt", marker)
    code = main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "model")])
    _assert_refused(code, capsys.readouterr().err, "export", marker)


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory) -> Path:
    bag = tmp_path_factory.mktemp("bag") / "in"
    write_bag(SimConfig(frames=1, lidar_beams=32, seed=5), bag, progress=False)
    return bag


# torch reads a checkpoint file or a model directory; onnxruntime a model directory only.
@pytest.mark.parametrize(
    "backend, as_dir", [("torch", False), ("torch", True), ("onnxruntime", True)]
)
def test_infer_refuses_crafted_checkpoint(
    tmp_path: Path, small_bag: Path, backend: str, as_dir: bool, capsys
) -> None:
    marker = tmp_path / "marker"
    ckpt = crafted_checkpoint(tmp_path / "evil.pt", marker)
    model = model_dir_with(tmp_path / "model", checkpoint=ckpt.read_bytes()) if as_dir else ckpt
    code = main(
        ["infer", "--bag", str(small_bag), "--model", str(model), "--backend", backend,
         "--out", str(tmp_path / "out"), "--quiet"]
    )  # fmt: skip
    _assert_refused(code, capsys.readouterr().err, "infer", marker)
    assert not (tmp_path / "out").exists()


def test_train_resume_refuses_crafted_checkpoint(tmp_path: Path, small_bag: Path, capsys) -> None:
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    crafted_checkpoint(run / "last.pt", marker)
    code = main(
        ["train", "--config", "demo_quick", "--bags", str(small_bag), "--out", str(run),
         "--resume", "--quiet", "--device", "cpu"]
    )  # fmt: skip
    _assert_refused(code, capsys.readouterr().err, "train", marker)
