"""Crafted untrusted files for the hardening tests: a checkpoint whose pickle runs code,
and a model directory whose ``model.json`` hashes match whatever files it is given.

``crafted_checkpoint(path, marker)`` writes a file that, unpickled with
``weights_only=False``, creates ``marker`` (``tests/models/test_checkpoint.py`` proves the
payload is live); every entry point must refuse it and leave no marker.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from pathlib import Path

import torch

from ws3d_ros.models.checkpoint import FORMAT
from ws3d_ros.runtime.backends import MODEL_FORMAT, MODEL_JSON


class _Payload:
    """Unpickling this runs ``exec`` of code that writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def crafted_checkpoint(path: Path, marker: Path, *, extra: dict | None = None) -> Path:
    """A ws3d-looking checkpoint whose ``config`` value is the code-running payload."""
    payload = {
        "format": FORMAT,
        "config": _Payload(marker),
        "embed_dim": 8,
        "net": None,
        "clip_state": None,
        "meta": {},
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_dir_with(
    out: Path,
    *,
    checkpoint: bytes,
    net_onnx: bytes = b"not onnx",
    clip_onnx: bytes = b"not onnx",
    template: Path | None = None,
) -> Path:
    """A model directory holding the given file contents and a ``model.json`` whose
    SHA-256 values match them (an attacker can edit both). ``template``: a real model
    directory whose ``model.json`` fields are copied."""
    out.mkdir(parents=True)
    files = {"checkpoint.pt": checkpoint, "net.onnx": net_onnx, "clip_image.onnx": clip_onnx}
    for name, data in files.items():
        (out / name).write_bytes(data)
    meta = json.loads((template / MODEL_JSON).read_text()) if template else {}
    meta.update(
        {
            "format": MODEL_FORMAT,
            "checkpoint": "checkpoint.pt",
            "net_onnx": "net.onnx",
            "clip_onnx": "clip_image.onnx",
            "sha256": {name: sha256(out / name) for name in files},
        }
    )
    (out / MODEL_JSON).write_text(json.dumps(meta))
    return out


def corrupt_mcap_chunk(bag: Path, index: int) -> int:
    """Write an impossible record length (2**64 - 1: an ``OverflowError`` in rosbags) at the
    first record of the ``index``-th chunk of ``bag``'s MCAP file; returns the chunk's byte
    offset. The summary stays valid, so the other chunks remain readable."""
    import struct

    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        (storage,) = reader.storage.storages
        chunk = storage.chunks[index]
        path = storage.path
    data = bytearray(path.read_bytes())
    first_record = chunk.chunk_start_offset + 9 + 40 + len(chunk.compression)
    struct.pack_into("<Q", data, first_record + 1, 2**64 - 1)
    path.write_bytes(bytes(data))
    return chunk.chunk_start_offset
