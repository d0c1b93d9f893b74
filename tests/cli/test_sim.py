"""Tests of ``ws3d sim`` (ws3d_ros.cli.sim): the acceptance run of 20 frames, flags, errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.cli import sim as cli_sim
from ws3d_ros.cli.main import main as cli_main
from ws3d_ros.data.bag import BagReader
from ws3d_ros.data.frames import BagFrames
from ws3d_ros.errors import Ws3dError
from ws3d_ros.msg.pointcloud2 import cloud_to_array
from ws3d_ros.sim.classes import load_classes


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


@pytest.fixture(scope="module")
def sim20(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The acceptance run: ``ws3d sim --out DIR --frames 20`` (+ preview and KITTI export)."""
    root = tmp_path_factory.mktemp("sim20")
    paths = {"bag": root / "s", "kitti": root / "kitti", "png": root / "preview.png"}
    args = parse(
        [
            "--out",
            str(paths["bag"]),
            "--frames",
            "20",
            "--quiet",
            "--preview",
            str(paths["png"]),
            "--export-semantickitti",
            str(paths["kitti"]),
        ]
    )
    assert args.func is cli_sim.run
    assert cli_sim.run(args) == 0
    return paths


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mcap_ros2 imports a deprecated module
def test_twenty_frames_decode_with_both_readers(sim20: dict[str, Path]) -> None:
    out, kitti, png = sim20["bag"], sim20["kitti"], sim20["png"]
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


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mcap_ros2 imports a deprecated module
def test_twenty_synchronised_frames_with_point_aligned_labels(sim20: dict[str, Path]) -> None:
    """The frame iterator yields all 20 sweeps; labels match the sweep point for point.

    The reference is the independent ``mcap_ros2`` decode of ``/lidar/points`` and
    ``/lidar/labels`` (its own CDR reader and field parsing), compared by stamp.
    """
    from mcap_ros2.reader import read_ros2_messages

    def field(msg, name: str, dtype: str) -> np.ndarray:
        (f,) = [f for f in msg.fields if f.name == name]
        raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(-1, msg.point_step)
        return raw[:, f.offset : f.offset + np.dtype(dtype).itemsize].copy().view(dtype)[:, 0]

    ref: dict[int, dict[str, np.ndarray]] = {}
    (mcap_file,) = sim20["bag"].glob("*.mcap")
    for m in read_ros2_messages(str(mcap_file), topics=["/lidar/points", "/lidar/labels"]):
        msg = m.ros_msg
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        entry = ref.setdefault(stamp, {})
        if m.channel.topic == "/lidar/points":
            entry["x"] = field(msg, "x", "<f4")
            entry["ring"] = field(msg, "ring", "<u2")
        else:
            entry["label"] = field(msg, "label", "<u2")
            entry["instance"] = field(msg, "instance", "<u4")

    with BagFrames(sim20["bag"]) as bag:
        frames = list(bag)
        stats = bag.stats.summary()
    assert len(frames) == 20 == len(ref)
    assert stats["frames"] == stats["frames_with_all_cameras"] == 20
    assert stats["dropped"] == {} and stats["missing_images"] == {}
    assert [f.index for f in frames] == list(range(20))
    assert [f.stamp_ns for f in frames] == sorted(ref)
    for frame in frames:
        r = ref[frame.stamp_ns]
        assert frame.labels is not None and frame.instances is not None
        assert len(frame) == len(frame.labels) == len(frame.instances) == len(r["x"])
        np.testing.assert_array_equal(frame.points["x"], r["x"])
        np.testing.assert_array_equal(frame.points["ring"], r["ring"])
        np.testing.assert_array_equal(frame.labels, r["label"])
        np.testing.assert_array_equal(frame.instances, r["instance"])
        (view,) = frame.views
        assert view.name == "camera" and view.image.shape == (375, 1242, 3)
        assert 0 < view.stamp_ns - frame.stamp_ns < 50_000_000  # exposure offset, within slop
    # Ground truth is panoptic: stuff has instance 0, things carry ids.
    classes = load_classes(sim20["bag"] / "classes.yaml")
    things = [c.id for c in classes if c.thing]
    f0 = frames[0]
    assert np.all(f0.instances[~np.isin(f0.labels, things)] == 0)
    assert np.all(f0.instances[np.isin(f0.labels, things)] > 0)


def test_ws3d_info_reads_the_twenty_frame_bag(
    sim20: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["info", str(sim20["bag"])]) == 0
    text = capsys.readouterr().out
    assert "synchronised frames: 20 (20 with every camera)" in text
    assert "/lidar/points" in text and "/camera/image_raw" in text and "plumb_bob" in text
    assert "UNREADABLE" not in text


def test_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert (
        cli_sim.run(parse(["--out", str(out), "--frames", "1", "--quiet", "--lidar-beams", "32"]))
        == 0
    )
    with pytest.raises(Ws3dError, match="exists; pass --overwrite"):
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
    with pytest.raises(Ws3dError, match="not an output of `ws3d sim`"):
        cli_sim.run(parse(["--out", str(plain), "--overwrite", "--quiet"]))
    assert np.array_equal(sorted(p.name for p in plain.iterdir()), [])


def test_bad_choices_are_usage_errors() -> None:
    with pytest.raises(SystemExit):
        parse(["--out", "/tmp/x", "--cameras", "3"])
    with pytest.raises(SystemExit):
        parse(["--out", "/tmp/x", "--lidar-beams", "16"])
