"""``ws3d infer`` writes a labelled bag in the node's output contract."""

from __future__ import annotations

import json

import numpy as np

from ws3d_ros.cli.main import main
from ws3d_ros.data.bag import BagReader
from ws3d_ros.msg.pointcloud2 import cloud_to_array
from ws3d_ros.sim.bagwrite import write_bag
from ws3d_ros.sim.rig import SimConfig


def test_infer_writes_points_and_label_map(tmp_path, tiny_model_dir, capsys) -> None:
    bag = tmp_path / "in"
    write_bag(SimConfig(frames=3, lidar_beams=32, seed=5), bag, progress=False)
    out = tmp_path / "labelled.mcap"
    code = main(
        ["infer", "--bag", str(bag), "--model", str(tiny_model_dir), "--out", str(out),
         "--classes", "road,car,building,vegetation", "--things", "car", "--quiet"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3
    out_dir = tmp_path / "labelled"
    with BagReader(bag) as src, BagReader(out_dir) as dst:
        topics = dst.topics
        assert topics["/panoptic/points"].count == 3
        assert topics["/panoptic/label_map"].latched
        for name, info in src.topics.items():  # every input message is kept
            assert topics[name].count == info.count
        inputs = [cloud_to_array(m) for _, _, m in src.messages(["/lidar/points"])]
        outputs = [(s, m) for _, s, m in dst.messages(["/panoptic/points"])]
        label_map = [json.loads(m.data) for _, _, m in dst.messages(["/panoptic/label_map"])]
    names = [c["name"] for c in label_map[0]["classes"]]
    assert names == ["road", "car", "building", "vegetation"]
    for cloud, (stamp, msg) in zip(inputs, outputs, strict=True):
        arr = cloud_to_array(msg)
        assert [f.name for f in msg.fields] == ["x", "y", "z", "label", "instance", "score"]
        assert len(arr) == len(cloud)
        np.testing.assert_array_equal(arr["x"], cloud["x"])  # same order
        assert set(np.unique(arr["label"]).tolist()) <= {0, 1, 2, 3, 65535}
        assert stamp == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def _infer(bag, model, out, *extra: str) -> int:
    return main(["infer", "--bag", str(bag), "--model", str(model), "--out", str(out),
                 "--quiet", *extra])  # fmt: skip


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ws3d infer: error: "), lines
    return lines[0]


def test_infer_refuses_to_overwrite(tmp_path, tiny_model_dir, capsys) -> None:
    (tmp_path / "out").mkdir()
    assert _infer(tmp_path / "bag", tiny_model_dir, tmp_path / "out") == 1
    assert "--overwrite" in _one_error_line(capsys)


def _tree(path):
    return sorted((p.relative_to(path), p.read_bytes()) for p in path.rglob("*") if p.is_file())


def test_infer_never_deletes_what_it_did_not_write(tmp_path, tiny_model_dir, capsys) -> None:
    bag = tmp_path / "in"
    write_bag(SimConfig(frames=1, lidar_beams=32, seed=5), bag, progress=False)
    user = tmp_path / "foo"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    before = {p: _tree(p) for p in (bag, user)}
    cases = [
        (bag, "is the input"),  # --out = the input bag
        (bag / "sub", "inside the input"),
        (tmp_path, "contains the input"),
        (user, "not an output of `ws3d infer`"),  # any directory
        (tmp_path / "foo.mcap", "not an output of `ws3d infer`"),  # the neighbour foo
        (tiny_model_dir, "is the input"),
    ]
    for out, words in cases:
        assert _infer(bag, tiny_model_dir, out, "--overwrite") == 1
        assert words in _one_error_line(capsys), out
    assert {p: _tree(p) for p in (bag, user)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foo", "in"]


def test_infer_replaces_its_own_output_atomically(tmp_path, tiny_model_dir, capsys) -> None:
    bag = tmp_path / "in"
    write_bag(SimConfig(frames=2, lidar_beams=32, seed=5), bag, progress=False)
    out = tmp_path / "labelled"
    assert _infer(bag, tiny_model_dir, out, "--max-frames", "1") == 0
    assert _infer(bag, tiny_model_dir, out, "--overwrite") == 0
    capsys.readouterr()
    with BagReader(out) as reader:
        assert reader.topics["/panoptic/points"].count == 2
    # a failure after the output was started (a bad vocabulary) leaves the last output as is
    before = _tree(out)
    assert _infer(bag, tiny_model_dir, out, "--overwrite", "--classes", "car,car")
    _one_error_line(capsys)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "labelled"]
