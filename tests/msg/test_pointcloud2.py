"""Tests for ws3d_ros.msg.pointcloud2: layouts, zero-copy, validation, properties."""

from __future__ import annotations

import array
import struct
from typing import Any

import numpy as np
import pytest
import rclpy.serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ws3d_ros.errors import MessageFormatError
from ws3d_ros.msg.kit import MessageKit, rclpy_kit, rosbags_kit, stamp_to_ns, typestore
from ws3d_ros.msg.pointcloud2 import (
    POINTFIELD_DTYPES,
    array_to_cloud,
    cloud_dtype,
    cloud_to_array,
    cloud_xyz,
    structured,
    xyz_to_cloud,
)

KITS = [rosbags_kit(), rclpy_kit()]
kits = pytest.mark.parametrize("kit", KITS, ids=lambda k: k.flavour)

# PointField datatype -> struct format character (the naive reference reader).
STRUCT_CHARS = {1: "b", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 8: "d"}


def make_cloud(
    kit: MessageKit,
    fields: list[tuple[str, int, int, int]],
    *,
    height: int,
    width: int,
    point_step: int,
    row_step: int,
    data: bytes,
    is_bigendian: bool = False,
) -> Any:
    """A PointCloud2 with an explicit layout (name, offset, datatype, count)."""
    return kit.make(
        "sensor_msgs/msg/PointCloud2",
        header=kit.header("lidar", 7),
        height=height,
        width=width,
        fields=[
            kit.make("sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=c)
            for n, o, d, c in fields
        ],
        is_bigendian=is_bigendian,
        point_step=point_step,
        row_step=row_step,
        data=kit.uint8_array(data),
        is_dense=True,
    )


def naive_read(
    fields: list[tuple[str, int, int, int]],
    data: bytes,
    *,
    height: int,
    width: int,
    point_step: int,
    row_step: int,
    is_bigendian: bool,
) -> dict[str, list[list[tuple]]]:
    """Per-point struct.unpack_from, the way sensor_msgs_py's old read_points worked."""
    order = ">" if is_bigendian else "<"
    out: dict[str, list[list[tuple]]] = {name: [] for name, *_ in fields}
    for name, offset, datatype, count in fields:
        fmt = order + STRUCT_CHARS[datatype] * count
        for row in range(height):
            out[name].append(
                [
                    struct.unpack_from(fmt, data, row * row_step + col * point_step + offset)
                    for col in range(width)
                ]
            )
    return out


def rng_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def assert_same_cloud(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name])  # NaN == NaN here


# --------------------------------------------------------------------------- dtypes


def test_pointfield_dtypes() -> None:
    assert [POINTFIELD_DTYPES[i].name for i in range(1, 9)] == [
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "float32",
        "float64",
    ]


def test_cloud_dtype_offsets_count_and_order() -> None:
    class F:
        def __init__(self, name: str, offset: int, datatype: int, count: int) -> None:
            self.name, self.offset, self.datatype, self.count = name, offset, datatype, count

    dt = cloud_dtype([F("x", 0, 7, 1), F("rgb", 4, 2, 3), F("t", 8, 8, 1)], 20, True)
    assert dt.itemsize == 20
    assert dt.fields["x"][1] == 0 and dt.fields["t"][1] == 8
    assert dt.fields["x"][0] == np.dtype(">f4")
    assert dt.fields["rgb"][0].subdtype == (np.dtype("u1"), (3,))
    assert dt.fields["t"][0] == np.dtype(">f8")
    assert cloud_dtype([F("x", 0, 7, 1)], 4, False).fields["x"][0] == np.dtype("<f4")


# --------------------------------------------------------------------------- round trips


@kits
@pytest.mark.parametrize("datatype", sorted(POINTFIELD_DTYPES))
def test_round_trip_every_datatype(kit: MessageKit, datatype: int) -> None:
    dt = POINTFIELD_DTYPES[datatype]
    raw = rng_bytes(dt.itemsize * 2 * 9, seed=datatype)
    a = structured(
        v=np.frombuffer(raw, dt)[:9].copy(),
        w=np.frombuffer(raw, dt)[9:].copy(),
    )
    msg = array_to_cloud(a, frame_id="lidar", stamp_ns=12, kit=kit)
    assert msg.fields[0].datatype == datatype and msg.fields[1].datatype == datatype
    assert msg.point_step == 2 * dt.itemsize and msg.row_step == 9 * msg.point_step
    assert msg.height == 1 and msg.width == 9
    assert msg.header.frame_id == "lidar" and stamp_to_ns(msg.header.stamp) == 12
    assert_same_cloud(cloud_to_array(msg), a)


