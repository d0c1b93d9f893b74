"""Output directories of ``ws3d`` commands: the one place that decides what may be deleted.

Contract (every command that writes or replaces a directory goes through here):
- A command's output directory carries a marker file, ``.ws3d-output`` (JSON:
  ``{"command": NAME}``), written by :func:`mark_output`. A directory is deleted or
  replaced only when it carries the marker of the *same* command
  (:func:`is_output_of`); anything else (a user's folder, another command's output, a
  file, a symlink) is refused with :class:`OutputPathError` and left untouched.
- :func:`check_not_input`: ``--out`` must not be an input, lie inside one, or contain
  one (replacing it would delete the input).
- :func:`atomic_output_dir` (``ws3d infer``, ``ws3d sim``): the command writes into
  ``.NAME.partial-PID/NAME`` next to ``out`` (not created yet, so rosbag2 writers may
  create it; same base name, so the files inside are named as in the result); on success
  it is marked and renamed to ``out`` (a previous output of the same command is replaced
  only then); on failure the staging directory is removed and ``out`` is as before.
  Staging directories of processes that died are removed on the next start.
- :func:`prepare_run_dir` (``ws3d train``): an existing non-empty run directory is
  refused unless ``resume`` (continue in place) or ``force`` (start over; only a
  directory marked by the same command is emptied).
- :func:`replace_marked_dir` (``ws3d demo --fresh``): delete a marked directory.
Errors are one line. No torch, no ROS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ws3d_ros.errors import Ws3dError

MARKER = ".ws3d-output"
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")


class OutputPathError(Ws3dError):
    """An output path would overwrite or delete something the command did not create."""


def _abs(path: Path) -> Path:
    """Absolute, with symlinks of the parents resolved but not of ``path`` itself."""
    path = Path(path).expanduser()
    return path.parent.resolve() / path.name


def mark_output(path: Path, command: str) -> None:
    """Record that ``path`` (a directory) is an output of ``ws3d <command>``."""
    (Path(path) / MARKER).write_text(json.dumps({"command": command}) + "\n")


def is_output_of(path: Path, command: str) -> bool:
    """``path`` is a real directory (not a symlink) marked by ``ws3d <command>``."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("command") == command


def check_not_input(out: Path, inputs: Iterable[Path | None], *, what: str = "--out") -> None:
    """Refuse ``out`` equal to, inside, or containing any of ``inputs``."""
    target = _abs(out).resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).expanduser().resolve()
        if target == src:
            raise OutputPathError(f"{what} {out} is the input {item}; choose another {what}")
        if src in target.parents:
            raise OutputPathError(f"{what} {out} is inside the input {item}; choose a path outside")
        if target in src.parents:
            raise OutputPathError(f"{what} {out} contains the input {item}; choose another {what}")


def _refuse_unmarked(out: Path, command: str) -> None:
    if out.is_symlink() or not out.is_dir():
        kind = "a symlink" if out.is_symlink() else "not a directory"
        raise OutputPathError(f"{out} exists and is {kind}; refusing to replace it")
    if not is_output_of(out, command):
        raise OutputPathError(
            f"{out} exists and is not an output of `ws3d {command}` (no {MARKER} marker); "
            "refusing to delete it: choose a new path or remove it yourself"
        )


def replace_marked_dir(out: Path, command: str) -> None:
    """Delete ``out`` if it is a previous output of ``command`` (else refuse); no-op if absent."""
    out = _abs(out)
    if not out.exists() and not out.is_symlink():
        return
    _refuse_unmarked(out, command)
    shutil.rmtree(out)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (this one does; another user's counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(out: Path) -> list[Path]:
    """Remove ``.NAME.partial-PID`` siblings of ``out`` left by processes that died."""
    out = _abs(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for entry in out.parent.iterdir():
        m = _PARTIAL_RE.match(entry.name)
        if not m or m["name"] != out.name or pid_alive(int(m["pid"])) or entry.is_symlink():
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    return removed


@contextmanager
def atomic_output_dir(
    out: Path,
    command: str,
    *,
    inputs: Iterable[Path | None] = (),
    overwrite: bool = False,
) -> Iterator[Path]:
    """Yield a temporary path to write ``out`` into; publish it at the end (see module doc)."""
    out = _abs(out)
    check_not_input(out, inputs)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise OutputPathError(f"{out} exists; pass --overwrite to replace it")
        _refuse_unmarked(out, command)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    tmp = staging / out.name  # same name as the result: bag files inside are named after it
    try:
        yield tmp
        if not tmp.is_dir():
            raise OutputPathError(f"`ws3d {command}` wrote nothing into {tmp}")
        mark_output(tmp, command)
        if out.exists() or out.is_symlink():
            _refuse_unmarked(out, command)  # re-check: it may have changed meanwhile
            os.replace(out, staging / f"{out.name}.old")
        os.replace(tmp, out)
    finally:
        shutil.rmtree(staging)


def prepare_run_dir(
    out: Path,
    command: str,
    *,
    inputs: Iterable[Path | None] = (),
    resume: bool = False,
    force: bool = False,
) -> Path:
    """Make ``out`` ready for a run of ``command`` (see module doc) and mark it."""
    out = _abs(out)
    check_not_input(out, inputs)
    if resume and force:
        raise OutputPathError("pass --resume or --force, not both")
    exists = out.exists() or out.is_symlink()
    if exists and (out.is_symlink() or not out.is_dir()):
        raise OutputPathError(f"{out} exists and is not a directory")
    if resume:
        if not exists:
            raise OutputPathError(f"--resume: {out} does not exist")
    elif exists and any(out.iterdir()):
        if not force:
            raise OutputPathError(
                f"{out} exists and is not empty; pass --resume to continue that run or "
                "--force to start it over"
            )
        _refuse_unmarked(out, command)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    mark_output(out, command)
    return out
