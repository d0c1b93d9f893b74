"""``ws3d parts``: help with examples, one-line errors (no weights, bad names)."""

from __future__ import annotations

import pytest

from ws3d_ros.cli.main import main
from ws3d_ros.sim.classes import INDOOR_CLASSES, write_classes


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["parts", *argv])
    return rc, capsys.readouterr().err.strip()


def test_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["parts", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--object-classes car,chair" in out and "--sam-checkpoint" in out


def test_one_line_errors(tmp_path, capsys) -> None:
    bag = tmp_path / "bag"
    bag.mkdir()
    out = str(tmp_path / "out")
    rc, err = _run(
        capsys, "--bag", str(bag), "--object-classes", "chair", "--parts", "seat", "--out", out
    )
    assert rc == 1 and err.startswith("ws3d parts: error: no class list") and "\n" not in err
    write_classes(bag / "classes.yaml", INDOOR_CLASSES)
    rc, err = _run(
        capsys, "--bag", str(bag), "--object-classes", "boat", "--parts", "seat", "--out", out
    )
    assert rc == 1 and "['boat'] are not in" in err
    rc, err = _run(
        capsys, "--bag", str(bag), "--object-classes", "chair", "--parts", " , ", "--out", out
    )
    assert rc == 1 and err == "ws3d parts: error: --parts is empty; give comma-separated names"
    # No SAM weights: the error names the checkpoint and where to get one.
    rc, err = _run(
        capsys,
        "--bag",
        str(bag),
        "--object-classes",
        "chair",
        "--parts",
        "seat,back,leg",
        "--out",
        out,
        "--sam-checkpoint",
        str(tmp_path / "no.pth"),
    )
    assert rc == 1 and err.startswith("ws3d parts: error: SAM checkpoint not found")
    assert "segment-anything" in err and "\n" not in err
    assert not (tmp_path / "out").exists()
