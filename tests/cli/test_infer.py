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


def test_infer_refuses_to_overwrite(tmp_path, tiny_model_dir, capsys) -> None:
    (tmp_path / "out").mkdir()
    code = main(
        ["infer", "--bag", str(tmp_path), "--model", str(tiny_model_dir), "--out",
         str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 1
    assert "--overwrite" in capsys.readouterr().err
