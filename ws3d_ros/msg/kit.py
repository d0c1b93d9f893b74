"""Message "flavours": build and inspect ROS messages of rclpy or rosbags alike.

Contract:
- Decoders in :mod:`ws3d_ros.msg` read messages by duck typing; this module
  gives encoders a :class:`MessageKit` that constructs messages of one flavour:
  ``"rosbags"`` (dataclasses of the project :func:`typestore`, serialisable with
  ``typestore().serialize_cdr``) or ``"rclpy"`` (the generated ``*.msg``
  classes, imported lazily so this module never imports rclpy at top level).
- :meth:`MessageKit.make` takes keyword fields, fills missing ones with the
  type's defaults and coerces values to what the flavour expects (numpy and
  Python scalars, lists/arrays for numeric sequences, ``bytes``/``int`` for
  octets). ``uint8[]`` payloads go through :meth:`MessageKit.uint8_array`:
  zero-copy ``np.uint8`` views for rosbags, one ``array.array('B')`` copy
  for rclpy (stored behind the slow field setter, as sensor_msgs_py does).
- Type names are accepted as ``pkg/msg/Name`` or ``pkg/Name``.
- The typestore is ROS 2 Kilted's: it matches the ROS 2 Python wheels in the
  project environment (sensor_msgs 5.5) and equals Jazzy for every package
  the project uses.
"""

from __future__ import annotations

import array
import functools
import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Nodetype, Typestore

from ws3d_ros.errors import MessageFormatError

__all__ = [
    "TYPESTORE_DISTRO",
    "MessageKit",
    "byte_view",
    "flavour_of",
    "kit_for",
    "msg_type_name",
    "normalize_type_name",
    "ns_to_sec_nsec",
    "rclpy_kit",
    "rosbags_kit",
    "stamp_to_ns",
    "typestore",
]

#: ROS 2 distribution whose message definitions the project typestore holds.
TYPESTORE_DISTRO = "kilted"
_STORE = Stores.ROS2_KILTED

_NS = 1_000_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@functools.cache
def typestore() -> Typestore:
    """The rosbags typestore used by the whole project for bag I/O (cached)."""
    return get_typestore(_STORE)


def normalize_type_name(type_name: str) -> str:
    """``"sensor_msgs/PointCloud2"`` or ``"sensor_msgs/msg/PointCloud2"`` -> the latter."""
    parts = type_name.strip().split("/")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return type_name.strip()
    raise MessageFormatError(
        f"bad message type name {type_name!r}: expected 'pkg/msg/Name' or 'pkg/Name'"
    )


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (``sec``, ``nanosec``) of either flavour -> integer nanoseconds."""
    try:
        return int(stamp.sec) * _NS + int(stamp.nanosec)
    except AttributeError as exc:
        raise MessageFormatError(
            f"expected a builtin_interfaces/Time with sec and nanosec, got {type(stamp).__name__}"
        ) from exc


def ns_to_sec_nsec(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> ``(sec, nanosec)`` with ``0 <= nanosec < 1e9`` (floor division)."""
    sec, nanosec = divmod(int(stamp_ns), _NS)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise MessageFormatError(
            f"stamp {stamp_ns} ns is outside builtin_interfaces/Time's int32 seconds range"
        )
    return sec, nanosec


def flavour_of(msg: Any) -> str:
    """``"rosbags"`` for typestore dataclasses, ``"rclpy"`` for generated ROS classes."""
    if hasattr(type(msg), "__msgtype__") or hasattr(msg, "__msgtype__"):
        return "rosbags"
    if hasattr(type(msg), "get_fields_and_field_types"):
        return "rclpy"
    raise MessageFormatError(f"{type(msg).__name__} is neither a rosbags nor an rclpy message")


def msg_type_name(msg: Any) -> str:
    """``"sensor_msgs/msg/PointCloud2"`` for a message (or message class) of either flavour."""
    cls = msg if isinstance(msg, type) else type(msg)
    msgtype = getattr(cls, "__msgtype__", None) or getattr(msg, "__msgtype__", None)
    if isinstance(msgtype, str):
        return msgtype
    module = getattr(cls, "__module__", "") or ""
    parts = module.split(".")
    if hasattr(cls, "get_fields_and_field_types") and len(parts) >= 2:
        return f"{parts[0]}/{parts[1]}/{cls.__name__}"
    raise MessageFormatError(f"{cls.__name__} is neither a rosbags nor an rclpy message")


def kit_for(msg: Any) -> MessageKit:
    """The kit of ``msg``'s flavour, to answer a message with one of the same kind."""
    return rosbags_kit() if flavour_of(msg) == "rosbags" else rclpy_kit()


