"""rosbag2 read/write: the project's one bag I/O module.

Contract:
- :class:`BagReader` opens any rosbag2 directory (MCAP or sqlite3 storage, as
  written by ``ros2 bag record`` or by :class:`BagWriter`) and yields
  ``(topic, stamp_ns, message)`` in log-time order, deserialised into
  ``rosbags`` dataclasses with the project's typestore
  (:func:`ws3d_ros.msg.kit.typestore`). Deserialisation is zero-copy over the
  raw record (uint8 arrays in messages are views into it), so a
  PointCloud2 decoded by :mod:`ws3d_ros.msg.pointcloud2` is a view too.
  Memory stays bounded: messages are read one by one from storage.
- :class:`BagWriter` writes rosbags-flavour messages; latched topics (e.g.
  ``/tf_static``, ``panoptic/label_map``) are recorded with a transient-local
  QoS profile so ``ros2 bag play`` re-latches them.
- Errors (missing path, not a bag, unknown message type) raise
  :class:`ws3d_ros.errors.BagError` with the reason.

Message stamps in the storage are the *log* times; header stamps are the
sensor times and are what synchronisation uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ws3d_ros.errors import BagError
from ws3d_ros.msg.kit import typestore

STORAGES = ("mcap", "sqlite3")


@dataclass(frozen=True)
class TopicInfo:
    """What a bag holds on one topic."""

    name: str
    msgtype: str
    count: int
    latched: bool


def _latched_qos() -> list[Any]:
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )

    zero = QosTime(sec=0, nsec=0)
    return [
        Qos(
            history=QosHistory.KEEP_LAST,
            depth=1,
            reliability=QosReliability.RELIABLE,
            durability=QosDurability.TRANSIENT_LOCAL,
            deadline=zero,
            lifespan=zero,
            liveliness=QosLiveliness.AUTOMATIC,
            liveliness_lease_duration=zero,
            avoid_ros_namespace_conventions=False,
        )
    ]


def _is_latched(connection: Any) -> bool:
    ext = getattr(connection, "ext", None)
    profiles = getattr(ext, "offered_qos_profiles", None) or ()
    for profile in profiles if isinstance(profiles, (list, tuple)) else ():
        durability = getattr(profile, "durability", None)
        if durability is not None and getattr(durability, "name", "") == "TRANSIENT_LOCAL":
            return True
    return isinstance(profiles, str) and "durability: 1" in profiles


class BagWriter:
    """Write a rosbag2 directory (MCAP by default) from rosbags-flavour messages.

    Use as a context manager; ``path`` must not exist yet (rosbag2 semantics).
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} already exists; rosbag2 writes into a new directory")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self._types: dict[str, str] = {}
        self._store = typestore()

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._writer.close()

    def add_topic(self, topic: str, type_name: str, *, latched: bool = False) -> None:
        """Declare ``topic`` of ROS type ``type_name`` (e.g. ``sensor_msgs/msg/Image``)."""
        if topic in self._connections:
            if self._types[topic] != type_name:
                raise BagError(f"topic {topic} already added as {self._types[topic]}")
            return
        if type_name not in self._store.fielddefs:
            raise BagError(f"message type {type_name} is unknown to the typestore")
        self._connections[topic] = self._writer.add_connection(
            topic,
            type_name,
            typestore=self._store,
            offered_qos_profiles=_latched_qos() if latched else (),
        )
        self._types[topic] = type_name

    def write_raw(self, topic: str, type_name: str, stamp_ns: int, raw: bytes) -> None:
        """Record already-serialised CDR bytes (copying a bag without decoding it)."""
        self.add_topic(topic, type_name)
        self._writer.write(self._connections[topic], int(stamp_ns), raw)

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialise ``msg`` (rosbags flavour) and record it at log time ``stamp_ns``."""
        type_name = getattr(msg, "__msgtype__", None) or self._types.get(topic)
        if topic not in self._connections:
            if type_name is None:
                raise BagError(f"topic {topic} was not added and the message has no type")
            self.add_topic(topic, type_name)
        self._writer.write(
            self._connections[topic],
            int(stamp_ns),
            self._store.serialize_cdr(msg, self._types[topic]),
        )


class BagReader:
    """Read a rosbag2 directory (MCAP or sqlite3) message by message."""

    def __init__(self, path: str | Path) -> None:
        from rosbags.rosbag2 import Reader

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"{self.path} does not exist")
        if self.path.is_file():
            # A user may point at the .mcap/.db3 file inside the bag directory.
            self.path = self.path.parent
        if not (self.path / "metadata.yaml").exists():
            raise BagError(
                f"{self.path} is not a rosbag2 directory (no metadata.yaml); "
                "ws3d reads bags written by `ros2 bag record` or `ws3d sim`"
            )
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:  # rosbags raises several types for broken bags
            raise BagError(f"cannot open bag {self.path}: {exc}") from exc
        self._store = typestore()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Topic name -> :class:`TopicInfo`, sorted by name."""
        out: dict[str, TopicInfo] = {}
        for conn in sorted(self._reader.connections, key=lambda c: c.topic):
            prev = out.get(conn.topic)
            count = conn.msgcount + (prev.count if prev else 0)
            out[conn.topic] = TopicInfo(conn.topic, conn.msgtype, count, _is_latched(conn))
        return out

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time)

    @property
    def storage(self) -> str:
        return "mcap" if any(p.suffix == ".mcap" for p in self.path.iterdir()) else "sqlite3"

    def raw_messages(
        self, topics: Iterable[str] | None = None
    ) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, log_stamp_ns, cdr_bytes)`` without deserialising."""
        wanted = set(topics) if topics is not None else None
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        for conn, stamp, raw in self._reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, stamp, raw

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """``(topic, log_stamp_ns, message)`` in log-time order, deserialised zero-copy."""
        for topic, msgtype, stamp, raw in self.raw_messages(topics):
            try:
                msg = self._store.deserialize_cdr(memoryview(raw), msgtype)
            except KeyError as exc:
                raise BagError(f"{topic}: message type {msgtype} unknown to the typestore") from exc
            yield topic, stamp, msg