@kits
def test_round_trip_count_fields_and_padding(kit: MessageKit) -> None:
    dt = np.dtype(
        {
            "names": ["x", "y", "z", "rgb", "normal"],
            "formats": ["<f4", "<f4", "<f4", ("u1", (3,)), ("<f8", (3,))],
            "offsets": [0, 4, 8, 13, 16],
            "itemsize": 48,  # 8 bytes of trailing point padding
        }
    )
    a = np.zeros(5, dtype=dt)
    a["x"] = np.arange(5)
    a["rgb"] = np.arange(15).reshape(5, 3)
    a["normal"] = np.linspace(-1, 1, 15).reshape(5, 3)
    msg = array_to_cloud(a, frame_id="f", stamp_ns=0, kit=kit)
    assert msg.point_step == 48
    assert [(f.name, f.offset, f.count) for f in msg.fields] == [
        ("x", 0, 1),
        ("y", 4, 1),
        ("z", 8, 1),
        ("rgb", 13, 3),
        ("normal", 16, 3),
    ]
    back = cloud_to_array(msg)
    assert back.dtype == dt
    assert_same_cloud(back, a)
    np.testing.assert_array_equal(back["rgb"][4], [12, 13, 14])


@kits
def test_organised_round_trip(kit: MessageKit) -> None:
    a = structured(
        x=np.arange(12, dtype=np.float32),
        y=np.zeros(12, np.float32),
        z=np.ones(12, np.float32),
        ring=np.repeat(np.arange(3, dtype=np.uint16), 4),
    ).reshape(3, 4)
    msg = array_to_cloud(a, frame_id="f", stamp_ns=0, kit=kit)
    assert (msg.height, msg.width, msg.row_step) == (3, 4, 4 * 14)
    back = cloud_to_array(msg)
    assert back.shape == (3, 4)
    assert_same_cloud(back, a)
    np.testing.assert_array_equal(back["ring"][:, 0], [0, 1, 2])


