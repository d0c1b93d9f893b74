"""``ws3d clicks --from-labels`` (one click per object from dense ground truth) and the
``--labeler`` entry's error path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.cli.main import main as cli_main
from ws3d_ros.data.clicks import by_sweep, read_clicks, validate


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clicks") / "street"
    args = ["sim", "--out", str(out), "--frames", "2", "--lidar-beams", "32", "--quiet"]
    assert cli_main(args) == 0
    return out


def test_from_labels_one_click_per_object(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ws3d_ros.cli.clicks import class_names_of
    from ws3d_ros.data.frames import BagFrames

    out = tmp_path / "c.jsonl"
    args = ["clicks", "--bag", str(bag), "--from-labels", "--per-object", "1", "--out", str(out)]
    assert cli_main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    clicks = read_clicks(out)
    assert summary["clicks"] == len(clicks) and summary["sweeps"] == 2
    names = class_names_of(bag)
    groups = by_sweep(clicks)
    with BagFrames(bag, decode_images=False) as frames:
        sweeps = list(frames)
    validate(clicks, classes=names, sweeps={(bag.name, f.stamp_ns): f.xyz for f in sweeps})
    for f in sweeps:
        mine = groups[(bag.name, f.stamp_ns)]
        idx = np.array([c.index for c in mine])
        # The clicked class is the ground truth there; every thing instance has exactly
        # one click, every stuff class at least one (one per connected region).
        assert [names[f.labels[i]] for i in idx] == [c.cls for c in mine]
        known = f.labels != 65535
        objects = {
            (int(a), int(b)) for a, b in zip(f.labels[known], f.instances[known], strict=True)
        }
        clicked = [(int(f.labels[i]), int(f.instances[i])) for i in idx]
        assert set(clicked) == objects
        things = [o for o in clicked if o[1] > 0]
        assert len(things) == len(set(things))
        assert len(clicked) > len(objects)  # some stuff class has several regions
    # Same seed -> same file; another seed -> other points.
    again = tmp_path / "again.jsonl"
    assert cli_main([*args[:-1], str(again)]) == 0
    assert read_clicks(again) == clicks
    other = tmp_path / "other.jsonl"
    assert cli_main([*args[:-1], str(other), "--seed", "5"]) == 0
    assert {c.key for c in read_clicks(other)} != {c.key for c in clicks}


def test_errors(bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "c.jsonl")
    assert cli_main(["clicks", "--bag", str(tmp_path / "nope"), "--from-labels", "--out", out]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["clicks", "--bag", str(bag), "--from-labels", "--per-object", "0",
                     "--out", out]) == 1  # fmt: skip
    assert "--per-object" in capsys.readouterr().err
    pytest.importorskip("rclpy")
    # The labeler refuses a first class outside its class list (exit 1, reason on stderr).
    code = cli_main(["clicks", "--bag", str(bag), "--labeler", "--out", out, "--class", "dragon",
                     "--classes", "car", "road"])  # fmt: skip
    assert code == 1
    assert "not one of" in capsys.readouterr().err
