"""Model directories are untrusted: SHA-256 of every named file, one-line load errors, and no
code from a crafted checkpoint through ``Pipeline.load``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.crafted import crafted_checkpoint, model_dir_with
from ws3d_ros.models.checkpoint import CheckpointError
from ws3d_ros.runtime.backends import MODEL_JSON, BackendError
from ws3d_ros.runtime.pipeline import Pipeline


@pytest.fixture
def model_copy(tmp_path: Path, tiny_model_dir: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _edit_json(model: Path, **changes: object) -> None:
    meta = json.loads((model / MODEL_JSON).read_text())
    meta.update(changes)
    (model / MODEL_JSON).write_text(json.dumps(meta))


def _one_line_error(backend: str, model: Path) -> str:
    with pytest.raises(BackendError) as err:
        Pipeline.load(model, backend=backend)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_exported_directory_loads(model_copy: Path, backend: str) -> None:
    assert Pipeline.load(model_copy, backend=backend).backend.name == backend


@pytest.mark.parametrize("name", ["net.onnx", "clip_image.onnx", "checkpoint.pt"])
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_edited_file_is_refused_naming_it(model_copy: Path, name: str, backend: str) -> None:
    with open(model_copy / name, "ab") as f:
        f.write(b"\0")
    msg = _one_line_error(backend, model_copy)
    assert str(model_copy / name) in msg and "SHA-256" in msg


def test_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy / "clip_image.onnx").unlink()
    assert "clip_image.onnx is missing" in _one_line_error("onnxruntime", model_copy)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"net_onnx": "../net.onnx"}, "not a plain file name"),
        ({"checkpoint": "/etc/passwd"}, "not a plain file name"),
        ({"sha256": None}, "no sha256 table"),
        ({"net_onnx": "other.onnx"}, "no SHA-256"),
    ],
)
def test_model_json_names_are_checked(model_copy: Path, changes: dict, words: str) -> None:
    _edit_json(model_copy, **changes)
    assert words in _one_line_error("onnxruntime", model_copy)


def test_unreadable_model_json_is_one_line(model_copy: Path) -> None:
    (model_copy / MODEL_JSON).write_text("{not json")
    assert "cannot be read" in _one_line_error("torch", model_copy)


def test_truncated_onnx_with_matching_hash_is_a_backend_error(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    # An attacker (or a broken copy) can rewrite model.json too: ONNX Runtime's own failure
    # must still come out as one BackendError line.
    net = (tiny_model_dir / "net.onnx").read_bytes()
    model = model_dir_with(
        tmp_path / "model",
        checkpoint=(tiny_model_dir / "checkpoint.pt").read_bytes(),
        net_onnx=net[: len(net) // 2],
        clip_onnx=(tiny_model_dir / "clip_image.onnx").read_bytes(),
        template=tiny_model_dir,
    )
    msg = _one_line_error("onnxruntime", model)
    assert "net.onnx: ONNX Runtime cannot load it" in msg


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_pipeline_load_refuses_crafted_checkpoint(tmp_path: Path, backend: str) -> None:
    marker = tmp_path / "marker"
    ckpt = crafted_checkpoint(tmp_path / "evil.pt", marker)
    model = model_dir_with(tmp_path / "model", checkpoint=ckpt.read_bytes())
    with pytest.raises(CheckpointError, match="refusing to load"):
        Pipeline.load(model, backend=backend)
    with pytest.raises(CheckpointError, match="refusing to load"):
        Pipeline.load(ckpt, backend="torch")
    assert not marker.exists()