@kits
def test_big_endian_decode_and_encode(kit: MessageKit) -> None:
    fields = [("x", 0, 7, 1), ("ring", 4, 4, 1), ("t", 8, 8, 1)]
    data = b"".join(struct.pack(">fHxxd", i + 0.5, 300 + i, -i / 3) for i in range(4))
    msg = make_cloud(
        kit, fields, height=1, width=4, point_step=16, row_step=64, data=data, is_bigendian=True
    )
    a = cloud_to_array(msg)
    np.testing.assert_array_equal(a["x"], [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(a["ring"], [300, 301, 302, 303])
    np.testing.assert_array_equal(a["t"], [0, -1 / 3, -2 / 3, -1])
    assert a.dtype.fields["ring"][0] == np.dtype(">u2")
    again = array_to_cloud(a, frame_id="f", stamp_ns=0, kit=kit)
    assert bool(again.is_bigendian) is True
    assert bytes(again.data) == data
    # Native-order input: little-endian cloud.
    little = array_to_cloud(a.astype(a.dtype.newbyteorder("<")), frame_id="f", stamp_ns=0, kit=kit)
    assert bool(little.is_bigendian) is False
    np.testing.assert_array_equal(cloud_to_array(little)["ring"], [300, 301, 302, 303])


@kits
def test_row_step_padding_is_a_strided_view(kit: MessageKit) -> None:
    fields = [("x", 0, 7, 1), ("i", 4, 2, 1)]
    point_step, width, height, row_step = 8, 3, 2, 30  # 6 bytes of row padding
    data = bytearray(row_step * height)
    for r in range(height):
        for c in range(width):
            struct.pack_into("<fB", data, r * row_step + c * point_step, 10 * r + c, r + c)
    msg = make_cloud(
        kit, fields, height=height, width=width, point_step=8, row_step=row_step, data=bytes(data)
    )
    a = cloud_to_array(msg)
    assert a.shape == (2, 3)
    assert a.strides == (row_step, point_step)
    np.testing.assert_array_equal(a["x"], [[0, 1, 2], [10, 11, 12]])
    np.testing.assert_array_equal(a["i"], [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(a["x"].reshape(-1), [0, 1, 2, 10, 11, 12])
    # Re-encoding compacts the rows and keeps the values.
    again = array_to_cloud(a, frame_id="f", stamp_ns=0, kit=kit)
    assert again.row_step == width * point_step
    assert_same_cloud(cloud_to_array(again), a)


@kits
def test_empty_clouds(kit: MessageKit) -> None:
    fields = [("x", 0, 7, 1)]
    empty = make_cloud(kit, fields, height=1, width=0, point_step=4, row_step=0, data=b"")
    a = cloud_to_array(empty)
    assert a.shape == (0,) and a.dtype.names == ("x",)
    organised = make_cloud(kit, fields, height=0, width=5, point_step=4, row_step=20, data=b"")
    assert cloud_to_array(organised).shape == (0, 5)
    msg = array_to_cloud(structured(x=np.zeros(0, np.float32)), frame_id="f", stamp_ns=0, kit=kit)
    assert msg.width == 0 and len(msg.data) == 0
    assert cloud_to_array(msg).shape == (0,)
    assert cloud_xyz(
        cloud_to_array(xyz_to_cloud(np.zeros((0, 3)), frame_id="f", stamp_ns=0))
    ).shape == (0, 3)


def test_copy_flag_gives_independent_writable_array() -> None:
    msg = xyz_to_cloud(np.ones((4, 3)), frame_id="f", stamp_ns=0)
    msg.data = np.frombuffer(bytes(msg.data), np.uint8)  # read-only backing
    view = cloud_to_array(msg)
    assert not view.flags.writeable
    copy = cloud_to_array(msg, copy=True)
    assert copy.flags.writeable and not np.shares_memory(copy, msg.data)
    copy["x"][:] = 5
    assert view["x"][0] == 1


# --------------------------------------------------------------------------- zero-copy


def test_zero_copy_rosbags_numpy_data() -> None:
    store = typestore()
    msg = xyz_to_cloud(np.random.default_rng(1).normal(size=(50, 3)), frame_id="f", stamp_ns=1)
    name = "sensor_msgs/msg/PointCloud2"
    # A deserialised rosbags message holds its uint8[] as a numpy array.
    back = store.deserialize_cdr(bytearray(store.serialize_cdr(msg, name)), name)
    assert isinstance(back.data, np.ndarray)
    a = cloud_to_array(back)
    assert np.shares_memory(a, back.data)
    back.data[0:4] = np.frombuffer(np.float32(123.0).tobytes(), np.uint8)
    assert a["x"][0] == 123.0


def test_zero_copy_rclpy_array_data() -> None:
    msg = xyz_to_cloud(np.ones((10, 3)), frame_id="f", stamp_ns=1, kit=rclpy_kit())
    assert isinstance(msg.data, array.array)
    a = cloud_to_array(msg)
    assert np.shares_memory(a, np.frombuffer(msg.data, np.uint8))
    msg.data[0:4] = array.array("B", np.float32(-7.0).tobytes())
    assert a["x"][0] == -7.0


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_zero_copy_plain_buffers(wrap: type) -> None:
    raw = struct.pack("<3f", 1, 2, 3) * 4
    buffer = wrap(raw)
    msg = make_cloud(
        rosbags_kit(),
        [("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1)],
        height=1,
        width=4,
        point_step=12,
        row_step=48,
        data=b"",
    )
    msg.data = buffer  # duck typing: any buffer
    a = cloud_to_array(msg)
    assert np.shares_memory(a, np.frombuffer(buffer, np.uint8))
    np.testing.assert_array_equal(cloud_xyz(a), [[1, 2, 3]] * 4)


def test_encode_passes_contiguous_array_without_copy() -> None:
    a = structured(x=np.arange(6, dtype=np.float32), i=np.arange(6, dtype=np.uint16))
    msg = array_to_cloud(a, frame_id="f", stamp_ns=0)
    assert np.shares_memory(msg.data, a)
    strided = a[::2]
    msg2 = array_to_cloud(strided, frame_id="f", stamp_ns=0)
    assert not np.shares_memory(msg2.data, a)
    assert_same_cloud(cloud_to_array(msg2), strided)


# --------------------------------------------------------------------------- rclpy / CDR


def test_cdr_round_trip_rosbags() -> None:
    store = typestore()
    a = structured(
        x=np.linspace(0, 1, 33, dtype=np.float32),
        y=np.zeros(33, np.float32),
        z=np.full(33, 2.5, np.float32),
        ring=np.arange(33, dtype=np.uint16),
        t=np.linspace(0, 0.1, 33),
    )
    msg = array_to_cloud(a, frame_id="lidar", stamp_ns=99)
    name = "sensor_msgs/msg/PointCloud2"
    back = store.deserialize_cdr(store.serialize_cdr(msg, name), name)
    assert back.header.frame_id == "lidar"
    assert_same_cloud(cloud_to_array(back), a)


def test_rclpy_cdr_round_trip_and_cross_flavour() -> None:
    """An rclpy cloud serialised by rclpy decodes identically through the typestore."""
    a = structured(x=np.arange(7, dtype=np.float32), label=np.arange(7, dtype=np.uint16))
    msg = array_to_cloud(a, frame_id="f", stamp_ns=3, kit=rclpy_kit())
    raw = rclpy.serialization.serialize_message(msg)
    back_rclpy = rclpy.serialization.deserialize_message(
        raw, rclpy_kit().cls("sensor_msgs/PointCloud2")
    )
    assert_same_cloud(cloud_to_array(back_rclpy), a)
    back_rosbags = typestore().deserialize_cdr(raw, "sensor_msgs/msg/PointCloud2")
    assert_same_cloud(cloud_to_array(back_rosbags), a)


# --------------------------------------------------------------------------- malformed


GOOD = dict(height=2, width=3, point_step=8, row_step=24)
GOOD_FIELDS = [("x", 0, 7, 1), ("i", 4, 6, 1)]


@kits
@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(data_len=47), "len\\(data\\)"),
        (dict(data_len=49), "len\\(data\\)"),
        (dict(row_step=20, data_len=40), "row_step"),
        (dict(fields=[("x", 0, 7, 1), ("i", 6, 6, 1)]), "overflows point_step"),
        (dict(fields=[("x", 0, 7, 1), ("x", 4, 6, 1)]), "duplicate"),
        (dict(fields=[("x", 0, 7, 1), ("i", 2, 6, 1)]), "overlap"),
        (dict(fields=[("x", 0, 9, 1)]), "unknown datatype 9"),
        (dict(fields=[("x", 0, 0, 1)]), "unknown datatype 0"),
        (dict(fields=[("x", 0, 7, 0)]), "count 0"),
        (dict(fields=[("x", 0, 7, 3)]), "overflows"),
        (dict(fields=[("", 0, 7, 1)]), "name"),
        (dict(point_step=0, row_step=0, data_len=0), "point_step"),
    ],
)
def test_malformed_clouds_raise(kit: MessageKit, change: dict[str, Any], match: str) -> None:
    layout = {**GOOD, **{k: v for k, v in change.items() if k in GOOD}}
    data_len = change.get("data_len", layout["row_step"] * layout["height"])
    msg = make_cloud(kit, change.get("fields", GOOD_FIELDS), data=bytes(data_len), **layout)
    with pytest.raises(MessageFormatError, match=match):
        cloud_to_array(msg)


def test_not_a_cloud() -> None:
    with pytest.raises(MessageFormatError, match="PointCloud2"):
        cloud_to_array(object())


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros(3, np.float32), "structured"),
        ([1, 2], "structured"),
        (np.zeros(3, [("x", "c8")]), "complex64|cannot hold"),
        (np.zeros(3, [("x", "<i8")]), "int64"),
        (np.zeros(3, [("x", "?")]), "bool"),
        (np.zeros(3, [("x", "U4")]), "cannot hold"),
        (np.zeros(3, [("x", "f2")]), "float16"),
        (np.zeros(3, [("x", "<f4"), ("y", ">f4")]), "mixes"),
        (np.zeros((2, 2, 2), [("x", "<f4")]), "1-D or 2-D"),
        (np.zeros(3, [("x", "<f4", (2, 2))]), "subarray"),
        (np.zeros(3, [("x", [("a", "<f4")])]), "cannot hold"),
    ],
)
def test_array_to_cloud_rejects(array: Any, match: str) -> None:
    with pytest.raises(MessageFormatError, match=match):
        array_to_cloud(array, frame_id="f", stamp_ns=0)


