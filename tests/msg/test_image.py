"""Tests for ws3d_ros.msg.image: encodings, padding, byte order, Bayer, compression."""

from __future__ import annotations

import array
import struct
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from ws3d_ros.errors import MessageFormatError
from ws3d_ros.msg.image import (
    ENCODINGS,
    array_to_compressed,
    array_to_image,
    compressed_to_array,
    image_to_array,
    image_to_rgb8,
    to_rgb8,
)
from ws3d_ros.msg.kit import MessageKit, rclpy_kit, rosbags_kit, stamp_to_ns, typestore

KITS = [rosbags_kit(), rclpy_kit()]
kits = pytest.mark.parametrize("kit", KITS, ids=lambda k: k.flavour)

REQUIRED = (
    "rgb8 bgr8 rgba8 bgra8 mono8 mono16 8UC1 8UC3 16UC1 32FC1 "
    "bayer_rggb8 bayer_bggr8 bayer_gbrg8 bayer_grbg8"
).split()


def random_image(encoding: str, h: int = 5, w: int = 7, seed: int = 0) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    shape = (h, w) if channels == 1 else (h, w, channels)
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        return rng.normal(size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def raw_image(
    kit: MessageKit, encoding: str, h: int, w: int, step: int, data: bytes, big: bool = False
) -> Any:
    return kit.make(
        "sensor_msgs/msg/Image",
        header=kit.header("cam", 1),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=int(big),
        step=step,
        data=kit.uint8_array(data),
    )


def test_required_encodings_present() -> None:
    for name in REQUIRED:
        assert name in ENCODINGS
    assert ENCODINGS["mono16"] == (np.dtype(np.uint16), 1)
    assert ENCODINGS["bgra8"] == (np.dtype(np.uint8), 4)
    assert ENCODINGS["32FC1"] == (np.dtype(np.float32), 1)
    assert ENCODINGS["bayer_rggb16"] == (np.dtype(np.uint16), 1)


@kits
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_round_trips(kit: MessageKit, encoding: str) -> None:
    a = random_image(encoding, seed=len(encoding))
    msg = array_to_image(a, encoding, frame_id="cam", stamp_ns=77, kit=kit)
    assert msg.encoding == encoding
    assert msg.header.frame_id == "cam" and stamp_to_ns(msg.header.stamp) == 77
    assert msg.step == a.shape[1] * a.itemsize * (a.shape[2] if a.ndim == 3 else 1)
    back = image_to_array(msg)
    assert back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)
    rgb = image_to_rgb8(msg)
    assert rgb.shape == (*a.shape[:2], 3) and rgb.dtype == np.uint8


def test_one_channel_accepts_trailing_axis() -> None:
    a = random_image("mono8")[..., None]
    msg = array_to_image(a, "mono8", frame_id="c", stamp_ns=0)
    np.testing.assert_array_equal(image_to_array(msg), a[..., 0])


