"""Tests of ws3d_ros.data.bag: rosbag2 read/write in both storages, latching, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ws3d_ros.data.bag import BagReader, BagWriter
from ws3d_ros.errors import BagError
from ws3d_ros.msg.kit import rosbags_kit
from ws3d_ros.msg.pointcloud2 import cloud_to_array, xyz_to_cloud


def write_small_bag(path: Path, storage: str) -> list[np.ndarray]:
    kit = rosbags_kit()
    rng = np.random.default_rng(0)
    clouds = [rng.normal(size=(50 + k, 3)).astype(np.float32) for k in range(4)]
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        bag.write("/tf_static", 0, kit.make("tf2_msgs/msg/TFMessage", transforms=[]))
        for k, xyz in enumerate(clouds):
            stamp = 1_000_000_000 + k * 100_000_000
            # Topics can also be declared implicitly by the first write.
            bag.write("/lidar/points", stamp, xyz_to_cloud(xyz, frame_id="lidar", stamp_ns=stamp))
            bag.write("/note", stamp + 1, kit.make("std_msgs/msg/String", data=f"sweep {k}"))
    return clouds


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_write_read_round_trip(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "bag"
    clouds = write_small_bag(path, storage)
    suffix = ".mcap" if storage == "mcap" else ".db3"
    assert (path / "metadata.yaml").exists() and list(path.glob(f"*{suffix}"))
    with BagReader(path) as reader:
        assert reader.storage == storage
        topics = reader.topics
        assert list(topics) == sorted(topics)
        assert {t: (i.msgtype, i.count, i.latched) for t, i in topics.items()} == {
            "/lidar/points": ("sensor_msgs/msg/PointCloud2", 4, False),
            "/note": ("std_msgs/msg/String", 4, False),
            "/tf_static": ("tf2_msgs/msg/TFMessage", 1, True),
        }
        assert reader.start_ns == 0 and reader.end_ns >= 1_300_000_001
        got = list(reader.messages(["/lidar/points", "/note"]))
        stamps = [s for _, s, _ in got]
        assert stamps == sorted(stamps)  # log-time order across topics
        sweeps = [m for t, _, m in got if t == "/lidar/points"]
        notes = [m.data for t, _, m in got if t == "/note"]
        assert notes == [f"sweep {k}" for k in range(4)]
        for msg, xyz in zip(sweeps, clouds, strict=True):
            arr = cloud_to_array(msg)
            # Zero-copy all the way from the storage record to the structured array.
            assert np.shares_memory(arr, msg.data)
            np.testing.assert_array_equal(np.column_stack([arr["x"], arr["y"], arr["z"]]), xyz)
        raw = list(reader.raw_messages(["/note"]))
        assert [r[1] for r in raw] == ["std_msgs/msg/String"] * 4
        assert all(isinstance(r[3], (bytes, bytearray, memoryview)) for r in raw)
        assert list(reader.raw_messages(["/not_there"])) == []


def test_reader_accepts_the_storage_file_itself(tmp_path: Path) -> None:
    write_small_bag(tmp_path / "bag", "mcap")
    (mcap,) = (tmp_path / "bag").glob("*.mcap")
    with BagReader(mcap) as reader:
        assert reader.path == tmp_path / "bag"
        assert reader.topics["/lidar/points"].count == 4


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 directory"):
        BagReader(tmp_path / "plain")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 'x'}\n")
    with pytest.raises(BagError, match="cannot open bag"):
        BagReader(broken)


def test_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="unknown storage"):
        BagWriter(tmp_path / "a", storage="zip")
    (tmp_path / "exists").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "exists")
    with BagWriter(tmp_path / "b") as bag:
        with pytest.raises(BagError, match="unknown to the typestore"):
            bag.add_topic("/x", "no_pkg/msg/Nothing")
        bag.add_topic("/s", "std_msgs/msg/String")
        bag.add_topic("/s", "std_msgs/msg/String")  # same type again: fine
        with pytest.raises(BagError, match="already added"):
            bag.add_topic("/s", "sensor_msgs/msg/Image")
        with pytest.raises(BagError, match="no type"):
            bag.write("/new", 0, object())


# -- corrupt records --------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ws3d_ros.sim.bagwrite import write_bag
    from ws3d_ros.sim.rig import SimConfig

    bag = tmp_path_factory.mktemp("sim") / "bag"
    write_bag(SimConfig(frames=4, lidar_beams=32, seed=5), bag, progress=False)
    return bag


def test_corrupt_chunk_is_skipped_with_its_position(tmp_path: Path, sim_bag: Path) -> None:
    import shutil

    from tests.crafted import corrupt_mcap_chunk

    with BagReader(sim_bag) as reader:
        everything = [(t, s) for t, _, s, _ in reader.raw_messages()]
        assert reader.skipped == []
    bag = Path(shutil.copytree(sim_bag, tmp_path / "bag"))
    offset = corrupt_mcap_chunk(bag, 2)
    with BagReader(bag) as reader:
        got = [(t, s) for t, _, s, _ in reader.raw_messages()]
        decoded = [(t, s) for t, s, _ in reader.messages()]
        (record, again) = reader.skipped  # once per pass over the bag
    lost = set(everything) - set(got)
    assert 0 < len(lost) <= 3 and set(got) <= set(everything)
    assert decoded == got == [m for m in everything if m not in lost]  # order kept
    assert f"bag.mcap byte {offset} (chunk" in record.where and str(record) == str(again)
    assert "OverflowError" in record.error and "\n" not in str(record)


def test_undecodable_message_is_skipped(tmp_path: Path) -> None:
    kit = rosbags_kit()
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        bag.write("/note", 1, kit.make("std_msgs/msg/String", data="before"))
        bag.write_raw("/note", "std_msgs/msg/String", 2, b"\x00\x01\x00\x00\xff\xff\xff\x7f")
        bag.write("/note", 3, kit.make("std_msgs/msg/String", data="after"))
    with BagReader(path) as reader:
        assert [m.data for _, _, m in reader.messages()] == ["before", "after"]
        (record,) = reader.skipped
    assert "/note message at log time 2" in record.where


def test_unreadable_bag_is_one_line_bag_error(tmp_path: Path, sim_bag: Path) -> None:
    import shutil

    bag = Path(shutil.copytree(sim_bag, tmp_path / "bag"))
    mcap = bag / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[:-5000])  # no footer, no summary
    with pytest.raises(BagError, match="cannot open bag") as err:
        BagReader(bag)
    assert "\n" not in str(err.value)


def test_fault_with_nothing_readable_after_it_names_the_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sqlite3 and unindexed MCAP have no chunk index to resume from: one line, with where.
    path = tmp_path / "bag"
    write_small_bag(path, "sqlite3")
    reader = BagReader(path)
    real = reader._reader.messages

    def failing(*args: object, **kwargs: object):
        for k, item in enumerate(real(*args, **kwargs)):
            if k == 2:
                raise OverflowError("cannot fit 'int' into an index-sized integer")
            yield item

    monkeypatch.setattr(reader._reader, "messages", failing)
    got = []
    with pytest.raises(BagError, match=r"corrupt after 2 messages \(log time 1000000000\)") as err:
        got.extend(reader.raw_messages())
    assert len(got) == 2 and "OverflowError" in str(err.value) and "\n" not in str(err.value)
    reader.close()
