"""``ws3d_ros.output_dirs``: only a command's own marked outputs are ever deleted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ws3d_ros.output_dirs import (
    MARKER,
    OutputPathError,
    atomic_output_dir,
    check_not_input,
    is_output_of,
    mark_output,
    prepare_run_dir,
    remove_stale_partials,
    replace_marked_dir,
)


def _user_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "precious.txt").write_text("keep me")
    return path


def _write(tmp: Path, text: str = "new") -> None:
    tmp.mkdir()
    (tmp / "data.txt").write_text(text)


def test_inputs_are_never_outputs(tmp_path: Path) -> None:
    bag = _user_dir(tmp_path / "bag")
    for out, words in [(bag, "is the input"), (bag / "sub", "is inside the input"),
                       (tmp_path, "contains the input")]:  # fmt: skip
        with pytest.raises(OutputPathError, match=words):
            check_not_input(out, [None, bag])
    link = tmp_path / "link"
    link.symlink_to(bag)
    with pytest.raises(OutputPathError, match="is the input"):
        check_not_input(link, [bag])
    check_not_input(tmp_path / "elsewhere", [bag])


def test_atomic_output_publishes_marked_result(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output_dir(out, "infer") as tmp:
        assert tmp.name == "out" and not tmp.exists()
        _write(tmp)
        assert not out.exists()  # nothing visible before the end
    assert (out / "data.txt").read_text() == "new"
    assert is_output_of(out, "infer") and not is_output_of(out, "sim")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # staging removed


def test_atomic_output_failure_leaves_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_output_dir(out, "infer") as tmp:
        _write(tmp, "old")
    with pytest.raises(RuntimeError), atomic_output_dir(out, "infer", overwrite=True) as tmp:
        _write(tmp, "half")
        raise RuntimeError("killed mid-way")
    assert (out / "data.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_output_dir(out, "infer", overwrite=True) as tmp:
        _write(tmp, "again")
    assert (out / "data.txt").read_text() == "again"


@pytest.mark.parametrize("kind", ["user dir", "other command", "file", "symlink"])
def test_overwrite_refuses_what_the_command_did_not_make(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    target = _user_dir(tmp_path / "target")
    if kind == "user dir":
        out = target
    elif kind == "other command":
        mark_output(target, "sim")
        out = target
    elif kind == "file":
        out.write_text("a file")
    else:
        mark_output(target, "infer")  # even a marked target behind a link is not replaced
        out.symlink_to(target)
    with pytest.raises(OutputPathError, match="refusing"):
        with atomic_output_dir(out, "infer", overwrite=True) as tmp:
            _write(tmp)
    assert (target / "precious.txt").read_text() == "keep me"
    assert out.exists()
    with pytest.raises(OutputPathError, match="pass --overwrite"):
        with atomic_output_dir(out, "infer") as tmp:
            _write(tmp)


def test_stale_staging_of_dead_process_is_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".out.partial-{int(dead.stdout)}"
    (stale / "out").mkdir(parents=True)
    live = tmp_path / f".out.partial-{os.getppid()}"  # our parent is alive
    live.mkdir()
    other = tmp_path / f".other.partial-{int(dead.stdout)}"  # another output's: not ours
    other.mkdir()
    assert remove_stale_partials(tmp_path / "out") == [stale]
    assert live.exists() and other.exists()


def test_run_dir_needs_resume_or_force(tmp_path: Path) -> None:
    run = tmp_path / "run"
    prepare_run_dir(run, "train")
    assert is_output_of(run, "train")
    (run / "last.pt").write_text("weights")
    with pytest.raises(OutputPathError, match=r"--resume .* --force"):
        prepare_run_dir(run, "train")
    prepare_run_dir(run, "train", resume=True)
    assert (run / "last.pt").exists()
    prepare_run_dir(run, "train", force=True)
    assert sorted(p.name for p in run.iterdir()) == [MARKER]
    with pytest.raises(OutputPathError, match="not both"):
        prepare_run_dir(run, "train", resume=True, force=True)
    with pytest.raises(OutputPathError, match="does not exist"):
        prepare_run_dir(tmp_path / "none", "train", resume=True)


def test_run_dir_force_refuses_unmarked(tmp_path: Path) -> None:
    user = _user_dir(tmp_path / "mine")
    with pytest.raises(OutputPathError, match="not an output of `ws3d train`"):
        prepare_run_dir(user, "train", force=True)
    assert (user / "precious.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_run_dir(empty, "train")  # an empty folder is fine to use
    bag = _user_dir(tmp_path / "bag")
    with pytest.raises(OutputPathError, match="inside the input"):
        prepare_run_dir(bag / "run", "train", inputs=[bag])


def test_replace_marked_dir(tmp_path: Path) -> None:
    user = _user_dir(tmp_path / "mine")
    with pytest.raises(OutputPathError):
        replace_marked_dir(user, "demo")
    assert (user / "precious.txt").exists()
    mark_output(user, "demo")
    replace_marked_dir(user, "demo")
    assert not user.exists()
    replace_marked_dir(user, "demo")  # absent: nothing to do
