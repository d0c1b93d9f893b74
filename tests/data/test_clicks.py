"""Tests of ws3d_ros.data.clicks: round trip, latest-wins, atomic append, clear errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.data.clicks import (
    FORMAT,
    Click,
    ClicksError,
    append_clicks,
    by_sweep,
    labels_for_sweep,
    read_clicks,
    validate,
    write_clicks,
)


def click(index: int, cls: str = "car", stamp: int = 100, xyz=(1.0, 2.0, 3.0)) -> Click:
    return Click("bag", stamp, index, cls, tuple(xyz), "labels")


def test_round_trip_and_latest_click_wins(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    assert read_clicks(path) == []
    write_clicks(path, [click(1), click(2, "road")])
    assert json.loads(path.read_text().splitlines()[0]) == {"format": FORMAT}
    assert read_clicks(path) == [click(1), click(2, "road")]
    assert append_clicks(path, [click(1, "pedestrian"), click(3, stamp=200)]) == 3
    got = read_clicks(path)
    assert [(c.index, c.cls) for c in got] == [(2, "road"), (1, "pedestrian"), (3, "car")]
    assert set(by_sweep(got)) == {("bag", 100), ("bag", 200)}


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"

    def worker(k: int) -> None:
        for i in range(10):
            append_clicks(path, [click(k * 100 + i)])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(read_clicks(path)) == 40
    assert not list(tmp_path.glob(".c.jsonl.tmp*"))


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"c.jsonl:2: not valid JSON"),
        ('{"bag": "b", "stamp_ns": 1, "index": 0, "class": "car"}', "missing field 'xyz'"),
        ('{"bag": "b", "stamp_ns": "1", "index": 0, "class": "c", "xyz": [0, 0, 0]}',
         "'stamp_ns' must be int"),
        ('{"bag": "b", "stamp_ns": 1, "index": -2, "class": "c", "xyz": [0, 0, 0]}',
         "'index' must be >= 0"),
        ('{"bag": "b", "stamp_ns": 1, "index": 0, "class": "c", "xyz": [0, 0]}',
         "3 finite numbers"),
        ('{"bag": "b", "stamp_ns": 1, "index": 0, "class": "c", "xyz": [0, 0, 0], "x": 1}',
         "unknown fields"),
        ('[1, 2]', "expected a JSON object"),
    ],
)  # fmt: skip
def test_malformed_lines_name_file_line_and_field(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"format": FORMAT}) + "\n" + line + "\n")
    with pytest.raises(ClicksError, match=match):
        read_clicks(path)


def test_missing_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(click(0).to_json()) + "\n")
    with pytest.raises(ClicksError, match="header"):
        read_clicks(path)


def test_validate_and_labels_for_sweep() -> None:
    xyz = np.array([[0, 0, 0], [1, 2, 3], [5, 5, 5]], np.float32)
    clicks = [click(1, "car"), click(2, "road", xyz=(5, 5, 5))]
    validate(clicks, classes=["road", "car"], sweeps={("bag", 100): xyz})
    with pytest.raises(ClicksError, match="not one of"):
        validate(clicks, classes=["road"])
    with pytest.raises(ClicksError, match="another sweep"):
        validate([click(0)], sweeps={("bag", 100): xyz})
    with pytest.raises(ClicksError, match="beyond"):
        validate([click(7)], sweeps={("bag", 100): xyz})
    lab = labels_for_sweep(clicks, xyz, ["road", "car"])
    assert lab.tolist() == [65535, 1, 0]
    # A filtered copy (row 0 dropped): located by recorded index, or by xyz without one.
    sub = xyz[1:]
    assert labels_for_sweep(clicks, sub, ["road", "car"], indices=np.array([1, 2])).tolist() == [
        1,
        0,
    ]
    assert labels_for_sweep(clicks, sub, ["road", "car"]).tolist() == [1, 0]
    # A click whose point was filtered out is skipped.
    assert labels_for_sweep([click(0, xyz=(0, 0, 0))], sub, ["car"]).tolist() == [65535] * 2
