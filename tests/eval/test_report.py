"""Tests of ws3d_ros.eval.report: JSON, Markdown tables and the confusion picture."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.errors import Ws3dError
from ws3d_ros.eval.metrics import PanopticEvaluator
from ws3d_ros.eval.report import fmt_score, write_report
from ws3d_ros.sim.classes import STREET_CLASSES, class_colors

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"  # written to the end
    return struct.unpack(">II", data[16:24])


def street_result(fov: bool) -> dict:
    rng = np.random.default_rng(0)
    names = [c.name for c in STREET_CLASSES]
    ev = PanopticEvaluator(names, [c.thing for c in STREET_CLASSES], min_points=1)
    thing = np.array([c.thing for c in STREET_CLASSES])
    for _ in range(2):
        n = 4000
        gl = rng.integers(0, len(names), n).astype(np.uint16)
        gi = np.where(thing[gl], rng.integers(1, 5, n), 0).astype(np.uint32)
        pl = gl.copy()
        flip = rng.random(n) < 0.25
        pl[flip] = rng.integers(0, len(names), int(flip.sum()))
        pl[rng.random(n) < 0.03] = 65535
        ev.add(gl, gi, pl, gi, in_fov=(rng.random(n) < 0.5) if fov else None)
    return ev.result()


def test_write_report_with_fov(tmp_path: Path) -> None:
    result = street_result(fov=True)
    names = [c.name for c in STREET_CLASSES]
    paths = write_report(result, tmp_path / "rep", names, class_colors(STREET_CLASSES))
    assert set(paths) == {"json", "markdown", "confusion"}
    assert all(p.is_file() and p.parent == tmp_path / "rep" for p in paths.values())

    assert json.loads(paths["json"].read_text()) == result

    md = paths["markdown"].read_text()
    lines = md.splitlines()
    for key, title in (("all", "all"), ("in_fov", "in-FOV"), ("out_fov", "out-of-FOV")):
        r = result[key]
        row = next(line for line in lines if line.startswith(f"| {title} |"))
        for metric in ("miou", "pq", "sq", "rq", "pq_things", "pq_stuff"):
            assert f" {fmt_score(r[metric])} " in row, (title, metric)
    car = result["all"]["per_class"]["car"]
    row = next(line for line in lines if "| car |" in line)
    assert fmt_score(car["iou"]) in row and fmt_score(car["pq"]) in row
    assert fmt_score(result["in_fov"]["per_class"]["car"]["iou"]) in row
    assert all(f"| {name} |" in md for name in names)

    w, h = png_size(paths["confusion"])
    assert 500 <= w <= 4000 and 500 <= h <= 4000


def test_write_report_without_fov_or_colours(tmp_path: Path) -> None:
    result = street_result(fov=False)
    names = [c.name for c in STREET_CLASSES]
    paths = write_report(result, tmp_path, names)
    md = paths["markdown"].read_text()
    assert "| in-FOV | n/a |" in md and "not evaluated" in md
    assert "IoU in-FOV" not in md
    assert fmt_score(result["all"]["miou"]) in md
    png_size(paths["confusion"])


def test_many_classes_and_bad_arguments(tmp_path: Path) -> None:
    n = 30  # above the cell-annotation limit: still a readable, bounded picture
    names = [f"class {k}" for k in range(n)]
    ev = PanopticEvaluator(names, [k % 2 == 0 for k in range(n)], min_points=1)
    gl = np.repeat(np.arange(n, dtype=np.uint16), 10)
    ev.add(gl, np.ones(len(gl), np.uint32), gl[::-1].copy(), np.ones(len(gl), np.uint32))
    paths = write_report(ev.result(), tmp_path, names)
    w, h = png_size(paths["confusion"])
    assert 800 <= w <= 4000 and 800 <= h <= 4000
    with pytest.raises(Ws3dError, match="class names"):
        write_report(ev.result(), tmp_path, names[:-1])
    with pytest.raises(Ws3dError, match="colours"):
        write_report(ev.result(), tmp_path, names, colors=np.zeros((3, 3)))
