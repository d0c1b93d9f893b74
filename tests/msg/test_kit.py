"""Tests for ws3d_ros.msg.kit: flavours, typestore, stamps, type names."""

from __future__ import annotations

import array

import numpy as np
import pytest
import rclpy.serialization
from hypothesis import given
from hypothesis import strategies as st

from ws3d_ros.errors import MessageFormatError
from ws3d_ros.msg.kit import (
    TYPESTORE_DISTRO,
    MessageKit,
    byte_view,
    flavour_of,
    kit_for,
    msg_type_name,
    normalize_type_name,
    ns_to_sec_nsec,
    rclpy_kit,
    rosbags_kit,
    stamp_to_ns,
    typestore,
)

KITS = [rosbags_kit(), rclpy_kit()]


def test_typestore_is_cached_and_knows_project_packages() -> None:
    store = typestore()
    assert store is typestore()
    for name in (
        "sensor_msgs/msg/PointCloud2",
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CompressedImage",
        "sensor_msgs/msg/CameraInfo",
        "std_msgs/msg/Header",
        "std_msgs/msg/String",
        "geometry_msgs/msg/TransformStamped",
        "tf2_msgs/msg/TFMessage",
        "visualization_msgs/msg/MarkerArray",
        "diagnostic_msgs/msg/DiagnosticArray",
        "builtin_interfaces/msg/Time",
        "rosgraph_msgs/msg/Clock",
    ):
        assert name in store.types, name
    assert TYPESTORE_DISTRO == "kilted"


def test_kits_are_cached_and_flavoured() -> None:
    assert rosbags_kit() is rosbags_kit()
    assert rclpy_kit() is rclpy_kit()
    assert rosbags_kit().flavour == "rosbags"
    assert rclpy_kit().flavour == "rclpy"
    assert isinstance(rosbags_kit(), MessageKit)
    assert "rclpy" in repr(rclpy_kit())


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("sensor_msgs/PointCloud2", "sensor_msgs/msg/PointCloud2"),
        ("sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/PointCloud2"),
        (" std_msgs/Header ", "std_msgs/msg/Header"),
    ],
)
def test_normalize_type_name(given_name: str, expected: str) -> None:
    assert normalize_type_name(given_name) == expected


@pytest.mark.parametrize("bad", ["PointCloud2", "a//b", "a/b/c/d", ""])
def test_normalize_type_name_rejects(bad: str) -> None:
    with pytest.raises(MessageFormatError, match="type name"):
        normalize_type_name(bad)


@pytest.mark.parametrize("kit", KITS, ids=lambda k: k.flavour)
def test_cls_accepts_both_spellings(kit: MessageKit) -> None:
    a = kit.cls("sensor_msgs/PointCloud2")
    assert a is kit.cls("sensor_msgs/msg/PointCloud2")
    assert msg_type_name(a) == "sensor_msgs/msg/PointCloud2"
    with pytest.raises(MessageFormatError, match="no_such_pkg/msg/Nope"):
        kit.cls("no_such_pkg/Nope")


def test_rclpy_cls_is_the_generated_class() -> None:
    import sensor_msgs.msg

    assert rclpy_kit().cls("sensor_msgs/msg/Image") is sensor_msgs.msg.Image


@pytest.mark.parametrize("kit", KITS, ids=lambda k: k.flavour)
def test_time_and_header(kit: MessageKit) -> None:
    header = kit.header("lidar", 1_700_000_000_123_456_789)
    assert header.frame_id == "lidar"
    assert header.stamp.sec == 1_700_000_000
    assert header.stamp.nanosec == 123_456_789
    assert stamp_to_ns(header.stamp) == 1_700_000_000_123_456_789
    assert msg_type_name(header) == "std_msgs/msg/Header"
    assert msg_type_name(header.stamp) == "builtin_interfaces/msg/Time"
    assert flavour_of(header) == kit.flavour
    assert kit_for(header) is kit


@given(st.integers(min_value=-(2**31) * 10**9, max_value=(2**31 - 1) * 10**9 + 999_999_999))
def test_ns_round_trip(stamp_ns: int) -> None:
    sec, nanosec = ns_to_sec_nsec(stamp_ns)
    assert 0 <= nanosec < 1_000_000_000
    assert sec * 1_000_000_000 + nanosec == stamp_ns
    assert stamp_to_ns(rosbags_kit().time(stamp_ns)) == stamp_ns


def test_negative_stamp_floors() -> None:
    assert ns_to_sec_nsec(-1) == (-1, 999_999_999)
    assert stamp_to_ns(rclpy_kit().time(-1)) == -1


def test_stamp_out_of_range_and_bad_stamp() -> None:
    with pytest.raises(MessageFormatError, match="int32"):
        ns_to_sec_nsec(2**31 * 1_000_000_000)
    with pytest.raises(MessageFormatError, match="sec and nanosec"):
        stamp_to_ns(object())


def test_non_messages_are_rejected() -> None:
    with pytest.raises(MessageFormatError):
        msg_type_name(object())
    with pytest.raises(MessageFormatError):
        flavour_of(3)


