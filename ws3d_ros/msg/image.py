"""sensor_msgs/Image and CompressedImage <-> numpy.

Contract:
- :data:`ENCODINGS` maps every supported ``encoding`` string to its
  ``(dtype, channels)``: the colour encodings (``rgb8``, ``bgr8``, ``rgba8``,
  ``bgra8`` and their 16-bit twins), ``mono8``/``mono16``, the Bayer mosaics
  (8 and 16 bit) and the OpenCV-style ``{8U,8S,16U,16S,32S,32F,64F}C{1..4}``.
- :func:`image_to_array` returns ``(H, W)`` for one channel, else
  ``(H, W, C)``, in the message's own encoding and dtype: a zero-copy strided
  view of ``msg.data`` honouring ``step`` padding, except that multi-byte data
  of the other byte order is returned as a native-order copy.
- :func:`image_to_rgb8` / :func:`to_rgb8` give ``(H, W, 3)`` uint8 RGB for any
  supported encoding: channel order converted, mono replicated, Bayer
  demosaiced with OpenCV (whose Bayer names are shifted by one pixel against
  ROS's), 16-bit colour scaled by 1/257, other non-uint8 single-channel data
  (``mono16``, ``16UC1``, ``32FC1`` ...) min-max normalised over finite values.
  ``nC3``/``nC4`` encodings are taken as BGR/BGRA, OpenCV's order.
  An image already ``rgb8`` and contiguous comes back as a view of ``msg.data``.
- CompressedImage: :func:`compressed_to_array` decodes with ``cv2.imdecode``
  to RGB ``(H, W, 3)`` uint8 or mono ``(H, W)`` (uint8, or uint16 for 16-bit
  PNG); ``compressedDepth`` payloads (image_transport's depth plugin) are
  unwrapped too. :func:`array_to_compressed` writes ``jpeg``/``png`` with
  compressed_image_transport's format strings (e.g. ``"rgb8; jpeg compressed bgr8"``).
- Bad input raises :class:`~ws3d_ros.errors.MessageFormatError` naming the problem.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

import cv2
import numpy as np

from ws3d_ros.errors import MessageFormatError
from ws3d_ros.msg.kit import MessageKit, byte_view, msg_type_name, rosbags_kit

__all__ = [
    "ENCODINGS",
    "array_to_compressed",
    "array_to_image",
    "compressed_to_array",
    "image_to_array",
    "image_to_rgb8",
    "to_rgb8",
]

_U8, _U16 = np.dtype(np.uint8), np.dtype(np.uint16)

ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (_U8, 3),
    "bgr8": (_U8, 3),
    "rgba8": (_U8, 4),
    "bgra8": (_U8, 4),
    "rgb16": (_U16, 3),
    "bgr16": (_U16, 3),
    "rgba16": (_U16, 4),
    "bgra16": (_U16, 4),
    "mono8": (_U8, 1),
    "mono16": (_U16, 1),
    **{f"bayer_{p}8": (_U8, 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": (_U16, 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{
        f"{depth}C{c}": (np.dtype(dt), c)
        for depth, dt in (
            ("8U", np.uint8),
            ("8S", np.int8),
            ("16U", np.uint16),
            ("16S", np.int16),
            ("32S", np.int32),
            ("32F", np.float32),
            ("64F", np.float64),
        )
        for c in (1, 2, 3, 4)
    },
}
_BY_LOWER = {name.lower(): name for name in ENCODINGS}

# ROS names the top-left 2x2 block; OpenCV names the 2nd row's pixels 2..3.
_BAYER_TO_RGB = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}
_NATIVE_BIG = sys.byteorder == "big"


def _encoding(name: Any) -> str:
    name = str(name)
    if name in ENCODINGS:
        return name
    canonical = _BY_LOWER.get(name.lower())
    if canonical is None:
        raise MessageFormatError(
            f"unsupported image encoding {name!r}; supported: {', '.join(ENCODINGS)}"
        )
    return canonical


def image_to_array(msg: Any, *, copy: bool = False) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` array of an Image in its own encoding (native byte order)."""
    try:
        encoding = _encoding(msg.encoding)
        height, width, step = int(msg.height), int(msg.width), int(msg.step)
        big = bool(msg.is_bigendian)
        data = msg.data
    except AttributeError as exc:
        raise MessageFormatError(f"not a sensor_msgs/Image: {exc}") from None
    dtype, channels = ENCODINGS[encoding]
    pixel_bytes = dtype.itemsize * channels
    if height < 0 or width < 0:
        raise MessageFormatError(f"negative image size {height}x{width}")
    if step < width * pixel_bytes:
        raise MessageFormatError(
            f"step {step} < width {width} * {pixel_bytes} bytes per {encoding} pixel"
        )
    buf = byte_view(data)
    if buf.size < step * height:
        raise MessageFormatError(
            f"len(data) = {buf.size} bytes < step {step} * height {height} = {step * height}"
        )
    shape: tuple[int, ...] = (height, width) if channels == 1 else (height, width, channels)
    swapped = dtype.itemsize > 1 and big != _NATIVE_BIG
    if height * width == 0:
        return np.empty(shape, dtype=dtype)
    strides: tuple[int, ...] = (step, pixel_bytes)
    if channels > 1:
        strides = (*strides, dtype.itemsize)
    view_dtype = dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype
    out = np.ndarray(shape, dtype=view_dtype, buffer=buf, offset=0, strides=strides)
    if swapped:
        return out.astype(dtype)  # byteswapping copy, native order
    return out.copy() if copy else out


