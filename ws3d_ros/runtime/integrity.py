"""Integrity of an exported model directory: every file ``model.json`` names matches its
SHA-256 before anything reads it.

Contract: :func:`verify_model_dir` takes the directory and its parsed ``model.json`` and
raises :class:`ModelIntegrityError` (a ``Ws3dError``; the backends re-raise it as
``BackendError``) with one line naming the file when
- a name (``checkpoint``, ``net_onnx``, ``clip_onnx`` or a key of ``sha256``) is not a
  plain file name inside the directory (no separators, no ``..``, no symlink out of it);
- a named file is missing, or has no SHA-256 in ``model.json``;
- a file's SHA-256 differs from the recorded one (edited, truncated or replaced).
It returns the verified file names. ``ws3d export`` writes the hashes; every backend
calls this through :func:`~ws3d_ros.runtime.backends.read_model_json`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ws3d_ros.errors import Ws3dError

NAMED_FILES = ("checkpoint", "net_onnx", "clip_onnx")


class ModelIntegrityError(Ws3dError):
    """A model directory's files do not match its ``model.json``."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inside(model_dir: Path, name: object) -> Path:
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise ModelIntegrityError(f"model.json names an invalid file {name!r}")
    if "/" in name or "\\" in name or Path(name).name != name:
        raise ModelIntegrityError(f"model.json file {name!r} is not a plain file name")
    path = model_dir / name
    if path.is_symlink() and model_dir.resolve() not in path.resolve().parents:
        raise ModelIntegrityError(f"{path} links outside the model directory")
    return path


def verify_model_dir(model_dir: Path, meta: dict[str, Any]) -> list[str]:
    """Check every file ``meta`` names against its SHA-256 (see the module docstring)."""
    hashes = meta.get("sha256")
    if not isinstance(hashes, dict):
        raise ModelIntegrityError(
            f"{model_dir / 'model.json'} has no sha256 table; re-export the model (`ws3d export`)"
        )
    names = [meta.get(key) for key in NAMED_FILES if key in meta]
    names += [n for n in hashes if n not in names]
    for name in names:
        path = _inside(model_dir, name)
        if name not in hashes:
            raise ModelIntegrityError(f"{path}: model.json records no SHA-256 for it")
        if not path.is_file():
            raise ModelIntegrityError(f"{path} is missing (named in model.json)")
        if sha256_of(path) != str(hashes[name]).lower():
            raise ModelIntegrityError(
                f"{path} does not match its SHA-256 in model.json (edited, truncated or "
                "replaced); re-export the model"
            )
    return [str(n) for n in names]
