"""Tests of ``ws3d info`` (ws3d_ros.cli.info): bags in both storages, KITTI files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.cli.main import main
from ws3d_ros.sim.bagwrite import write_bag
from ws3d_ros.sim.rig import SimConfig


@pytest.fixture(scope="module")
def sim_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("info")
    kitti = root / "kitti"
    bag = write_bag(
        SimConfig(frames=3, seed=4, lidar_beams=32), root / "bag", False, semantickitti_dir=kitti
    )
    sqlite = write_bag(
        SimConfig(frames=2, seed=4, lidar_beams=32, storage="sqlite3", cameras=6),
        root / "ring",
        False,
    )
    return {"bag": bag, "sqlite": sqlite, "kitti": kitti}


def run_info(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["info", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bag_text(sim_outputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_info(capsys, str(sim_outputs["bag"]))
    assert code == 0
    for expected in (
        "(mcap,",
        "/lidar/points",
        "sensor_msgs/msg/PointCloud2",
        "fields x:float32, y:float32, z:float32, intensity:float32, ring:uint16, time:float32",
        "fields label:uint16, instance:uint32",
        "1242x375 plumb_bob fx=721.5",
        "base_link->lidar, base_link->camera (latched)",
        "labels: /lidar/labels",
        "synchronised frames: 3 (3 with every camera)",
        "points per sweep:",
    ):
        assert expected in out, expected
    assert "UNREADABLE" not in out


def test_bag_json_and_storage_file(
    sim_outputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (db3,) = sim_outputs["sqlite"].glob("*.db3")
    code, out, _ = run_info(capsys, str(db3), "--json")  # the storage file inside the bag
    assert code == 0
    info = json.loads(out)
    assert info["storage"] == "sqlite3"
    assert info["frames"]["frames"] == info["frames"]["frames_with_all_cameras"] == 2
    assert sorted(info["calibration"]) == sorted(info["streams"]["cameras"])
    assert len(info["streams"]["cameras"]) == 6
    rates = {t["topic"]: t["rate_hz"] for t in info["topics"]}
    assert rates["/lidar/points"] == pytest.approx(10.0)
    code, out, _ = run_info(capsys, str(sim_outputs["sqlite"]), "--json", "--no-frames")
    assert code == 0 and "frames" not in json.loads(out)


def test_kitti_files(sim_outputs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    kitti = sim_outputs["kitti"]
    scan = np.fromfile(kitti / "velodyne" / "000000.bin", np.float32).reshape(-1, 4)
    labels = np.fromfile(kitti / "labels" / "000000.label", np.uint32)

    code, out, _ = run_info(capsys, str(kitti / "velodyne" / "000000.bin"), "--json")
    info = json.loads(out)
    assert code == 0 and info["kind"] == "kitti_velodyne" and info["points"] == len(scan)
    np.testing.assert_allclose(info["min"], scan[:, :3].min(0), atol=0.01)

    code, out, _ = run_info(capsys, str(kitti / "labels" / "000000.label"), "--json")
    info = json.loads(out)
    assert code == 0 and info["kind"] == "semantickitti_label" and info["points"] == len(labels)
    classes, counts = np.unique(labels & 0xFFFF, return_counts=True)
    assert {int(k): v for k, v in info["classes"].items()} == dict(
        zip(classes.tolist(), counts.tolist(), strict=True)
    )
    assert info["instances"] == len(np.unique(labels[(labels >> 16) > 0]))

    code, out, _ = run_info(capsys, str(kitti / "calib.txt"))
    assert code == 0 and "kind: kitti_calib" in out and "P2: [[721.5377" in out


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.bin", None, "does not exist"),
        ("odd.bin", np.zeros(5, np.float32).tobytes(), "not a multiple of 4"),
        ("notes.txt", b"hello", "not a rosbag2 directory, KITTI .bin"),
        ("calib.txt", b"P2: 1 2 3\n", "calib"),
    ],
)
def test_bad_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, match: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run_info(capsys, str(path))
    assert code == 1 and out == ""
    assert err.startswith("ws3d info: error:") and match in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_directory_that_is_not_a_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_info(capsys, str(tmp_path))
    assert code == 1 and "not a rosbag2 directory" in err