def _normalise(array: np.ndarray) -> np.ndarray:
    """uint8 by min-max of the finite values (non-finite -> 0; a constant image -> 0)."""
    values = array.astype(np.float32, copy=False)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, dtype=np.uint8)
    all_finite = bool(finite.all())
    lo = float(values.min() if all_finite else values[finite].min())
    hi = float(values.max() if all_finite else values[finite].max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = (values - lo) * scale
    if not all_finite:
        out[~finite] = 0.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _contiguous_rows(a: np.ndarray) -> np.ndarray:
    # OpenCV accepts padded rows but not padded pixels; this copies only when needed.
    if a.ndim == 3 and a.strides[2] == a.itemsize and a.strides[1] == a.itemsize * a.shape[2]:
        return a
    if a.ndim == 2 and a.strides[1] == a.itemsize:
        return a
    return np.ascontiguousarray(a)


def _array_to_rgb8(a: np.ndarray, encoding: str) -> np.ndarray:
    """RGB uint8 from an array in ``encoding`` (see the module contract)."""
    dtype, channels = ENCODINGS[encoding]
    if encoding.startswith("bayer_"):
        code = _BAYER_TO_RGB[encoding[6:10]]
        rgb = cv2.cvtColor(_contiguous_rows(a), code)
        return rgb if dtype == _U8 else (rgb // 257).astype(np.uint8)
    if dtype != _U8:
        if dtype == _U16 and channels >= 3:
            a = (a // 257).astype(np.uint8)
        else:
            a = _normalise(a)
    if channels == 1:
        return cv2.cvtColor(_contiguous_rows(a), cv2.COLOR_GRAY2RGB)
    if channels == 2:  # no colour meaning: show the first channel
        return cv2.cvtColor(np.ascontiguousarray(a[..., 0]), cv2.COLOR_GRAY2RGB)
    if encoding.startswith("rgb"):
        return np.ascontiguousarray(a) if channels == 3 else np.ascontiguousarray(a[..., :3])
    code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGB
    return cv2.cvtColor(_contiguous_rows(a), code)


def image_to_rgb8(msg: Any) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an Image in any supported encoding."""
    a = image_to_array(msg)
    if a.size == 0:
        return np.empty((*a.shape[:2], 3), dtype=np.uint8)
    return _array_to_rgb8(a, _encoding(msg.encoding))


def array_to_image(
    array: np.ndarray,
    encoding: str,
    *,
    frame_id: str,
    stamp_ns: int,
    kit: MessageKit | None = None,
) -> Any:
    """sensor_msgs/Image from an array whose shape and dtype match ``encoding``.

    One channel takes ``(H, W)`` or ``(H, W, 1)``; ``C`` channels take
    ``(H, W, C)``. Either byte order is accepted (``is_bigendian`` follows the
    array). A C-contiguous array is passed without copying for rosbags.
    """
    kit = kit or rosbags_kit()
    encoding = _encoding(encoding)
    dtype, channels = ENCODINGS[encoding]
    array = np.asarray(array)
    ok_shape = (array.ndim == 3 and array.shape[2] == channels) or (
        channels == 1 and array.ndim == 2
    )
    if not ok_shape:
        expected = "(H, W) or (H, W, 1)" if channels == 1 else f"(H, W, {channels})"
        raise MessageFormatError(
            f"encoding {encoding!r} expects shape {expected}, got {array.shape}"
        )
    if array.dtype.kind != dtype.kind or array.dtype.itemsize != dtype.itemsize:
        raise MessageFormatError(
            f"encoding {encoding!r} expects dtype {dtype.name}, got {array.dtype}"
        )
    order = array.dtype.byteorder
    big = dtype.itemsize > 1 and (order == ">" or (order == "=" and _NATIVE_BIG))
    height, width = array.shape[:2]
    packed = np.ascontiguousarray(array)
    data = packed.reshape(-1).view(np.uint8) if packed.size else np.empty(0, np.uint8)
    return kit.make(
        "sensor_msgs/msg/Image",
        header=kit.header(frame_id, stamp_ns),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(big),
        step=width * dtype.itemsize * channels,
        data=kit.uint8_array(data),
    )


def _decode_compressed_depth(buf: np.ndarray, fmt: str) -> np.ndarray:
    """image_transport's compressedDepth: 12-byte config header, then PNG (or RVL)."""
    if buf.size < 12:
        raise MessageFormatError(f"compressedDepth payload of {buf.size} bytes has no header")
    _, quant_a, quant_b = struct.unpack_from("<iff", buf[:12].tobytes())
    depth = cv2.imdecode(buf[12:], cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise MessageFormatError(f"cannot decode compressedDepth image (format {fmt!r})")
    if fmt.split(";")[0].strip() == "32FC1":
        # Inverse-depth quantisation: depth = a / (q - b), q == 0 means no reading.
        q = depth.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.float32(quant_a) / (q - np.float32(quant_b))
        out[depth == 0] = np.nan
        return out
    return depth


def compressed_to_array(msg: Any) -> np.ndarray:
    """Decode a CompressedImage to RGB ``(H, W, 3)`` uint8 or mono ``(H, W)``."""
    try:
        fmt = str(msg.format)
        buf = byte_view(msg.data)
    except AttributeError as exc:
        raise MessageFormatError(f"not a sensor_msgs/CompressedImage: {exc}") from None
    if buf.size == 0:
        raise MessageFormatError(f"empty CompressedImage (format {fmt!r})")
    if "compresseddepth" in fmt.lower():
        return _decode_compressed_depth(buf, fmt)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MessageFormatError(
            f"cannot decode CompressedImage of {buf.size} bytes (format {fmt!r})"
        )
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    if image.dtype != _U8:
        image = (image // 257).astype(np.uint8)
    code = cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGB
    return cv2.cvtColor(image, code)


def array_to_compressed(
    array_rgb: np.ndarray,
    fmt: str = "jpeg",
    *,
    frame_id: str,
    stamp_ns: int,
    kit: MessageKit | None = None,
    quality: int = 90,
) -> Any:
    """CompressedImage (``jpeg`` or ``png``) from RGB ``(H, W, 3)`` uint8 or mono ``(H, W)``.

    Mono may be uint8, or uint16 for ``png``. ``quality`` (0..100) is the JPEG quality.
    """
    kit = kit or rosbags_kit()
    kind = fmt.strip().lower()
    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(kind)
    if ext is None:
        raise MessageFormatError(f"unsupported compression {fmt!r}; use 'jpeg' or 'png'")
    if not 0 <= int(quality) <= 100:
        raise MessageFormatError(f"quality must be in 0..100, got {quality}")
    a = np.asarray(array_rgb)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim >= 2 and (a.shape[0] == 0 or a.shape[1] == 0):
        raise MessageFormatError(f"cannot compress an empty image of shape {a.shape}")
    if a.ndim == 3 and a.shape[2] == 3 and a.dtype == _U8:
        source, target = "rgb8", "bgr8"
        image = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR)
    elif a.ndim == 2 and (a.dtype == _U8 or (a.dtype == _U16 and ext == ".png")):
        source = target = "mono8" if a.dtype == _U8 else "mono16"
        image = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    else:
        allowed = "uint8 (H, W, 3) or (H, W)" + (", uint16 (H, W)" if ext == ".png" else "")
        raise MessageFormatError(
            f"cannot compress {a.dtype} array of shape {a.shape} as {kind}; expected {allowed}"
        )
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext == ".jpg" else []
    ok, encoded = cv2.imencode(ext, image, params)
    if not ok:
        raise MessageFormatError(f"OpenCV failed to encode a {a.shape} {a.dtype} image as {kind}")
    name = "jpeg" if ext == ".jpg" else "png"
    return kit.make(
        "sensor_msgs/msg/CompressedImage",
        header=kit.header(frame_id, stamp_ns),
        format=f"{source}; {name} compressed {target}",
        data=kit.uint8_array(encoded.reshape(-1)),
    )


def to_rgb8(msg: Any) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8 of an Image or a CompressedImage (either flavour)."""
    try:
        type_name = msg_type_name(msg)
    except MessageFormatError:
        type_name = ""
    if type_name.endswith("/CompressedImage") or (
        not type_name and hasattr(msg, "format") and not hasattr(msg, "encoding")
    ):
        a = compressed_to_array(msg)
        if a.ndim == 3:
            return a
        gray = a if a.dtype == _U8 else _normalise(a)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if type_name.endswith("/Image") or (not type_name and hasattr(msg, "encoding")):
        return image_to_rgb8(msg)
    raise MessageFormatError(
        f"to_rgb8 needs a sensor_msgs/Image or CompressedImage, got {type_name or type(msg)}"
    )
