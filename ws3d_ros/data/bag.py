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
- Corrupt records: an indexed MCAP chunk that cannot be read (bad record length,
  checksum, compression; e.g. the ``OverflowError`` of a corrupt length) is skipped,
  logged once as a warning and listed in :attr:`BagReader.skipped` with its position
  (file, byte offset, log-time range, message count), and the rest of the bag is read;
  a message whose CDR bytes do not decode is skipped the same way (topic, log time).
  Where nothing after the fault can be found (unindexed MCAP, sqlite3, a corrupt
  summary) reading stops with a one-line :class:`BagError` naming the position: the
  number of messages read and the last good log time.

Message stamps in the storage are the *log* times; header stamps are the
sensor times and are what synchronisation uses.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ws3d_ros.errors import BagError
from ws3d_ros.msg.kit import typestore

STORAGES = ("mcap", "sqlite3")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedRecord:
    """A part of a bag that could not be read and was skipped (see the module doc)."""

    where: str  # "bag.mcap byte 3131360 (chunk, log time a..b, 3 messages)" or a message
    error: str

    def __str__(self) -> str:
        return f"{self.where}: {self.error}"


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        self.skipped: list[SkippedRecord] = []

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
        source = self._chunked_mcap(wanted)
        if source is None:
            source = ((c.topic, c.msgtype, t, raw) for c, t, raw in self._reader.messages(conns))
        count, last = 0, None
        try:
            for item in source:
                count, last = count + 1, item[2]
                yield item
        except BagError:
            raise
        except Exception as exc:  # rosbags/struct/lz4/zstd/OverflowError on a corrupt record
            where = f"after {count} messages" + ("" if last is None else f" (log time {last})")
            raise BagError(
                f"bag {self.path} is corrupt {where} and cannot be read further: {_one_line(exc)}"
            ) from exc

    def _chunked_mcap(
        self, wanted: set[str] | None
    ) -> Iterator[tuple[str, str, int, bytes]] | None:
        """Messages of an indexed MCAP bag, chunk by chunk, skipping unreadable chunks;
        ``None`` where this does not apply (sqlite3, unindexed, per-message compression,
        another rosbags layout): the caller reads through rosbags then."""
        try:
            from rosbags.rosbag2.storage_mcap import McapReader, msgsrc
        except ImportError:
            return None
        storages = getattr(self._reader.storage, "storages", None)
        meta = getattr(self._reader.storage, "metadata", None)
        if not storages or getattr(meta, "compression_mode", "") == "message":
            return None
        if not all(isinstance(st, McapReader) and st.chunks and st.bio for st in storages):
            return None
        return self._read_chunks(storages, msgsrc, wanted)

    def _read_chunks(
        self, storages: list[Any], msgsrc: Any, wanted: set[str] | None
    ) -> Iterator[tuple[str, str, int, bytes]]:
        for st in storages:  # files one after another, as rosbags reads them
            cmap = {c.id: c for c in st.connections if wanted is None or c.topic in wanted}
            sources = [
                self._guarded(st.path.name, ch, msgsrc(ch, cmap, ch.message_start_time,
                                                       ch.message_end_time + 1, st.bio))
                for ch in st.chunks
                if any(ch.channel_count.get(cid, 0) for cid in cmap)
            ]  # fmt: skip
            for stamp, offset, conn, data in heapq.merge(*sources):
                if offset:  # 0: the chunk's start marker
                    yield conn.topic, conn.msgtype, stamp, data

    def _guarded(self, file: str, chunk: Any, source: Iterator[Any]) -> Iterator[Any]:
        """``source`` (one chunk's messages); a chunk that cannot be read ends early and is
        recorded in :attr:`skipped`. ``msgsrc`` reads a whole chunk before its first
        message, so a corrupt chunk yields none of its messages."""
        try:
            yield from source
        except Exception as exc:
            n = sum(chunk.channel_count.values())
            record = SkippedRecord(
                f"{self.path}/{file} byte {chunk.chunk_start_offset} (chunk, log time "
                f"{chunk.message_start_time}..{chunk.message_end_time}, {n} messages)",
                _one_line(exc),
            )
            self.skipped.append(record)
            log.warning("skipped a corrupt record: %s", record)

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """``(topic, log_stamp_ns, message)`` in log-time order, deserialised zero-copy."""
        for topic, msgtype, stamp, raw in self.raw_messages(topics):
            try:
                msg = self._store.deserialize_cdr(memoryview(raw), msgtype)
            except KeyError as exc:
                if msgtype not in self._store.fielddefs:
                    raise BagError(
                        f"{topic}: message type {msgtype} unknown to the typestore"
                    ) from exc
                self._skip_message(topic, stamp, exc)
                continue
            except Exception as exc:  # truncated or garbled CDR bytes
                self._skip_message(topic, stamp, exc)
                continue
            yield topic, stamp, msg

    def _skip_message(self, topic: str, stamp: int, exc: BaseException) -> None:
        record = SkippedRecord(f"{self.path} {topic} message at log time {stamp}", _one_line(exc))
        self.skipped.append(record)
        log.warning("skipped a corrupt record: %s", record)