def test_array_to_cloud_rejects_overlapping_dtype() -> None:
    dt = np.dtype(
        {"names": ["a", "b"], "formats": ["<f4", "<f4"], "offsets": [0, 2], "itemsize": 8}
    )
    with pytest.raises(MessageFormatError, match="overlap"):
        array_to_cloud(np.zeros(2, dt), frame_id="f", stamp_ns=0)


def test_single_byte_fields_take_any_order() -> None:
    a = np.zeros(2, [("a", "u1"), ("b", ">u2"), ("c", "i1")])
    msg = array_to_cloud(a, frame_id="f", stamp_ns=0)
    assert bool(msg.is_bigendian) is True


# --------------------------------------------------------------------------- helpers


@kits
def test_xyz_to_cloud_with_extras(kit: MessageKit) -> None:
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(20, 3))
    intensity = rng.random(20).astype(np.float32)
    ring = rng.integers(0, 64, 20).astype(np.uint16)
    rgb = rng.integers(0, 255, (20, 3)).astype(np.uint8)
    msg = xyz_to_cloud(
        xyz, frame_id="velo", stamp_ns=5, kit=kit, intensity=intensity, ring=ring, rgb=rgb
    )
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "ring", "rgb"]
    assert [f.datatype for f in msg.fields] == [7, 7, 7, 7, 4, 2]
    assert msg.fields[5].count == 3
    assert msg.is_dense is True
    a = cloud_to_array(msg)
    np.testing.assert_array_equal(cloud_xyz(a), xyz.astype(np.float32))
    np.testing.assert_array_equal(a["intensity"], intensity)
    np.testing.assert_array_equal(a["ring"], ring)
    np.testing.assert_array_equal(a["rgb"], rgb)


