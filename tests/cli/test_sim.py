"""Tests of ``ws3d sim`` (ws3d_ros.cli.sim): the acceptance run of 20 frames, flags, errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.cli import sim as cli_sim
from ws3d_ros.data.bag import BagReader
from ws3d_ros.errors import Ws3dError
from ws3d_ros.msg.pointcloud2 import cloud_to_array


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ws3d")
    cli_sim.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["sim", *argv])


def test_help_has_examples() -> None:
    parser = argparse.ArgumentParser(prog="ws3d")
    cli_sim.add_parser(parser.add_subparsers(dest="command"))
    sub = parser._subparsers._group_actions[0].choices["sim"]
    text = sub.format_help()
    assert "examples:" in text and "--export-semantickitti" in text and "--preview" in text


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mcap_ros2 imports a deprecated module
def test_twenty_frames_decode_with_both_readers(tmp_path: Path) -> None:
    out = tmp_path / "s"
    kitti = tmp_path / "kitti"
    png = tmp_path / "preview.png"
    args = parse(
        [
            "--out",
            str(out),
            "--frames",
            "20",
            "--quiet",
            "--preview",
            str(png),
            "--export-semantickitti",
            str(kitti),
        ]
    )
    assert args.func is cli_sim.run
    assert cli_sim.run(args) == 0
    assert (out / "classes.yaml").exists() and png.stat().st_size > 10_000
    assert len(list((kitti / "velodyne").glob("*.bin"))) == 20

    counts: dict[str, int] = {}
    with BagReader(out) as reader:
        points, labels = {}, {}
        for topic, stamp, msg in reader.messages(["/lidar/points", "/lidar/labels"]):
            (points if topic == "/lidar/points" else labels)[stamp] = (
                len(cloud_to_array(msg)),
                msg.header.stamp,
            )
    assert len(points) == 20 and points.keys() == labels.keys()
    for stamp in points:
        assert points[stamp] == labels[stamp]  # same count, same header stamp

    from mcap_ros2.reader import read_ros2_messages

    (mcap_file,) = out.glob("*.mcap")
    widths: dict[int, dict[str, int]] = {}
    for m in read_ros2_messages(str(mcap_file)):
        counts[m.channel.topic] = counts.get(m.channel.topic, 0) + 1
        if m.channel.topic in ("/lidar/points", "/lidar/labels"):
            widths.setdefault(m.log_time_ns, {})[m.channel.topic] = m.ros_msg.width
    assert counts["/lidar/points"] == counts["/lidar/labels"] == 20
    assert counts["/camera/image_raw"] == counts["/camera/camera_info"] == 20
    assert counts["/tf_static"] == 1 and counts["/tf"] == 20
    assert all(w["/lidar/points"] == w["/lidar/labels"] > 100_000 for w in widths.values())


def test_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert (
        cli_sim.run(parse(["--out", str(out), "--frames", "1", "--quiet", "--lidar-beams", "32"]))
        == 0
    )
    with pytest.raises(Ws3dError, match="already exists"):
        cli_sim.run(parse(["--out", str(out), "--frames", "1", "--quiet"]))
    assert (
        cli_sim.run(
            parse(
                [
                    "--out",
                    str(out),
                    "--frames",
                    "2",
                    "--quiet",
                    "--overwrite",
                    "--lidar-beams",
                    "32",
                    "--storage",
                    "sqlite3",
                ]
            )
        )
        == 0
    )
    with BagReader(out) as reader:
        assert reader.topics["/lidar/points"].count == 2
    plain = tmp_path / "not_a_bag"
    plain.mkdir()
    with pytest.raises(Ws3dError, match="not a bag"):
        cli_sim.run(parse(["--out", str(plain), "--overwrite", "--quiet"]))
    assert np.array_equal(sorted(p.name for p in plain.iterdir()), [])


def test_bad_choices_are_usage_errors() -> None:
    with pytest.raises(SystemExit):
        parse(["--out", "/tmp/x", "--cameras", "3"])
    with pytest.raises(SystemExit):
        parse(["--out", "/tmp/x", "--lidar-beams", "16"])
