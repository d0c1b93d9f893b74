"""Checkpoints are untrusted input: weights-only loading, checked keys, safe temporaries."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.crafted import crafted_checkpoint
from ws3d_ros.models.checkpoint import (
    FORMAT,
    CheckpointError,
    load_model,
    plain,
    read_checkpoint,
    remove_orphaned_temps,
    save_checkpoint,
)


def test_crafted_payload_is_live_with_full_unpickling(tmp_path: Path) -> None:
    # The other tests' "no marker" means something only if the payload does run.
    marker = tmp_path / "marker"
    path = crafted_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("reader", [read_checkpoint, load_model])
def test_crafted_checkpoint_is_refused_without_running(tmp_path: Path, reader) -> None:
    marker = tmp_path / "marker"
    path = crafted_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError) as err:
        reader(path)
    assert not marker.exists()
    msg = str(err.value)
    assert "\n" not in msg and "refusing to load" in msg and str(path) in msg


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"format": FORMAT, "embed_dim": 8, "net": None, "clip_state": None, "meta": {}},
         "lacks the key 'config'"),
        ({"format": FORMAT, "config": {}, "embed_dim": "8", "net": None, "clip_state": None,
          "meta": {}}, "'embed_dim' is a str"),
        ({"format": FORMAT, "config": {}, "embed_dim": 8, "net": [], "clip_state": None,
          "meta": {}}, "'net' is a list"),
        ({"format": "other/1"}, "is not a ws3d_ros checkpoint"),
        ([1, 2, 3], "is not a ws3d_ros checkpoint"),
    ],
)  # fmt: skip
def test_incomplete_checkpoint_is_a_checkpoint_error(tmp_path: Path, payload, words) -> None:
    path = tmp_path / "c.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=words):
        read_checkpoint(path)


def test_bad_config_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    torch.save(
        {"format": FORMAT, "config": {"no_such_key": 1}, "embed_dim": 8, "net": None,
         "clip_state": None, "meta": {}},
        path,
    )  # fmt: skip
    with pytest.raises(CheckpointError, match="bad model config"):
        load_model(path)


def test_truncated_checkpoint_is_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes(tiny_checkpoint.read_bytes()[:4000])
    with pytest.raises(CheckpointError, match="cannot be read") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)


class Mode(enum.IntEnum):
    FULL = 2


def test_saved_checkpoint_loads_weights_only(tmp_path: Path, tiny_checkpoint: Path) -> None:
    loaded = load_model(tiny_checkpoint)
    meta = {
        "step": np.int64(3),
        "metrics": {"miou": np.float32(0.5), "acc": np.float64(0.25), "mode": Mode.FULL},
        "bags": [Path("/data/a")],
        "curve": np.arange(3),
        "rng": ("python", (1, 2), None),
    }
    path = save_checkpoint(tmp_path / "m.pt", loaded, meta=meta)
    raw = torch.load(path, weights_only=True)  # what every reader does
    assert raw["meta"]["step"] == 3 and type(raw["meta"]["step"]) is int
    assert raw["meta"]["metrics"] == {"miou": 0.5, "acc": 0.25, "mode": 2}
    assert type(raw["meta"]["metrics"]["acc"]) is float
    assert raw["meta"]["bags"] == ["/data/a"]
    assert torch.equal(raw["meta"]["curve"], torch.arange(3))
    assert raw["meta"]["rng"] == ("python", (1, 2), None)
    assert hasattr(raw["net"], "_metadata")  # state_dict version info kept
    again = load_model(path)
    for (k, a), b in zip(
        loaded.net.state_dict().items(), again.net.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob(".*tmp*"))


def test_plain_refuses_arbitrary_objects() -> None:
    with pytest.raises(TypeError, match=r"checkpoint\['meta'\]\['x'\]: object"):
        plain({"meta": {"x": object()}})


def test_orphaned_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f".last.pt.tmp{int(dead.stdout)}"
    live = tmp_path / f".model.pt.tmp{os.getpid()}"  # a writer still running
    other = tmp_path / "notes.tmp123"  # not ours: no leading dot
    for p in (orphan, live, other):
        p.write_bytes(b"x")
    assert remove_orphaned_temps(tmp_path) == [orphan]
    assert not orphan.exists() and live.exists() and other.exists()