def test_is_dense_computed_and_overridable() -> None:
    xyz = np.ones((4, 3))
    xyz[2, 1] = np.nan
    assert xyz_to_cloud(xyz, frame_id="f", stamp_ns=0).is_dense is False
    a = structured(x=np.ones(3, np.float32), v=np.array([np.nan] * 3, np.float32))
    assert array_to_cloud(a, frame_id="f", stamp_ns=0).is_dense is True
    assert array_to_cloud(a, frame_id="f", stamp_ns=0, is_dense=False).is_dense is False


@pytest.mark.parametrize(
    ("xyz", "extra", "match"),
    [
        (np.zeros((4, 2)), {}, "shape \\(N, 3\\)"),
        (np.zeros(3), {}, "shape \\(N, 3\\)"),
        (np.zeros((4, 3)), {"i": np.zeros(3)}, "'i'"),
        (np.zeros((4, 3)), {"x": np.zeros(4)}, "clash"),
        (np.zeros((4, 3)), {"i": np.zeros(4, np.int64)}, "int64"),
    ],
)
def test_xyz_to_cloud_rejects(xyz: np.ndarray, extra: dict, match: str) -> None:
    with pytest.raises(MessageFormatError, match=match):
        xyz_to_cloud(xyz, frame_id="f", stamp_ns=0, **extra)


