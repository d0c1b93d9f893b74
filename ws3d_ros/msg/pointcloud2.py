"""sensor_msgs/PointCloud2 <-> numpy structured arrays.

Contract:
- :func:`cloud_to_array` returns a structured array of shape ``(width,)`` when
  ``height == 1`` and ``(height, width)`` otherwise. It is a zero-copy view of
  ``msg.data`` (bytes, bytearray, memoryview, ``array.array('B')`` or a numpy
  uint8 array) whenever the buffer is contiguous: the dtype carries the
  fields' offsets and ``itemsize == point_step`` (point padding), the strides
  ``(row_step, point_step)`` skip row padding. A view of immutable ``bytes``
  is read-only; ``copy=True`` gives a writable copy. Big-endian clouds keep
  their byte order in the dtype (values read correctly).
- Layouts are validated (fields inside ``point_step``, no overlap, unique
  names, known datatypes, ``count >= 1``, ``row_step >= width * point_step``,
  ``len(data) == row_step * height``); violations raise
  :class:`~ws3d_ros.errors.MessageFormatError` naming the problem. Empty clouds
  are valid.
- :func:`array_to_cloud` keeps the array dtype's offsets and itemsize, so
  ``cloud_to_array(array_to_cloud(a))`` equals ``a`` (subarray fields become
  ``count > 1`` PointFields and come back as such). A C-contiguous array is
  passed as ``data`` without copying for the rosbags flavour (the message then
  shares memory with the array); rclpy messages take one copy.
- Supported field dtypes: int8, uint8, int16, uint16, int32, uint32, float32,
  float64 (either byte order, but one order per cloud).
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from ws3d_ros.errors import MessageFormatError
from ws3d_ros.msg.kit import MessageKit, byte_view, rosbags_kit

__all__ = [
    "POINTFIELD_DTYPES",
    "array_to_cloud",
    "cloud_dtype",
    "cloud_to_array",
    "cloud_xyz",
    "structured",
    "xyz_to_cloud",
]

#: sensor_msgs/PointField datatype constant -> numpy dtype (native byte order).
POINTFIELD_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.int8),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int16),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int32),
    6: np.dtype(np.uint32),
    7: np.dtype(np.float32),
    8: np.dtype(np.float64),
}
# (kind, itemsize) -> PointField datatype
_DATATYPE_OF = {(dt.kind, dt.itemsize): code for code, dt in POINTFIELD_DTYPES.items()}
_POINTFIELD_NAMES = {
    1: "INT8",
    2: "UINT8",
    3: "INT16",
    4: "UINT16",
    5: "INT32",
    6: "UINT32",
    7: "FLOAT32",
    8: "FLOAT64",
}
_NATIVE_BIG = sys.byteorder == "big"

_FieldKey = tuple[tuple[str, int, int, int], ...]


def _field_key(fields: Iterable[Any]) -> _FieldKey:
    try:
        return tuple((f.name, int(f.offset), int(f.datatype), int(f.count)) for f in fields)
    except AttributeError as exc:
        raise MessageFormatError(
            f"PointField needs name, offset, datatype and count: {exc}"
        ) from None


def cloud_dtype(fields: Iterable[Any], point_step: int, is_bigendian: bool) -> np.dtype:
    """Structured dtype for PointFields: explicit offsets, ``itemsize == point_step``.

    ``count > 1`` gives a subarray field ``(dtype, (count,))``; the byte order
    of multi-byte fields follows ``is_bigendian``.
    """
    return _cloud_dtype(_field_key(fields), int(point_step), bool(is_bigendian))


@functools.lru_cache(maxsize=256)
def _cloud_dtype(key: _FieldKey, point_step: int, is_bigendian: bool) -> np.dtype:
    if point_step < 0:
        raise MessageFormatError(f"point_step must be >= 0, got {point_step}")
    order = ">" if is_bigendian else "<"
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    spans: list[tuple[int, int, str]] = []
    for name, offset, datatype, count in key:
        if not isinstance(name, str) or not name:
            raise MessageFormatError(f"PointField name must be a non-empty string, got {name!r}")
        if name in names:
            raise MessageFormatError(f"duplicate PointField name {name!r}")
        base = POINTFIELD_DTYPES.get(datatype)
        if base is None:
            raise MessageFormatError(
                f"PointField {name!r} has unknown datatype {datatype} "
                f"(supported: {', '.join(f'{k}={v}' for k, v in _POINTFIELD_NAMES.items())})"
            )
        if count < 1:
            raise MessageFormatError(f"PointField {name!r} has count {count}; must be >= 1")
        if offset < 0:
            raise MessageFormatError(f"PointField {name!r} has negative offset {offset}")
        end = offset + base.itemsize * count
        if end > point_step:
            raise MessageFormatError(
                f"PointField {name!r} (offset {offset}, {count} x {base.itemsize} bytes) "
                f"overflows point_step {point_step}"
            )
        base = base.newbyteorder(order)
        names.append(name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(offset)
        spans.append((offset, end, name))
    spans.sort()
    for (_, end_a, name_a), (start_b, _, name_b) in itertools.pairwise(spans):
        if start_b < end_a:
            raise MessageFormatError(
                f"PointFields {name_a!r} and {name_b!r} overlap (byte {start_b} < end {end_a})"
            )
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )


def cloud_to_array(msg: Any, *, copy: bool = False) -> np.ndarray:
    """A structured-array view of a PointCloud2 (either flavour; see the module contract)."""
    try:
        height = int(msg.height)
        width = int(msg.width)
        point_step = int(msg.point_step)
        row_step = int(msg.row_step)
        fields = msg.fields
        is_bigendian = bool(msg.is_bigendian)
        data = msg.data
    except AttributeError as exc:
        raise MessageFormatError(f"not a PointCloud2: {exc}") from None
    if height < 0 or width < 0:
        raise MessageFormatError(f"negative cloud size: height {height}, width {width}")
    if width > 0 and point_step <= 0:
        raise MessageFormatError(f"point_step must be > 0 for width {width}, got {point_step}")
    dtype = _cloud_dtype(_field_key(fields), point_step, is_bigendian)
    if row_step < width * point_step:
        raise MessageFormatError(f"row_step {row_step} < width {width} * point_step {point_step}")
    buf = byte_view(data)
    if buf.size != row_step * height:
        raise MessageFormatError(
            f"len(data) = {buf.size} bytes, expected row_step {row_step} * height {height} "
            f"= {row_step * height}"
        )
    shape: tuple[int, ...]
    if height == 1:
        shape, strides = (width,), (point_step,)
    else:
        shape, strides = (height, width), (row_step, point_step)
    if width * height == 0:
        return np.empty(shape, dtype=dtype)
    out = np.ndarray(shape, dtype=dtype, buffer=buf, offset=0, strides=strides)
    return out.copy() if copy else out


def _field_datatype(name: str, dt: np.dtype) -> tuple[int, int, str]:
    """(PointField datatype, count, byte order '<' '>' or '|') for one array field."""
    count = 1
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        if len(shape) != 1:
            raise MessageFormatError(
                f"field {name!r} has subarray shape {shape}; only 1-D subarrays map to "
                "a PointField count"
            )
        count = shape[0]
        dt = base
    code = _DATATYPE_OF.get((dt.kind, dt.itemsize)) if dt.kind in "iuf" else None
    if code is None or dt.fields is not None:
        raise MessageFormatError(
            f"field {name!r} has dtype {dt} which PointCloud2 cannot hold "
            "(supported: int8, uint8, int16, uint16, int32, uint32, float32, float64)"
        )
    if count < 1:
        raise MessageFormatError(f"field {name!r} has an empty subarray")
    if dt.itemsize == 1:
        order = "|"
    elif dt.byteorder == "=":
        order = ">" if _NATIVE_BIG else "<"
    else:
        order = dt.byteorder
    return code, count, order


def array_to_cloud(
    array: np.ndarray,
    *,
    frame_id: str,
    stamp_ns: int,
    kit: MessageKit | None = None,
    is_dense: bool | None = None,
) -> Any:
    """Encode a 1-D (height 1) or 2-D (organised) structured array as a PointCloud2."""
    kit = kit or rosbags_kit()
    if not isinstance(array, np.ndarray) or array.dtype.names is None:
        raise MessageFormatError(
            f"array_to_cloud needs a numpy structured array, got {type(array).__name__}"
            + (f" of dtype {array.dtype}" if isinstance(array, np.ndarray) else "")
        )
    if array.ndim not in (1, 2):
        raise MessageFormatError(f"cloud array must be 1-D or 2-D, got shape {array.shape}")
    dtype = array.dtype
    if not dtype.names:
        raise MessageFormatError("cloud array has no fields")
    key = []
    orders = set()
    for name in dtype.names:
        field_dt, offset = dtype.fields[name][:2]
        code, count, order = _field_datatype(name, field_dt)
        key.append((name, offset, code, count))
        if order != "|":
            orders.add(order)
    if len(orders) > 1:
        raise MessageFormatError(
            "cloud array mixes little- and big-endian fields; PointCloud2 has one is_bigendian"
        )
    is_bigendian = orders == {">"}
    # Validate the layout exactly as a decoder will read it (overlaps, bounds).
    _cloud_dtype(tuple(key), dtype.itemsize, is_bigendian)
    height, width = (1, array.shape[0]) if array.ndim == 1 else array.shape
    point_step = dtype.itemsize
    # One pass at most: C-contiguous arrays are passed through as bytes.
    packed = np.ascontiguousarray(array)
    data = packed.reshape(-1).view(np.uint8) if packed.size else np.empty(0, np.uint8)
    if is_dense is None:
        is_dense = _is_dense(array)
    fields = [
        kit.make("sensor_msgs/msg/PointField", name=n, offset=o, datatype=c, count=k)
        for n, o, c, k in key
    ]
    return kit.make(
        "sensor_msgs/msg/PointCloud2",
        header=kit.header(frame_id, stamp_ns),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=is_bigendian,
        point_step=point_step,
        row_step=width * point_step,
        data=kit.uint8_array(data),
        is_dense=bool(is_dense),
    )


def _is_dense(array: np.ndarray) -> bool:
    """True when no x, y or z value is NaN (fields absent or integer count as dense)."""
    for name in ("x", "y", "z"):
        if name in array.dtype.names:
            column = array[name]
            if column.dtype.kind == "f" and np.isnan(column).any():
                return False
    return True


def structured(**columns: np.ndarray) -> np.ndarray:
    """A packed structured array from named columns of equal length.

    Each column is ``(N,)`` or ``(N, k)`` (a ``k``-element subarray field) and
    keeps its own dtype.
    """
    if not columns:
        raise MessageFormatError("structured() needs at least one column")
    arrays = {name: np.asarray(col) for name, col in columns.items()}
    n = None
    formats: list[tuple[str, Any]] = []
    for name, col in arrays.items():
        if col.ndim not in (1, 2):
            raise MessageFormatError(
                f"column {name!r} must be (N,) or (N, k), got shape {col.shape}"
            )
        if n is None:
            n = col.shape[0]
        elif col.shape[0] != n:
            raise MessageFormatError(
                f"column {name!r} has {col.shape[0]} rows, expected {n} like the first column"
            )
        formats.append((name, col.dtype) if col.ndim == 1 else (name, col.dtype, col.shape[1:]))
    out = np.empty(n, dtype=np.dtype(formats))
    for name, col in arrays.items():
        out[name] = col
    return out


def xyz_to_cloud(
    xyz: np.ndarray,
    *,
    frame_id: str,
    stamp_ns: int,
    kit: MessageKit | None = None,
    **extra_fields: np.ndarray,
) -> Any:
    """PointCloud2 with float32 ``x, y, z`` from ``(N, 3)`` plus per-point extra fields.

    Extra fields are ``(N,)`` (or ``(N, k)`` for ``count = k``) arrays of any
    supported dtype, e.g. ``intensity=...``, ``ring=...``.
    """
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise MessageFormatError(f"xyz must have shape (N, 3), got {xyz.shape}")
    clash = {"x", "y", "z"} & set(extra_fields)
    if clash:
        raise MessageFormatError(f"extra field(s) {sorted(clash)} clash with x, y, z")
    n = xyz.shape[0]
    formats: list[tuple[str, Any]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    extras = {}
    for name, col in extra_fields.items():
        col = np.asarray(col)
        if col.ndim not in (1, 2) or col.shape[0] != n:
            raise MessageFormatError(
                f"extra field {name!r} must have shape ({n},) or ({n}, k), got {col.shape}"
            )
        _field_datatype(name, col.dtype)
        extras[name] = col
        formats.append((name, col.dtype) if col.ndim == 1 else (name, col.dtype, col.shape[1:]))
    cloud = np.empty(n, dtype=np.dtype(formats))
    # Contiguous float32 columns first: numpy copies them into the packed (unaligned)
    # record fields several times faster than strided (N, 3) columns.
    columns = np.ascontiguousarray(xyz.T, dtype=np.float32)
    cloud["x"], cloud["y"], cloud["z"] = columns
    for name, col in extras.items():
        cloud[name] = col
    return array_to_cloud(cloud, frame_id=frame_id, stamp_ns=stamp_ns, kit=kit)


def cloud_xyz(array: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """``(N, 3)`` C-contiguous x, y, z of a structured cloud array (organised clouds flattened)."""
    names = getattr(getattr(array, "dtype", None), "names", None)
    if names is None:
        raise MessageFormatError("cloud_xyz needs a structured cloud array")
    missing = [n for n in ("x", "y", "z") if n not in names]
    if missing:
        raise MessageFormatError(f"cloud has no field(s) {missing}; fields are {list(names)}")
    fields = array.dtype.fields
    for name in ("x", "y", "z"):
        if fields[name][0].subdtype is not None:
            raise MessageFormatError(f"field {name!r} is a subarray, expected a scalar field")
    (fx, ox), (fy, oy), (fz, oz) = (fields[n][:2] for n in ("x", "y", "z"))
    size = fx.itemsize
    adjacent = fy == fx and fz == fx and oy == ox + size and oz == ox + 2 * size
    aligned = all(o % size == 0 for o in (ox, oy, oz)) and all(s % size == 0 for s in array.strides)
    if adjacent and not aligned:
        # Unaligned fields (packed layouts such as 22-byte points) copy slowly one by one;
        # copying the 3-value block as opaque bytes is several times faster.
        block = np.dtype(
            {
                "names": ["xyz"],
                "formats": [np.dtype((np.void, 3 * size))],
                "offsets": [ox],
                "itemsize": array.dtype.itemsize,
            }
        )
        raw = np.ascontiguousarray(array.view(block)["xyz"])
        return raw.view(fx).reshape(-1, 3).astype(dtype, copy=False)
    out = np.empty((*array.shape, 3), dtype=dtype)
    for i, name in enumerate(("x", "y", "z")):
        out[..., i] = array[name]
    return out.reshape(-1, 3)
