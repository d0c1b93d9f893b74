"""``ws3d train`` then ``ws3d eval`` (model and labelled-bag inputs) on a tiny sim bag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.training.conftest import TINY
from ws3d_ros.cli.main import main as cli_main


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_eval")
    bag = root / "bag"
    assert (
        cli_main(["sim", "--out", str(bag), "--frames", "3", "--lidar-beams", "32", "--quiet"]) == 0
    )
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    run = root / "run"
    code = cli_main(
        ["train", "--config", str(cfg), "--bags", str(bag), "--out", str(run), "--steps", "3",
         "--clicks-per-object", "2", "--set", "optim.lr=0.002", "--val-fraction", "0.4",
         "--quiet"]
    )  # fmt: skip
    assert code == 0
    return {"root": root, "bag": bag, "run": run}


def test_train_writes_model(trained: dict[str, Path]) -> None:
    from ws3d_ros.models.checkpoint import load_model

    run = trained["run"]
    loaded = load_model(run / "model.pt")
    assert loaded.meta["train_config"]["labels"]["mode"] == "clicks"
    assert loaded.meta["train_config"]["labels"]["clicks_per_object"] == 2
    assert loaded.meta["train_config"]["optim"]["lr"] == 0.002
    assert (run / "curves.png").stat().st_size > 0
    # --val-fraction holds out the last sweep(s); validation mIoU is logged.
    history = json.loads((run / "history.json").read_text())
    assert any("val_miou" in h for h in history)


def test_eval_model_and_pred_bag_agree(
    trained: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bag, run, root = trained["bag"], trained["run"], trained["root"]
    out = root / "eval_model"
    assert cli_main(["eval", "--bag", str(bag), "--model", str(run / "model.pt"),
                     "--out", str(out), "--quiet"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    for name in ("metrics.json", "metrics.md", "confusion.png", "baseline.json"):
        assert (out / name).is_file(), name
    assert summary["frames"] == 3
    assert summary["in_fov"]["miou"] is not None and summary["out_fov"]["miou"] is not None
    assert summary["baseline"]["majority_class"] == "road"
    assert 0 < summary["baseline"]["miou"] < 0.2
    assert "Majority-class baseline" in (out / "metrics.md").read_text()

    labelled = root / "labelled"
    assert cli_main(["infer", "--bag", str(bag), "--model", str(run / "model.pt"),
                     "--backend", "torch", "--out", str(labelled), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    out2 = root / "eval_pred"
    assert cli_main(["eval", "--bag", str(bag), "--pred", str(labelled),
                     "--out", str(out2), "--quiet"]) == 0  # fmt: skip
    summary2 = json.loads(capsys.readouterr().out)
    # Same predictions through the bag: same scores (in-FOV mask recomputed by projection).
    for split in ("all", "in_fov", "out_fov"):
        assert np.isclose(summary2[split]["miou"], summary[split]["miou"]), split


def test_eval_errors(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["eval", "--bag", str(trained["bag"]), "--pred", str(trained["bag"]),
                     "--out", str(trained["root"] / "bad")])  # fmt: skip
    assert code == 1 and "panoptic/points" in capsys.readouterr().err


def test_train_refuses_an_existing_run_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag = tmp_path / "bag"
    bag.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes(b"an earlier run's weights")
    base = ["train", "--config", "demo_quick", "--bags", str(bag), "--out", str(run), "--quiet"]
    assert cli_main(base) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ws3d train: error: ") and "--resume" in err and "\n" not in err
    assert cli_main([*base, "--force"]) == 1  # not made by `ws3d train`: never deleted
    assert "not an output of `ws3d train`" in capsys.readouterr().err
    assert (run / "model.pt").read_bytes() == b"an earlier run's weights"
    assert cli_main([*base[:-3], "--out", str(bag / "run"), "--quiet"]) == 1
    assert "inside the input" in capsys.readouterr().err


def test_eval_report_never_goes_into_an_input(
    trained: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bag, run = trained["bag"], trained["run"]
    before = sorted(p.name for p in bag.iterdir())
    for out, words in [(bag, "is the input"), (bag / "eval", "inside the input")]:
        assert cli_main(["eval", "--bag", str(bag), "--model", str(run / "model.pt"),
                         "--out", str(out), "--quiet"]) == 1  # fmt: skip
        assert words in capsys.readouterr().err
    assert sorted(p.name for p in bag.iterdir()) == before