@kits
def test_step_padding_is_a_zero_copy_view(kit: MessageKit) -> None:
    h, w, step = 3, 4, 16  # 4 bytes of padding per rgb8 row
    data = bytearray(step * h)
    for r in range(h):
        for c in range(w):
            data[r * step + 3 * c : r * step + 3 * c + 3] = bytes((r, c, r + c))
    msg = raw_image(kit, "rgb8", h, w, step, bytes(data))
    a = image_to_array(msg)
    assert a.shape == (3, 4, 3) and a.strides == (16, 3, 1)
    assert np.shares_memory(a, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(a[2, 3], [2, 3, 5])
    copied = image_to_array(msg, copy=True)
    assert not np.shares_memory(copied, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(copied, a)
    # Conversions handle the padded rows too.
    np.testing.assert_array_equal(image_to_rgb8(msg), a)
    bgr = raw_image(kit, "bgr8", h, w, step, bytes(data))
    np.testing.assert_array_equal(image_to_rgb8(bgr), a[..., ::-1])


def test_zero_copy_for_rclpy_and_rosbags_buffers() -> None:
    a = random_image("mono16")
    ros = array_to_image(a, "mono16", frame_id="c", stamp_ns=0, kit=rclpy_kit())
    assert isinstance(ros.data, array.array)
    assert np.shares_memory(image_to_array(ros), np.frombuffer(ros.data, np.uint8))
    bag = array_to_image(a, "mono16", frame_id="c", stamp_ns=0)
    assert np.shares_memory(bag.data, a)  # contiguous arrays are passed through
    assert np.shares_memory(image_to_array(bag), a)


@kits
def test_big_endian_16_bit(kit: MessageKit) -> None:
    values = np.array([[1, 256, 65535], [4660, 0, 513]], dtype=np.uint16)
    msg = raw_image(kit, "mono16", 2, 3, 6, values.astype(">u2").tobytes(), big=True)
    out = image_to_array(msg)
    assert out.dtype == np.dtype(np.uint16) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)
    # Encoding a big-endian array sets is_bigendian and reads back the same values.
    enc = array_to_image(values.astype(">u2"), "16UC1", frame_id="c", stamp_ns=0, kit=kit)
    assert int(enc.is_bigendian) == 1
    assert bytes(enc.data) == values.astype(">u2").tobytes()
    np.testing.assert_array_equal(image_to_array(enc), values)


def test_big_endian_float_with_padding() -> None:
    values = np.array([[1.5, -2.0], [np.inf, 3.25]], dtype=np.float32)
    data = b"".join(values[r].astype(">f4").tobytes() + b"\0\0" for r in range(2))
    msg = raw_image(rosbags_kit(), "32FC1", 2, 2, 10, data, big=True)
    np.testing.assert_array_equal(image_to_array(msg), values)


def bayer_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image with a ROS Bayer pattern (letters = top-left 2x2 block)."""
    channel = {"r": 0, "g": 1, "b": 2}
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[pattern[k]]]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_red_comes_back_red(pattern: str) -> None:
    red = np.zeros((16, 20, 3), np.uint8)
    red[..., 0] = 255
    msg = array_to_image(bayer_mosaic(red, pattern), f"bayer_{pattern}8", frame_id="c", stamp_ns=0)
    rgb = image_to_rgb8(msg)
    inner = rgb[2:-2, 2:-2].reshape(-1, 3)
    np.testing.assert_array_equal(inner, np.tile([255, 0, 0], (len(inner), 1)))


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_16_bit_colour(pattern: str) -> None:
    colour = np.broadcast_to(np.array([51400, 25700, 12850], np.uint16), (12, 12, 3))
    msg = array_to_image(
        bayer_mosaic(colour, pattern), f"bayer_{pattern}16", frame_id="c", stamp_ns=0
    )
    np.testing.assert_array_equal(image_to_rgb8(msg)[5, 5], [200, 100, 50])


def test_colour_conversions() -> None:
    rgb = random_image("rgb8", seed=4)
    alpha = np.full((*rgb.shape[:2], 1), 9, np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[..., ::-1], alpha], axis=2),
        "8UC3": rgb[..., ::-1],  # OpenCV order
        "8UC4": np.concatenate([rgb[..., ::-1], alpha], axis=2),
        "rgb16": rgb.astype(np.uint16) * 257,
        "bgra16": np.concatenate([rgb[..., ::-1], alpha], axis=2).astype(np.uint16) * 257,
    }
    for encoding, a in cases.items():
        msg = array_to_image(np.ascontiguousarray(a), encoding, frame_id="c", stamp_ns=0)
        np.testing.assert_array_equal(image_to_rgb8(msg), rgb, err_msg=encoding)


def test_mono_replicated_and_normalised() -> None:
    gray = random_image("mono8", seed=2)
    rgb = image_to_rgb8(array_to_image(gray, "mono8", frame_id="c", stamp_ns=0))
    np.testing.assert_array_equal(rgb, np.repeat(gray[..., None], 3, axis=2))
    depth = np.array([[1000, 2000], [3000, 1000]], np.uint16)
    for enc in ("mono16", "16UC1"):
        out = image_to_rgb8(array_to_image(depth, enc, frame_id="c", stamp_ns=0))
        np.testing.assert_array_equal(out[..., 0], [[0, 128], [255, 0]])
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
    f = np.array([[np.nan, 0.5], [1.5, np.inf]], np.float32)
    out = image_to_rgb8(array_to_image(f, "32FC1", frame_id="c", stamp_ns=0))
    np.testing.assert_array_equal(out[..., 1], [[0, 0], [255, 0]])
    flat = np.full((2, 2), 7.0, np.float32)
    assert image_to_rgb8(array_to_image(flat, "32FC1", frame_id="c", stamp_ns=0)).max() == 0
    nan = np.full((2, 2), np.nan, np.float32)
    assert image_to_rgb8(array_to_image(nan, "32FC1", frame_id="c", stamp_ns=0)).max() == 0


def test_empty_image() -> None:
    msg = array_to_image(np.zeros((0, 4, 3), np.uint8), "rgb8", frame_id="c", stamp_ns=0)
    assert image_to_array(msg).shape == (0, 4, 3)
    assert image_to_rgb8(msg).shape == (0, 4, 3)


def test_case_insensitive_encoding_lookup() -> None:
    msg = raw_image(rosbags_kit(), "RGB8", 1, 1, 3, b"\x01\x02\x03")
    np.testing.assert_array_equal(image_to_array(msg), [[[1, 2, 3]]])


@pytest.mark.parametrize(
    ("encoding", "h", "w", "step", "nbytes", "match"),
    [
        ("yuv422", 2, 2, 4, 8, "unsupported image encoding 'yuv422'.*rgb8.*mono16"),
        ("rgb8", 2, 2, 5, 10, "step 5 < width 2"),
        ("mono16", 2, 3, 6, 11, "len\\(data\\) = 11"),
    ],
)
def test_malformed_images(
    encoding: str, h: int, w: int, step: int, nbytes: int, match: str
) -> None:
    msg = raw_image(rosbags_kit(), encoding, h, w, step, bytes(nbytes))
    with pytest.raises(MessageFormatError, match=match):
        image_to_array(msg)


def test_longer_data_is_accepted() -> None:
    msg = raw_image(rosbags_kit(), "mono8", 2, 2, 2, bytes(range(6)))
    np.testing.assert_array_equal(image_to_array(msg), [[0, 1], [2, 3]])


@pytest.mark.parametrize(
    ("array", "encoding", "match"),
    [
        (np.zeros((2, 2, 3), np.uint8), "mono8", "shape"),
        (np.zeros((2, 2), np.uint8), "rgb8", "\\(H, W, 3\\)"),
        (np.zeros((2, 2), np.float32), "mono16", "uint16"),
        (np.zeros((2, 2), np.int16), "16UC1", "uint16"),
        (np.zeros((2, 2), np.uint8), "nv12", "unsupported"),
    ],
)
def test_array_to_image_validates(array: np.ndarray, encoding: str, match: str) -> None:
    with pytest.raises(MessageFormatError, match=match):
        array_to_image(array, encoding, frame_id="c", stamp_ns=0)


def test_image_serialises_with_typestore() -> None:
    a = random_image("bgr8")
    msg = array_to_image(a, "bgr8", frame_id="c", stamp_ns=5)
    store = typestore()
    back = store.deserialize_cdr(
        store.serialize_cdr(msg, "sensor_msgs/msg/Image"), "sensor_msgs/msg/Image"
    )
    np.testing.assert_array_equal(image_to_array(back), a)


# --------------------------------------------------------------------------- compressed


def smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=2).clip(0, 255).astype(np.uint8)


@kits
def test_png_round_trip_is_exact(kit: MessageKit) -> None:
    rgb = random_image("rgb8", h=20, w=30, seed=9)
    msg = array_to_compressed(rgb, "png", frame_id="cam", stamp_ns=3, kit=kit)
    assert msg.format == "rgb8; png compressed bgr8"
    assert msg.header.frame_id == "cam"
    np.testing.assert_array_equal(compressed_to_array(msg), rgb)
    np.testing.assert_array_equal(to_rgb8(msg), rgb)


@kits
def test_jpeg_round_trip_is_close(kit: MessageKit) -> None:
    rgb = smooth_rgb()
    msg = array_to_compressed(rgb, frame_id="cam", stamp_ns=3, kit=kit, quality=95)
    assert msg.format == "rgb8; jpeg compressed bgr8"
    assert bytes(msg.data[:2]) == b"\xff\xd8"
    out = compressed_to_array(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 3.0
    # Colour order survives (a channel swap would be far off).
    assert np.abs(out[..., 0].astype(int) - rgb[..., 0]).mean() < 3.0
    low = array_to_compressed(rgb, "jpg", frame_id="c", stamp_ns=0, kit=kit, quality=10)
    assert len(low.data) < len(msg.data)


def test_mono_compression() -> None:
    gray = random_image("mono8", h=9, w=11, seed=1)
    msg = array_to_compressed(gray, "png", frame_id="c", stamp_ns=0)
    assert msg.format == "mono8; png compressed mono8"
    np.testing.assert_array_equal(compressed_to_array(msg), gray)
    np.testing.assert_array_equal(to_rgb8(msg), np.repeat(gray[..., None], 3, axis=2))
    deep = np.array([[0, 1000], [65535, 300]], np.uint16)
    msg16 = array_to_compressed(deep, "png", frame_id="c", stamp_ns=0)
    assert msg16.format == "mono16; png compressed mono16"
    out = compressed_to_array(msg16)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, deep)
    np.testing.assert_array_equal(to_rgb8(msg16)[..., 0], [[0, 4], [255, 1]])


def test_compressed_depth_payloads() -> None:
    depth = np.array([[0, 1500], [2500, 4000]], np.uint16)
    ok, png = cv2.imencode(".png", depth)
    assert ok
    header = struct.pack("<iff", 0, 0.0, 0.0)
    msg = rosbags_kit().make(
        "sensor_msgs/msg/CompressedImage",
        format="16UC1; compressedDepth png",
        data=header + png.tobytes(),
    )
    np.testing.assert_array_equal(compressed_to_array(msg), depth)
    # 32FC1: inverse-depth quantisation depth = a / (q - b); q == 0 means invalid.
    a, b = 100.0, -10.0
    q = np.array([[0, 90], [40, 15]], np.uint16)  # -> nan, 1.0, 2.0, 4.0
    ok, png = cv2.imencode(".png", q)
    msg32 = rosbags_kit().make(
        "sensor_msgs/msg/CompressedImage",
        format="32FC1; compressedDepth png",
        data=struct.pack("<iff", 0, a, b) + png.tobytes(),
    )
    np.testing.assert_allclose(compressed_to_array(msg32), [[np.nan, 1.0], [2.0, 4.0]])
    short = rosbags_kit().make(
        "sensor_msgs/msg/CompressedImage", format="16UC1; compressedDepth", data=b"12"
    )
    with pytest.raises(MessageFormatError, match="header"):
        compressed_to_array(short)


@kits
def test_undecodable_compressed_raises(kit: MessageKit) -> None:
    bad = kit.make("sensor_msgs/msg/CompressedImage", format="jpeg", data=b"not a jpeg at all")
    with pytest.raises(MessageFormatError, match=r"cannot decode.*'jpeg'"):
        compressed_to_array(bad)
    empty = kit.make("sensor_msgs/msg/CompressedImage", format="png")
    with pytest.raises(MessageFormatError, match="empty"):
        compressed_to_array(empty)


@pytest.mark.parametrize(
    ("array", "fmt", "quality", "match"),
    [
        (np.zeros((4, 4, 3), np.uint8), "webp", 90, "unsupported compression"),
        (np.zeros((4, 4, 3), np.uint8), "jpeg", 101, "quality"),
        (np.zeros((4, 4, 3), np.float32), "png", 90, "float32"),
        (np.zeros((4, 4), np.uint16), "jpeg", 90, "uint16"),
        (np.zeros((4, 4, 4), np.uint8), "png", 90, "shape"),
        (np.zeros((0, 4, 3), np.uint8), "png", 90, "empty"),
    ],
)
def test_array_to_compressed_validates(
    array: np.ndarray, fmt: str, quality: int, match: str
) -> None:
    with pytest.raises(MessageFormatError, match=match):
        array_to_compressed(array, fmt, frame_id="c", stamp_ns=0, quality=quality)


@kits
def test_to_rgb8_dispatch(kit: MessageKit) -> None:
    rgb = random_image("rgb8", seed=5)
    image = array_to_image(rgb[..., ::-1].copy(), "bgr8", frame_id="c", stamp_ns=0, kit=kit)
    np.testing.assert_array_equal(to_rgb8(image), rgb)
    comp = array_to_compressed(rgb, "png", frame_id="c", stamp_ns=0, kit=kit)
    np.testing.assert_array_equal(to_rgb8(comp), rgb)
    with pytest.raises(MessageFormatError, match="Image or CompressedImage"):
        to_rgb8(kit.header("c", 0))


def test_to_rgb8_duck_typed() -> None:
    duck = SimpleNamespace(
        height=1, width=2, encoding="mono8", is_bigendian=0, step=2, data=b"\x00\xff"
    )
    np.testing.assert_array_equal(to_rgb8(duck), [[[0, 0, 0], [255, 255, 255]]])
    with pytest.raises(MessageFormatError):
        to_rgb8(SimpleNamespace(foo=1))