def byte_view(buf: Any) -> np.ndarray:
    """A 1-D uint8 array over ``buf``'s bytes (a ``uint8[]`` field of either flavour).

    Zero-copy for contiguous buffers: bytes, bytearray, memoryview,
    ``array.array`` and numpy arrays; other inputs (sequences of ints,
    non-contiguous views) are copied.
    """
    if isinstance(buf, np.ndarray):
        if buf.dtype == np.uint8 and buf.ndim == 1 and buf.flags.c_contiguous:
            return buf
        return np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(buf, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        try:
            return np.ascontiguousarray(np.asarray(buf, dtype=np.uint8).reshape(-1))
        except (TypeError, ValueError, OverflowError) as exc:
            raise MessageFormatError(
                f"expected a byte buffer for a uint8[] field, got {type(buf).__name__}"
            ) from exc


class MessageKit(ABC):
    """Constructs messages of one flavour (see :func:`rosbags_kit`, :func:`rclpy_kit`)."""

    flavour: str = ""

    @abstractmethod
    def cls(self, type_name: str) -> type:
        """The message class for ``type_name`` (``pkg/msg/Name`` or ``pkg/Name``)."""

    @abstractmethod
    def make(self, type_name: str, **fields: Any) -> Any:
        """Construct a ``type_name`` message; missing fields take the type's defaults."""

    @abstractmethod
    def uint8_array(self, buf: Any) -> Any:
        """The fastest acceptable value for a ``uint8[]`` field of this flavour."""

    def time(self, stamp_ns: int) -> Any:
        """builtin_interfaces/Time for ``stamp_ns``."""
        sec, nanosec = ns_to_sec_nsec(stamp_ns)
        return self.make("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)

    def header(self, frame_id: str, stamp_ns: int) -> Any:
        """std_msgs/Header with ``frame_id`` and ``stamp_ns``."""
        return self.make("std_msgs/msg/Header", stamp=self.time(stamp_ns), frame_id=frame_id)

    def __repr__(self) -> str:
        return f"<MessageKit {self.flavour}>"


# --------------------------------------------------------------------------- rosbags

_ROSBAGS_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(npname)
    for name, npname in {
        "bool": "bool",
        "byte": "int8",  # rosbags deserialises byte[] as int8
        "char": "uint8",
        "int8": "int8",
        "uint8": "uint8",
        "int16": "int16",
        "uint16": "uint16",
        "int32": "int32",
        "uint32": "uint32",
        "int64": "int64",
        "uint64": "uint64",
        "float32": "float32",
        "float64": "float64",
    }.items()
}

_Coercer = Callable[[Any], Any]


def _scalar_coercer(base: str) -> _Coercer:
    if base == "string":
        return str
    if base == "bool":
        return bool
    if base in ("float32", "float64"):
        return float

    def to_int(value: Any) -> int:
        if isinstance(value, bytes | bytearray):  # an rclpy octet
            if len(value) != 1:
                raise MessageFormatError(f"expected one byte, got {len(value)}")
            return value[0]
        return int(value)

    return to_int


class _RosbagsKit(MessageKit):
    flavour = "rosbags"

    def __init__(self) -> None:
        self._store = typestore()
        self._specs: dict[str, list[tuple[str, _Coercer, Callable[[], Any]]]] = {}

    def cls(self, type_name: str) -> type:
        name = normalize_type_name(type_name)
        try:
            return self._store.types[name]
        except KeyError:
            raise MessageFormatError(
                f"message type {name} is unknown to the {TYPESTORE_DISTRO} typestore"
            ) from None

    def uint8_array(self, buf: Any) -> np.ndarray:
        return byte_view(buf)

    def make(self, type_name: str, **fields: Any) -> Any:
        name = normalize_type_name(type_name)
        cls = self.cls(name)
        spec = self._spec(name)
        unknown = set(fields) - {field for field, _, _ in spec}
        if unknown:
            raise MessageFormatError(f"{name} has no field(s) {sorted(unknown)}")
        values = {}
        for field, coerce, default in spec:
            if field in fields:
                values[field] = coerce(fields[field])
            else:
                values[field] = default()
        return cls(**values)

    def _spec(self, name: str) -> list[tuple[str, _Coercer, Callable[[], Any]]]:
        spec = self._specs.get(name)
        if spec is None:
            _, fielddefs = self._store.fielddefs[name]
            spec = [(field, *self._field_rules(desc)) for field, desc in fielddefs]
            self._specs[name] = spec
        return spec

    def _field_rules(self, desc: tuple[Any, Any]) -> tuple[_Coercer, Callable[[], Any]]:
        node, rest = desc
        if node == Nodetype.BASE:
            base = rest[0]
            coerce = _scalar_coercer(base)
            default = coerce("" if base == "string" else 0)
            return coerce, lambda: default
        if node == Nodetype.NAME:
            return (lambda value: value), lambda: self.make(rest)
        (sub_node, sub_rest), length = rest
        fixed = node == Nodetype.ARRAY
        if sub_node == Nodetype.BASE and sub_rest[0] in _ROSBAGS_DTYPES:
            dtype = _ROSBAGS_DTYPES[sub_rest[0]]

            def coerce_array(value: Any) -> np.ndarray:
                if dtype == np.uint8:
                    out = byte_view(value)
                else:
                    out = np.asarray(value, dtype=dtype).reshape(-1)
                if fixed and out.size != length:
                    raise MessageFormatError(f"expected {length} values, got {out.size}")
                return out

            return coerce_array, lambda: np.zeros(length if fixed else 0, dtype=dtype)
        if sub_node == Nodetype.BASE:  # strings
            return list, lambda: [""] * length if fixed else []
        return list, lambda: [self.make(sub_rest) for _ in range(length if fixed else 0)]


@functools.cache
def rosbags_kit() -> MessageKit:
    """The kit for rosbags dataclasses of :func:`typestore` (cached)."""
    return _RosbagsKit()


# --------------------------------------------------------------------------- rclpy

# rosidl type name -> (numpy dtype, array.array typecode) for numeric sequences.
_RCLPY_NUMERIC: dict[str, tuple[np.dtype, str]] = {
    "float": (np.dtype(np.float32), "f"),
    "double": (np.dtype(np.float64), "d"),
    "int8": (np.dtype(np.int8), "b"),
    "uint8": (np.dtype(np.uint8), "B"),
    "int16": (np.dtype(np.int16), "h"),
    "uint16": (np.dtype(np.uint16), "H"),
    "int32": (np.dtype(np.int32), "i"),
    "uint32": (np.dtype(np.uint32), "I"),
    "int64": (np.dtype(np.int64), "q"),
    "uint64": (np.dtype(np.uint64), "Q"),
}
_RCLPY_SEQ = re.compile(r"^sequence<([^,>]+)(?:,\s*\d+)?>$")
_RCLPY_ARRAY = re.compile(r"^([^\[]+)\[(\d+)\]$")


def _octet(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes((int(value),))


def _rclpy_scalar(type_str: str) -> _Coercer | None:
    if type_str in ("float", "double"):
        return float
    if type_str in _RCLPY_NUMERIC:
        return int
    if type_str == "boolean":
        return bool
    if type_str == "octet":
        return _octet
    if type_str.startswith(("string", "wstring")):
        return str
    return None  # nested message: passed through


class _RclpyKit(MessageKit):
    flavour = "rclpy"

    def __init__(self) -> None:
        # type name -> (class, {field: (coercer, direct_slot)}); direct_slot fields are
        # numeric sequences stored as array.array behind the setter (sensor_msgs_py's trick).
        self._specs: dict[str, tuple[type, dict[str, tuple[_Coercer, bool]]]] = {}

    def cls(self, type_name: str) -> type:
        name = normalize_type_name(type_name)
        pkg, kind, cls_name = name.split("/")
        try:
            module = importlib.import_module(f"{pkg}.{kind}")
            return getattr(module, cls_name)
        except (ImportError, AttributeError):
            raise MessageFormatError(
                f"message type {name} is not available to rclpy (is its package installed?)"
            ) from None

    def uint8_array(self, buf: Any) -> array.array:
        if isinstance(buf, array.array) and buf.typecode == "B":
            return buf
        out = array.array("B")
        out.frombytes(byte_view(buf))
        return out

    def make(self, type_name: str, **fields: Any) -> Any:
        cls, spec = self._spec(normalize_type_name(type_name))
        unknown = set(fields) - set(spec)
        if unknown:
            raise MessageFormatError(f"{type_name} has no field(s) {sorted(unknown)}")
        kwargs = {}
        direct = {}
        for field, value in fields.items():
            coerce, is_direct = spec[field]
            if is_direct:
                direct[field] = coerce(value)
            else:
                kwargs[field] = coerce(value)
        msg = cls(**kwargs)
        for field, value in direct.items():
            setattr(msg, "_" + field, value)
        return msg

    def _spec(self, name: str) -> tuple[type, dict[str, tuple[_Coercer, bool]]]:
        entry = self._specs.get(name)
        if entry is None:
            cls = self.cls(name)
            spec = {
                field: self._field_rule(type_str)
                for field, type_str in cls.get_fields_and_field_types().items()
            }
            entry = (cls, spec)
            self._specs[name] = entry
        return entry

    def _field_rule(self, type_str: str) -> tuple[_Coercer, bool]:
        seq = _RCLPY_SEQ.match(type_str)
        if seq and seq.group(1) in _RCLPY_NUMERIC:
            dtype, code = _RCLPY_NUMERIC[seq.group(1)]
            if code == "B":
                return self.uint8_array, True

            def to_array(value: Any) -> array.array:
                if isinstance(value, array.array) and value.typecode == code:
                    return value
                out = array.array(code)
                out.frombytes(np.ascontiguousarray(value, dtype=dtype).reshape(-1).tobytes())
                return out

            return to_array, True
        if seq:
            inner = _rclpy_scalar(seq.group(1))
            if inner is None:
                return list, False
            return (lambda value: [inner(v) for v in value]), False
        fixed = _RCLPY_ARRAY.match(type_str)
        if fixed and fixed.group(1) in _RCLPY_NUMERIC:
            dtype = _RCLPY_NUMERIC[fixed.group(1)][0]
            return (lambda value: np.array(value, dtype=dtype).reshape(-1)), False
        if fixed:
            return list, False
        scalar = _rclpy_scalar(type_str)
        return (scalar or (lambda value: value)), False


@functools.cache
def rclpy_kit() -> MessageKit:
    """The kit for rclpy's generated message classes (imported lazily, cached)."""
    return _RclpyKit()