@pytest.mark.parametrize("kit", KITS, ids=lambda k: k.flavour)
def test_make_fills_defaults_and_coerces(kit: MessageKit) -> None:
    info = kit.make(
        "sensor_msgs/CameraInfo",
        header=kit.header("cam", 5),
        width=np.int64(640),
        height=480,
        distortion_model="plumb_bob",
        d=np.array([0.1, -0.2, 0.0, 0.0, 0.01]),
        k=[500, 0, 320, 0, 500, 240, 0, 0, 1],  # ints into float64[9]
    )
    assert info.width == 640 and type(info.width) is int
    assert list(info.d) == pytest.approx([0.1, -0.2, 0.0, 0.0, 0.01])
    assert np.asarray(info.k).dtype == np.float64
    assert np.asarray(info.k)[0] == 500.0
    assert np.asarray(info.r).shape == (9,)  # default fixed array
    assert info.roi.do_rectify is False  # nested default
    assert info.binning_x == 0
    marker = kit.make(
        "visualization_msgs/msg/Marker", ns="a", scale=kit.make("geometry_msgs/Vector3")
    )
    assert list(marker.points) == []
    assert marker.scale.x == 0.0
    status = kit.make("diagnostic_msgs/msg/DiagnosticStatus", level=2, name="n")
    assert status.level in (2, b"\x02")


@pytest.mark.parametrize("kit", KITS, ids=lambda k: k.flavour)
def test_make_rejects_unknown_fields(kit: MessageKit) -> None:
    with pytest.raises(MessageFormatError, match="bogus"):
        kit.make("std_msgs/msg/Header", bogus=1)


def test_rosbags_uint8_array_is_a_view() -> None:
    raw = bytearray(b"\x01\x02\x03\x04")
    view = rosbags_kit().uint8_array(raw)
    assert isinstance(view, np.ndarray) and view.dtype == np.uint8
    assert np.shares_memory(view, np.frombuffer(raw, np.uint8))
    arr = np.arange(6, dtype=np.uint8)
    assert rosbags_kit().uint8_array(arr) is arr


def test_rclpy_uint8_array_is_array_b() -> None:
    out = rclpy_kit().uint8_array(np.arange(5, dtype=np.uint8))
    assert isinstance(out, array.array) and out.typecode == "B"
    assert out.tolist() == [0, 1, 2, 3, 4]
    same = array.array("B", b"xyz")
    assert rclpy_kit().uint8_array(same) is same
    msg = rclpy_kit().make("sensor_msgs/msg/CompressedImage", data=same)
    assert msg.data is same  # stored behind the setter, no copy


@pytest.mark.parametrize(
    "buf",
    [
        b"\x00\x01\x02",
        bytearray(b"\x00\x01\x02"),
        memoryview(b"\x00\x01\x02"),
        array.array("B", [0, 1, 2]),
        np.array([0, 1, 2], dtype=np.uint8),
        [0, 1, 2],
        memoryview(b"\x00\x09\x01\x09\x02")[::2],  # non-contiguous: copied
    ],
)
def test_byte_view_inputs(buf: object) -> None:
    np.testing.assert_array_equal(byte_view(buf), [0, 1, 2])


def test_byte_view_rejects_non_bytes() -> None:
    with pytest.raises(MessageFormatError, match="byte buffer"):
        byte_view(["a", "b"])


def test_rosbags_messages_serialise_with_typestore() -> None:
    kit, store = rosbags_kit(), typestore()
    msgs = [
        kit.header("base", 42),
        kit.make("sensor_msgs/msg/CameraInfo", k=list(range(9)), d=[0.5, 0.25]),
        kit.make("visualization_msgs/msg/Marker", text="car"),
        kit.make(
            "diagnostic_msgs/msg/DiagnosticArray",
            status=[kit.make("diagnostic_msgs/msg/DiagnosticStatus", level=1, name="x")],
        ),
        kit.make(
            "tf2_msgs/msg/TFMessage",
            transforms=[kit.make("geometry_msgs/msg/TransformStamped", child_frame_id="c")],
        ),
        kit.make("sensor_msgs/msg/Image", encoding="mono8", data=b"\x01\x02"),
    ]
    for msg in msgs:
        name = msg_type_name(msg)
        back = store.deserialize_cdr(store.serialize_cdr(msg, name), name)
        assert msg_type_name(back) == name
    back = store.deserialize_cdr(
        store.serialize_cdr(msgs[1], msg_type_name(msgs[1])), msg_type_name(msgs[1])
    )
    np.testing.assert_array_equal(back.k, np.arange(9.0))
    np.testing.assert_array_equal(back.d, [0.5, 0.25])


def test_rclpy_cdr_reads_back_with_typestore() -> None:
    """Both flavours agree on the wire: rclpy's CDR bytes decode in the typestore."""
    kit = rclpy_kit()
    msg = kit.make(
        "sensor_msgs/msg/Image",
        header=kit.header("cam", 3_000_000_007),
        height=1,
        width=3,
        encoding="mono8",
        step=3,
        data=b"\x07\x08\x09",
    )
    raw = rclpy.serialization.serialize_message(msg)
    back = typestore().deserialize_cdr(raw, "sensor_msgs/msg/Image")
    assert back.header.frame_id == "cam"
    assert stamp_to_ns(back.header.stamp) == 3_000_000_007
    np.testing.assert_array_equal(back.data, [7, 8, 9])