def test_cloud_xyz_fast_and_general_paths() -> None:
    # Adjacent float32 x, y, z with point padding, organised, big-endian.
    dt = np.dtype(
        {"names": ["x", "y", "z"], "formats": [">f4"] * 3, "offsets": [4, 8, 12], "itemsize": 20}
    )
    a = np.zeros((2, 3), dt)
    a["x"], a["y"], a["z"] = np.arange(6).reshape(2, 3), 1, 2
    out = cloud_xyz(a)
    assert out.shape == (6, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out[:, 0], np.arange(6))
    np.testing.assert_array_equal(out[:, 1:], [[1, 2]] * 6)
    # Non-adjacent, mixed dtypes: the general path.
    b = structured(
        z=np.arange(3, dtype=np.float64), y=np.ones(3, np.int16), x=np.full(3, 7, np.uint8)
    )
    np.testing.assert_array_equal(cloud_xyz(b, dtype=np.float64), [[7, 1, 0], [7, 1, 1], [7, 1, 2]])
    assert cloud_xyz(b, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("shape", [(7,), (3, 5)])
def test_cloud_xyz_unaligned_packed_layout(order: str, shape: tuple[int, ...]) -> None:
    # x, y, z at odd offsets in 13-byte points: the opaque block-copy path.
    dt = np.dtype([("i", "u1"), ("x", order + "f4"), ("y", order + "f4"), ("z", order + "f4")])
    a = np.zeros(shape, dt)
    rng = np.random.default_rng(0)
    for name in "xyz":
        a[name] = rng.normal(size=shape)
    expected = np.stack([a[n].reshape(-1) for n in "xyz"], axis=1)
    for out_dtype in (np.float32, np.float64):
        out = cloud_xyz(a, dtype=out_dtype)
        assert out.dtype == out_dtype and out.flags.c_contiguous and out.dtype.isnative
        np.testing.assert_array_equal(out, expected.astype(out_dtype))
    # A strided view with row padding takes the same path.
    padded = np.zeros((3, 6), dt)[:, :5]
    padded["y"] = 2.0
    np.testing.assert_array_equal(cloud_xyz(padded)[:, 1], np.full(15, 2.0))


def test_cloud_xyz_rejects() -> None:
    with pytest.raises(MessageFormatError, match="structured"):
        cloud_xyz(np.zeros((3, 3)))
    with pytest.raises(MessageFormatError, match="'z'"):
        cloud_xyz(structured(x=np.zeros(2), y=np.zeros(2)))
    with pytest.raises(MessageFormatError, match="subarray"):
        cloud_xyz(structured(x=np.zeros((2, 2)), y=np.zeros(2), z=np.zeros(2)))


def test_structured() -> None:
    s = structured(a=np.arange(3, dtype=np.int8), b=np.ones((3, 2), np.float64))
    assert s.dtype.itemsize == 1 + 16
    assert s.dtype.fields["b"][0].subdtype == (np.dtype("f8"), (2,))
    np.testing.assert_array_equal(s["a"], [0, 1, 2])
    with pytest.raises(MessageFormatError, match="at least one"):
        structured()
    with pytest.raises(MessageFormatError, match="'b' has 2 rows"):
        structured(a=np.zeros(3), b=np.zeros(2))
    with pytest.raises(MessageFormatError, match="shape"):
        structured(a=np.zeros((3, 2, 2)))


# --------------------------------------------------------------------------- properties


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid layout: fields in shuffled offset order with gaps, padding, endianness."""
    n = draw(st.integers(1, 5))
    names = draw(
        st.lists(
            st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    datatypes = draw(st.lists(st.sampled_from(sorted(POINTFIELD_DTYPES)), min_size=n, max_size=n))
    counts = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    order = draw(st.permutations(range(n)))
    offset = 0
    fields = []
    for i in order:  # memory order differs from declaration order
        offset += gaps[i]
        fields.append((names[i], offset, datatypes[i], counts[i]))
        offset += POINTFIELD_DTYPES[datatypes[i]].itemsize * counts[i]
    fields.sort(key=lambda f: names.index(f[0]))
    point_step = offset + draw(st.integers(0, 5))
    height = draw(st.integers(1, 4))
    width = draw(st.integers(0, 6))
    row_step = width * point_step + draw(st.integers(0, 7))
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(
        fields=fields,
        point_step=point_step,
        height=height,
        width=width,
        row_step=row_step,
        is_bigendian=draw(st.booleans()),
        data=rng_bytes(row_step * height, seed),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=layouts(), flavour=st.sampled_from(["rosbags", "rclpy"]))
def test_decode_matches_naive_reader(layout: dict[str, Any], flavour: str) -> None:
    kit = rosbags_kit() if flavour == "rosbags" else rclpy_kit()
    msg = make_cloud(kit, **layout)
    a = cloud_to_array(msg)
    height, width = layout["height"], layout["width"]
    assert a.shape == ((width,) if height == 1 else (height, width))
    assert a.dtype.itemsize == layout["point_step"]
    if a.size:
        assert np.shares_memory(a, np.frombuffer(msg.data, np.uint8))
    grid = a.reshape(height, width)
    expected = naive_read(
        layout["fields"],
        layout["data"],
        **{k: layout[k] for k in ("height", "width", "point_step", "row_step", "is_bigendian")},
    )
    for name, _offset, datatype, count in layout["fields"]:
        want = np.array(expected[name], dtype=POINTFIELD_DTYPES[datatype]).reshape(
            (height, width) if count == 1 else (height, width, count)
        )
        np.testing.assert_array_equal(grid[name], want)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=layouts(), flavour=st.sampled_from(["rosbags", "rclpy"]))
def test_encode_decode_identity(layout: dict[str, Any], flavour: str) -> None:
    kit = rosbags_kit() if flavour == "rosbags" else rclpy_kit()
    source = cloud_to_array(make_cloud(rosbags_kit(), **layout))
    msg = array_to_cloud(source, frame_id="f", stamp_ns=1, kit=kit)
    multibyte = any(POINTFIELD_DTYPES[d].itemsize > 1 for _, _, d, _ in layout["fields"])
    assert bool(msg.is_bigendian) == (layout["is_bigendian"] and multibyte)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == layout["fields"]
    back = cloud_to_array(msg)
    if layout["is_bigendian"] and not multibyte:
        # Single-byte fields carry no order; compare against the little-endian dtype.
        source = source.astype(back.dtype)
    assert_same_cloud(back, source)
