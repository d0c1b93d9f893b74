"""Time synchronisation of several sensor streams (layer 1: pure Python, no rclpy, no torch).

Both synchronisers take plain integer nanosecond stamps (the sensor time from
the message header) and opaque items, so the same code runs inside a ROS
callback (messages arrive live) and in a bag reader (messages arrive in
log-time order). Neither reads a clock: where wall time matters the caller
passes ``now_ns`` in its own clock.

- :class:`ApproximateTimeSynchronizer` is a faithful port of the ROS 2 C++
  ``message_filters::sync_policies::ApproximateTime`` policy: given the same
  arrival sequence it outputs the same sets.
- :class:`PivotSynchronizer` is the policy the perception node uses: one
  stream (the LiDAR sweep) drives the output, every pivot message yields
  exactly one set, and a camera that is late past a timeout is marked missing
  in that set instead of making the whole set disappear.

Both output :class:`MatchedSet` and keep ``drops`` counters (reason -> count)
that, with the published and still-queued messages, account for every input.
Bad input (unknown stream, non-integer stamp, bad configuration) raises
:class:`SyncError`.
"""

from __future__ import annotations

import logging
import math
import operator
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ws3d_ros.errors import Ws3dError

__all__ = [
    "DEFAULT_MAX_AHEAD_NS",
    "DEFAULT_MAX_BEHIND_NS",
    "STAMP_AHEAD",
    "STAMP_BEHIND",
    "ApproximateTimeSynchronizer",
    "MatchedSet",
    "PivotSynchronizer",
    "SyncError",
]

# PivotSynchronizer drop reasons for outlier stamps, and the default limits.
STAMP_AHEAD = "stamp_ahead"
STAMP_BEHIND = "stamp_behind"
DEFAULT_MAX_AHEAD_NS = 5_000_000_000
DEFAULT_MAX_BEHIND_NS = 5_000_000_000

_log = logging.getLogger(__name__)


class SyncError(Ws3dError, ValueError):
    """A synchroniser is configured wrongly or fed input it cannot use."""


@dataclass(frozen=True)
class MatchedSet:
    """One synchronised set: one entry per stream, in stream order.

    ``stamps_ns`` are the stamps exactly as given to ``add`` (offsets of
    :class:`PivotSynchronizer` are used for matching only). An entry is
    ``None`` (stamp and item) for a stream missing from the set; only
    :class:`PivotSynchronizer` produces missing entries, never for the pivot.
    """

    stamps_ns: tuple[int | None, ...]
    items: tuple[object | None, ...]
    pivot_index: int
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.stamps_ns) != n or len(self.items) != n:
            raise SyncError(
                f"MatchedSet: stamps_ns ({len(self.stamps_ns)}), items ({len(self.items)}) "
                f"and names ({n}) must have the same length"
            )
        if not 0 <= self.pivot_index < n or self.stamps_ns[self.pivot_index] is None:
            raise SyncError(
                f"MatchedSet: pivot_index {self.pivot_index} must name a present stream"
            )

    @property
    def pivot_stamp_ns(self) -> int:
        """Stamp of the pivot message (the set's reference time)."""
        stamp = self.stamps_ns[self.pivot_index]
        assert stamp is not None  # checked in __post_init__
        return stamp

    @property
    def interval_ns(self) -> int:
        """Latest minus earliest stamp among the streams present."""
        present = [s for s in self.stamps_ns if s is not None]
        return max(present) - min(present)

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the streams missing from this set."""
        return tuple(n for n, s in zip(self.names, self.stamps_ns, strict=True) if s is None)

    @property
    def complete(self) -> bool:
        """True when every stream is present."""
        return all(s is not None for s in self.stamps_ns)

    def item(self, name: str) -> object | None:
        """The item of stream ``name`` (``None`` when missing)."""
        return self.items[self._index(name)]

    def stamp(self, name: str) -> int | None:
        """The stamp of stream ``name`` (``None`` when missing)."""
        return self.stamps_ns[self._index(name)]

    def _index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise SyncError(f"unknown stream {name!r}; streams are {list(self.names)}") from None


@dataclass(frozen=True)
class _Msg:
    stamp: int  # as given by the caller
    key: int  # stamp used for matching (stamp + offset for PivotSynchronizer)
    item: object
    late: bool = False  # arrived inside the window of an already emitted pivot


def _as_ns(value: object, what: str) -> int:
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise SyncError(
            f"{what} must be an integer number of nanoseconds, found {type(value).__name__}"
        ) from None


def _check_names(names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if names is None:
        return tuple(str(i) for i in range(n))
    out = tuple(names)
    if len(out) != n:
        raise SyncError(f"names: expected {n} stream names, found {len(out)}")
    if not all(isinstance(x, str) and x for x in out):
        raise SyncError(f"names must be non-empty strings, found {list(out)}")
    if len(set(out)) != n:
        raise SyncError(f"names must be unique, found {list(out)}")
    return out


def _check_non_negative(value: object, what: str) -> int:
    ns = _as_ns(value, what)
    if ns < 0:
        raise SyncError(f"{what} must be >= 0, found {ns}")
    return ns


def _boundary(times: Sequence[int], end: bool) -> tuple[int, int]:
    """message_filters' getCandidateBoundary: first minimum (end=False) or last maximum."""
    index, time = 0, times[0]
    for k in range(1, len(times)):
        if (times[k] < time) != end:
            index, time = k, times[k]
    return index, time


class ApproximateTimeSynchronizer:
    """message_filters' ApproximateTime policy (ROS 2 C++ semantics), fed stamps in ns.

    Each stream has a deque of waiting messages. When every deque is non-empty
    the heads form a candidate; the stream whose head is latest becomes the
    *pivot*. The search then advances the earliest head, keeping the candidate
    with the smallest interval (a later candidate must beat the current one by
    the ``age_penalty`` factor). A candidate is published once it is provably
    optimal: the pivot itself would be advanced next, or every future candidate
    must span at least ``[pivot, latest head]``, or (with
    ``inter_message_lower_bound_ns``) even optimistic virtual messages cannot
    beat it. Publishing removes the set's messages; messages older than a
    candidate are discarded when the candidate is made (``"superseded"``).

    Contract:
    - sets are never output twice and each message appears in at most one set;
    - sets do not cross: per stream, stamps of successive sets increase;
    - with ``max_interval_ns`` set, no published set spans more than it;
    - ``published messages + sum(drops) + num_queued == messages given to add``.

    Drop reasons (``drops``, and per stream in :attr:`dropped_per_stream`):
    ``queue_overflow`` (a stream held more than ``queue_size`` messages; the
    oldest went), ``superseded`` (discarded by the search: it can no longer be
    part of a set), ``max_interval`` (discarded because the candidate it started
    spans more than ``max_interval_ns``), ``overflow_recovery`` (discarded
    because the stream that would become pivot just overflowed, so a better set
    may have been lost — message_filters' ``has_dropped_messages_``),
    ``out_of_order`` (stamp earlier than the previous one on that stream;
    message_filters would misbehave, we drop it), ``reset`` (queued when
    :meth:`reset` was called).

    Differences from message_filters: out-of-order messages are dropped and
    counted; durations are exact integers (``age_penalty`` scaling truncates
    toward zero, as ``rclcpp::Duration * double`` does).
    """

    def __init__(
        self,
        n_streams: int,
        queue_size: int = 10,
        max_interval_ns: int | None = None,
        *,
        names: Sequence[str] | None = None,
        age_penalty: float = 0.1,
        inter_message_lower_bound_ns: Sequence[int] | None = None,
    ) -> None:
        n = _as_ns(n_streams, "n_streams")
        if n < 2:
            raise SyncError(f"n_streams must be >= 2, found {n}")
        qs = _as_ns(queue_size, "queue_size")
        if qs < 1:
            raise SyncError(f"queue_size must be >= 1, found {qs}")
        if not (isinstance(age_penalty, int | float) and math.isfinite(age_penalty)):
            raise SyncError(f"age_penalty must be a finite number, found {age_penalty!r}")
        if age_penalty < 0:
            raise SyncError(f"age_penalty must be >= 0, found {age_penalty}")
        if inter_message_lower_bound_ns is None:
            bounds = [0] * n
        else:
            bounds = [
                _check_non_negative(b, f"inter_message_lower_bound_ns[{i}]")
                for i, b in enumerate(inter_message_lower_bound_ns)
            ]
            if len(bounds) != n:
                raise SyncError(
                    f"inter_message_lower_bound_ns: expected {n} values, found {len(bounds)}"
                )
        self.n_streams = n
        self.queue_size = qs
        self.max_interval_ns = (
            None
            if max_interval_ns is None
            else _check_non_negative(max_interval_ns, "max_interval")
        )
        self.age_penalty = float(age_penalty)
        self.names = _check_names(names, n)
        self._index_of = {name: i for i, name in enumerate(self.names)}
        self._bounds = bounds
        # (1 + age_penalty) as an exact ratio, so scaling integer durations is exact
        self._scale_num, self._scale_den = (1.0 + self.age_penalty).as_integer_ratio()
        self.drops: Counter[str] = Counter()
        self._drops_by_stream = [Counter[str]() for _ in range(n)]
        self.published_sets = 0
        self._warned_bound = [False] * n
        self._out: list[MatchedSet] = []
        self._clear()

    # -- public API ---------------------------------------------------------------------------

    def add(self, stream: int | str, stamp_ns: int, item: object) -> list[MatchedSet]:
        """Add one message; return the sets this arrival completed (usually 0 or 1)."""
        i = self._stream_index(stream)
        stamp = _as_ns(stamp_ns, "stamp_ns")
        last = self._last_stamp[i]
        if last is not None and stamp < last:
            self._drop(i, "out_of_order")
            return []
        if last is not None and stamp - last < self._bounds[i] and not self._warned_bound[i]:
            # message_filters warns once too: optimality proofs that use the bound may be wrong
            _log.warning(
                "stream %r: messages %d ns apart, closer than inter_message_lower_bound %d ns",
                self.names[i],
                stamp - last,
                self._bounds[i],
            )
            self._warned_bound[i] = True
        self._last_stamp[i] = stamp
        self._out = out = []
        dq = self._deques[i]
        dq.append(_Msg(stamp, stamp, item))
        if len(dq) == 1 and self._all_non_empty():
            self._process()
        # during _process() this deque may have held queue_size + 1 messages (as in C++)
        if len(dq) + len(self._past[i]) > self.queue_size:
            self._recover_all()  # cancels an ongoing candidate search
            dq.popleft()
            self._drop(i, "queue_overflow")
            self._has_dropped[i] = True
            if self._pivot is not None:
                self._candidate = None
                self._pivot = None
                self._process()  # there may still be enough messages for a new candidate
        self._out = []
        return out

    def reset(self) -> None:
        """Discard every queued message (counted as ``"reset"``) and forget stream order.

        Use after a time jump (a bag looping, sim time restarting): stamps may
        then go back without being dropped as out of order. Counters are kept.
        """
        for i in range(self.n_streams):
            for _ in range(len(self._deques[i]) + len(self._past[i])):
                self._drop(i, "reset")
        self._clear()

    @property
    def dropped_per_stream(self) -> dict[str, Counter[str]]:
        """Stream name -> (reason -> count), copies."""
        return {name: Counter(c) for name, c in zip(self.names, self._drops_by_stream, strict=True)}

    @property
    def num_queued(self) -> int:
        """Messages held (waiting or part of the current candidate search)."""
        return sum(len(d) + len(p) for d, p in zip(self._deques, self._past, strict=True))

    def stats(self) -> dict[str, object]:
        """Counts for diagnostics."""
        return {
            "published_sets": self.published_sets,
            "queued": self.num_queued,
            "drops": dict(self.drops),
            "dropped_per_stream": {k: dict(v) for k, v in self.dropped_per_stream.items()},
        }

    # -- the message_filters algorithm ----------------------------------------------------------

    def _clear(self) -> None:
        n = self.n_streams
        self._deques: list[deque[_Msg]] = [deque() for _ in range(n)]
        self._past: list[list[_Msg]] = [[] for _ in range(n)]
        self._candidate: tuple[_Msg, ...] | None = None
        self._pivot: int | None = None
        self._pivot_time = 0
        self._candidate_start = 0
        self._candidate_end = 0
        self._has_dropped = [False] * n
        self._last_stamp: list[int | None] = [None] * n

    def _stream_index(self, stream: int | str) -> int:
        if isinstance(stream, str):
            try:
                return self._index_of[stream]
            except KeyError:
                raise SyncError(
                    f"unknown stream {stream!r}; streams are {list(self.names)}"
                ) from None
        i = _as_ns(stream, "stream")
        if not 0 <= i < self.n_streams:
            raise SyncError(f"stream index {i} out of range [0, {self.n_streams})")
        return i

    def _drop(self, i: int, reason: str) -> None:
        self.drops[reason] += 1
        self._drops_by_stream[i][reason] += 1

    def _scale(self, d: int) -> int:
        """d * (1 + age_penalty), truncated toward zero like rclcpp::Duration * double."""
        if d >= 0:
            return d * self._scale_num // self._scale_den
        return -((-d) * self._scale_num // self._scale_den)

    def _all_non_empty(self) -> bool:
        return all(self._deques)

    def _delete_front(self, i: int, reason: str) -> None:
        self._deques[i].popleft()
        self._drop(i, reason)

    def _move_front_to_past(self, i: int) -> None:
        self._past[i].append(self._deques[i].popleft())

    def _recover(self, i: int, count: int) -> None:
        past, dq = self._past[i], self._deques[i]
        for _ in range(count):
            dq.appendleft(past.pop())

    def _recover_all(self) -> None:
        for i in range(self.n_streams):
            self._recover(i, len(self._past[i]))

    def _make_candidate(self, start_time: int, end_time: int) -> None:
        self._candidate = tuple(d[0] for d in self._deques)
        # every past message is older than the new candidate: it can never be used
        for i, past in enumerate(self._past):
            for _ in past:
                self._drop(i, "superseded")
            past.clear()
        self._candidate_start = start_time
        self._candidate_end = end_time

    def _publish(self) -> None:
        cand, pivot = self._candidate, self._pivot
        assert cand is not None and pivot is not None
        self._out.append(
            MatchedSet(
                stamps_ns=tuple(m.stamp for m in cand),
                items=tuple(m.item for m in cand),
                pivot_index=pivot,
                names=self.names,
            )
        )
        self.published_sets += 1
        self._candidate = None
        self._pivot = None
        # recover the messages hidden in past and delete the ones of the candidate
        for i in range(self.n_streams):
            self._recover(i, len(self._past[i]))
            used = self._deques[i].popleft()
            assert used is cand[i]

    def _virtual_time(self, i: int) -> int:
        dq = self._deques[i]
        if dq:
            return dq[0].key
        # optimistic: the next message comes as early as the rate bound allows
        return max(self._past[i][-1].key + self._bounds[i], self._pivot_time)

    def _process(self) -> None:
        n = self.n_streams
        while self._all_non_empty():
            heads = [d[0].key for d in self._deques]
            end_index, end_time = _boundary(heads, end=True)
            start_index, start_time = _boundary(heads, end=False)
            for i in range(n):
                if i != end_index:
                    # no dropped message could have beaten the ones we hold: fine as pivot again
                    self._has_dropped[i] = False
            if self._pivot is None:
                if (
                    self.max_interval_ns is not None
                    and end_time - start_time > self.max_interval_ns
                ):
                    self._delete_front(start_index, "max_interval")
                    continue
                if self._has_dropped[end_index]:
                    self._delete_front(start_index, "overflow_recovery")
                    continue
                self._make_candidate(start_time, end_time)
                self._pivot = end_index
                self._pivot_time = end_time
                self._move_front_to_past(start_index)
            else:
                if (
                    self._scale(end_time - self._candidate_end)
                    >= start_time - self._candidate_start
                ):
                    self._move_front_to_past(start_index)  # not better
                else:
                    self._make_candidate(start_time, end_time)  # better; same pivot
                    self._move_front_to_past(start_index)
            age_check = self._scale(end_time - self._candidate_end)
            if start_index == self._pivot:
                self._publish()  # all candidates for this pivot exhausted
            elif age_check >= self._pivot_time - self._candidate_start:
                # any future candidate spans [pivot_time, end_time]: already too big
                self._publish()
            elif not self._all_non_empty():
                self._virtual_search()

    def _virtual_search(self) -> None:
        """Try to prove optimality with optimistic virtual messages (inter-message bounds)."""
        moves = [0] * self.n_streams
        while True:
            times = [self._virtual_time(i) for i in range(self.n_streams)]
            _, end_time = _boundary(times, end=True)
            start_index, start_time = _boundary(times, end=False)
            age = self._scale(end_time - self._candidate_end)
            if age >= self._pivot_time - self._candidate_start:
                self._publish()  # proved optimal; this also undoes the virtual moves
                return
            if age < start_time - self._candidate_start:
                # an optimistic candidate beats ours: cannot prove, undo the virtual moves
                for i, count in enumerate(moves):
                    self._recover(i, count)
                return
            self._move_front_to_past(start_index)
            moves[start_index] += 1


@dataclass
class _Pending:
    stamp: int
    key: int
    item: object
    arrival_ns: int


class PivotSynchronizer:
    """LiDAR-driven synchronisation: every pivot message yields exactly one set.

    Matching: stamps are offset-corrected (``key = stamp + offsets_ns[name]``).
    Pivots are handled in stamp order; each takes, in every other stream, the
    still-unused message whose key is nearest to the pivot's key within
    ``slop_ns`` (``|d| <= slop``; ties go to the earlier message). A message is
    used by at most one set, and sets do not cross: a message at or before one
    already used on its stream is never used. The rule is greedy in pivot
    order; with ``slop_ns`` below half the pivot period (the sensible setting)
    each message is within slop of one pivot only, so this is the same as
    "the nearest pivot wins".

    Emission, always in pivot-stamp order:
    - *decided*: as soon as every other stream has delivered a message whose
      key is at or after the pivot's key — the nearest one is then certain
      (streams are in stamp order), or there is provably none within slop;
    - *timeout*: when ``now_ns - arrival_ns >= timeout_ns`` (the caller's clock,
      passed to :meth:`add` and :meth:`poll`), with the best match among what
      has arrived, streams with none set to ``None`` and counted in ``missing``;
    - *forced*: when more than ``queue_size`` pivots are pending, the oldest is
      emitted with what is there (``drops["forced_incomplete"]``, not lost);
    - *flush*: :meth:`flush` emits every pending pivot (bag end).

    ``queue_size`` bounds both the pending pivots and the messages held per
    other stream (only messages some pending or future pivot can still reach
    are held).

    A pivot is never dropped, whatever the other streams do, except when its
    own stamp goes back in time (``drops["out_of_order"]``) or is an outlier (below).

    Outlier stamps (``max_ahead_ns`` / ``max_behind_ns``, default 5 s each, ``None``
    turns a check off) are dropped and counted without moving the stream's clock, so
    one bad stamp cannot stall a stream (e.g. an image stamped +1000 s would otherwise
    make every later image ``out_of_order``):
    - the pivot's clock is its last accepted stamp (key); the others are checked
      against it: a message whose key is more than ``max_ahead_ns`` after it is
      ``stamp_ahead``, more than ``max_behind_ns`` before it ``stamp_behind``;
    - a pivot more than ``max_ahead_ns`` after its own clock is ``stamp_ahead``, unless
      the pivot before it was dropped that way too and this one is within
      ``max_ahead_ns`` after that one (two sweeps agree: the clock really moved on, e.g.
      after a pause), then it is taken; one more than ``max_behind_ns`` before is
      ``stamp_behind`` (a smaller step back stays ``out_of_order``);
    - a message taken before the first pivot (nothing to check it against) that turns
      out to be ahead of the first pivots is dropped then (``stamp_ahead``), and its
      stream's order restarts from what is left.
    Drop-reason names: :data:`STAMP_AHEAD`, :data:`STAMP_BEHIND`.

    Drop reasons for non-pivot messages: ``late`` (arrived inside the window of
    an already emitted pivot — or at/before a message already used on its
    stream — and no later pivot used it), ``unmatched`` (arrived in time but no
    pivot took it: not the nearest, or outside every pivot window),
    ``queue_overflow`` (more than ``queue_size`` messages held on one stream;
    the oldest went), ``out_of_order`` (stamp earlier than the previous one on that stream),
    ``stamp_ahead`` / ``stamp_behind`` (outliers, above), ``reset`` (held when
    :meth:`reset` was called).
    Accounting: per stream, used + dropped + held == messages given to ``add``.
    """

    def __init__(
        self,
        names: Sequence[str],
        pivot: str,
        *,
        slop_ns: int,
        timeout_ns: int,
        queue_size: int = 10,
        offsets_ns: Mapping[str, int] | None = None,
        max_ahead_ns: int | None = DEFAULT_MAX_AHEAD_NS,
        max_behind_ns: int | None = DEFAULT_MAX_BEHIND_NS,
    ) -> None:
        names = tuple(names)
        self.names = _check_names(names, len(names))
        if not self.names:
            raise SyncError("names: expected at least the pivot stream, found none")
        if pivot not in self.names:
            raise SyncError(f"pivot {pivot!r} is not one of the streams {list(self.names)}")
        self.pivot = pivot
        self.slop_ns = _check_non_negative(slop_ns, "slop_ns")
        self.timeout_ns = _check_non_negative(timeout_ns, "timeout_ns")
        self.queue_size = _as_ns(queue_size, "queue_size")
        if self.queue_size < 1:
            raise SyncError(f"queue_size must be >= 1, found {self.queue_size}")
        offsets = dict(offsets_ns or {})
        unknown = sorted(set(offsets) - set(self.names))
        if unknown:
            raise SyncError(f"offsets_ns names unknown streams {unknown}; streams are {self.names}")
        self._offsets = [_as_ns(offsets.get(n, 0), f"offsets_ns[{n!r}]") for n in self.names]
        self.max_ahead_ns = (
            None if max_ahead_ns is None else _check_non_negative(max_ahead_ns, "max_ahead_ns")
        )
        self.max_behind_ns = (
            None if max_behind_ns is None else _check_non_negative(max_behind_ns, "max_behind_ns")
        )
        self._index_of = {name: i for i, name in enumerate(self.names)}
        self._pivot_index = self._index_of[pivot]
        self._others = [i for i in range(len(self.names)) if i != self._pivot_index]
        self.drops: Counter[str] = Counter()
        self.missing: Counter[str] = Counter()
        self._drops_by_stream = [Counter[str]() for _ in self.names]
        self._emitted: Counter[str] = Counter()  # emission reason -> count
        self._complete = 0
        self._received = [0] * len(self.names)
        self._used = [0] * len(self.names)
        self._clear()

    # -- public API ---------------------------------------------------------------------------

    def add(self, name: str, stamp_ns: int, item: object, now_ns: int) -> list[MatchedSet]:
        """Add one message received at ``now_ns``; return the sets emitted (pivot-stamp order)."""
        i = self._stream_index(name)
        stamp = _as_ns(stamp_ns, "stamp_ns")
        now = _as_ns(now_ns, "now_ns")
        self._received[i] += 1
        key = stamp + self._offsets[i]
        outlier = self._outlier_reason(i, key, now)
        if outlier is not None:
            self._drop(i, outlier)
            return self._drain(now)
        last = self._last_stamp[i]
        if last is not None and stamp < last:
            self._drop(i, "out_of_order")
            return self._drain(now)
        self._last_stamp[i] = stamp
        if i == self._pivot_index:
            self._pending.append(_Pending(stamp, key, item, now))
            self._last_pivot_key = key
            self._last_pivot_now = now
            self._pivot_jump = None
            self._purge_ahead(key)
        else:
            reason = self._unusable_reason(i, key)
            if reason is not None:
                self._drop(i, reason)
            else:
                emitted = self._last_emitted_key
                late = emitted is not None and key <= emitted + self.slop_ns
                buf = self._buffers[i]
                buf.append(_Msg(stamp, key, item, late))
                if len(buf) > self.queue_size:
                    buf.popleft()
                    self._drop(i, "queue_overflow")
        out = self._drain(now)
        while len(self._pending) > self.queue_size:
            self.drops["forced_incomplete"] += 1
            out.append(self._emit(self._pending.popleft(), "forced"))
            out.extend(self._drain(now))
        return out

    def poll(self, now_ns: int) -> list[MatchedSet]:
        """Emit the pivots that are decided or whose wait reached ``timeout_ns``."""
        return self._drain(_as_ns(now_ns, "now_ns"))

    def flush(self) -> list[MatchedSet]:
        """End of input: emit every pending pivot with the matches that are there."""
        out = [self._emit(p, "flush") for p in self._pending]
        self._pending.clear()
        self._prune()
        return out

    def reset(self) -> list[MatchedSet]:
        """Flush pending pivots, discard held messages (``"reset"``), forget stream order.

        Use after a time jump (bag loop, sim time restart). Returns the flushed sets.
        """
        out = self.flush()
        for i in self._others:
            for _ in self._buffers[i]:
                self._drop(i, "reset")
        self._clear()
        return out

    @property
    def num_pending(self) -> int:
        """Pivot messages waiting for their set."""
        return len(self._pending)

    @property
    def dropped_per_stream(self) -> dict[str, Counter[str]]:
        """Stream name -> (reason -> count), copies."""
        return {name: Counter(c) for name, c in zip(self.names, self._drops_by_stream, strict=True)}

    def stats(self) -> dict[str, object]:
        """Counts for diagnostics: emitted sets by reason, completeness, drops, missing."""
        return {
            "received": dict(zip(self.names, self._received, strict=True)),
            "used": dict(zip(self.names, self._used, strict=True)),
            "emitted": sum(self._emitted.values()),
            "complete": self._complete,
            "decided": self._emitted["decided"],
            "timeout": self._emitted["timeout"],
            "forced": self._emitted["forced"],
            "flush": self._emitted["flush"],
            "pending": len(self._pending),
            "held": {self.names[i]: len(self._buffers[i]) for i in self._others},
            "drops": dict(self.drops),
            "missing": dict(self.missing),
        }

    # -- internals ----------------------------------------------------------------------------

    def _clear(self) -> None:
        n = len(self.names)
        self._pending: deque[_Pending] = deque()
        self._buffers: list[deque[_Msg]] = [deque() for _ in range(n)]
        self._last_stamp: list[int | None] = [None] * n
        self._floor: list[int | None] = [None] * n  # key of the last used message per stream
        self._last_pivot_key: int | None = None
        self._last_pivot_now: int | None = None  # receive time of that pivot
        self._last_emitted_key: int | None = None
        self._pivot_jump: int | None = None  # key of the last pivot dropped as stamp_ahead

    def _stream_index(self, name: str) -> int:
        try:
            return self._index_of[name]
        except (KeyError, TypeError):
            raise SyncError(f"unknown stream {name!r}; streams are {list(self.names)}") from None

    def _drop(self, i: int, reason: str) -> None:
        self.drops[reason] += 1
        self._drops_by_stream[i][reason] += 1

    def _outlier_reason(self, i: int, key: int, now: int) -> str | None:
        """``stamp_ahead`` / ``stamp_behind`` for a message far from the pivot's clock.

        The clock is allowed to have moved on by the receive time elapsed since the last
        pivot: after a pause of the sensors, stamps that advanced with the receive clock
        are credible, and the first messages after the pause are kept."""
        clock = self._last_pivot_key
        if clock is None:
            return None
        ahead, behind = self.max_ahead_ns, self.max_behind_ns
        if behind is not None and key < clock - behind:
            return STAMP_BEHIND
        if ahead is None:
            return None
        elapsed = max(0, now - self._last_pivot_now) if self._last_pivot_now is not None else 0
        if key <= clock + ahead + elapsed:
            return None
        if i == self._pivot_index:
            jump = self._pivot_jump
            if jump is not None and jump <= key <= jump + ahead:
                return None  # two sweeps agree: the clock moved on
            self._pivot_jump = key
        return STAMP_AHEAD

    def _purge_ahead(self, clock: int) -> None:
        """Drop messages taken before any pivot could check them that are far ahead of it."""
        if self.max_ahead_ns is None:
            return
        limit = clock + self.max_ahead_ns
        for i in self._others:
            last = self._last_stamp[i]
            if last is None or last + self._offsets[i] <= limit:
                continue
            buf = self._buffers[i]
            kept = deque(m for m in buf if m.key <= limit)
            for _ in range(len(buf) - len(kept)):
                self._drop(i, STAMP_AHEAD)
            self._buffers[i] = kept
            self._last_stamp[i] = kept[-1].stamp if kept else None

    def _discard(self, i: int, msg: _Msg) -> None:
        self._drop(i, "late" if msg.late else "unmatched")

    def _pivot_lower_bound(self) -> int | None:
        """Smallest key a pending or future pivot can have (pivots come in stamp order)."""
        return self._pending[0].key if self._pending else self._last_pivot_key

    def _unusable_reason(self, i: int, key: int) -> str | None:
        floor = self._floor[i]
        lower = self._pivot_lower_bound()
        if (floor is None or key > floor) and (lower is None or key >= lower - self.slop_ns):
            return None
        emitted = self._last_emitted_key
        if emitted is not None and key <= emitted + self.slop_ns:
            return "late"  # its time range was already emitted
        return "unmatched"  # falls before every pivot that can still come

    def _ready(self, pivot: _Pending) -> bool:
        for i in self._others:
            last = self._last_stamp[i]
            if last is None or last + self._offsets[i] < pivot.key:
                return False
        return True

    def _drain(self, now: int) -> list[MatchedSet]:
        out: list[MatchedSet] = []
        while self._pending:
            head = self._pending[0]
            if self._ready(head):
                reason = "decided"
            elif now - head.arrival_ns >= self.timeout_ns:
                reason = "timeout"
            else:
                break
            self._pending.popleft()
            out.append(self._emit(head, reason))
        self._prune()
        return out

    def _prune(self) -> None:
        lower = self._pivot_lower_bound()
        if lower is None:
            return
        for i in self._others:
            buf = self._buffers[i]
            while buf and buf[0].key < lower - self.slop_ns:
                self._discard(i, buf.popleft())

    def _emit(self, pivot: _Pending, reason: str) -> MatchedSet:
        n = len(self.names)
        stamps: list[int | None] = [None] * n
        items: list[object | None] = [None] * n
        stamps[self._pivot_index] = pivot.stamp
        items[self._pivot_index] = pivot.item
        self._used[self._pivot_index] += 1
        for i in self._others:
            buf = self._buffers[i]
            best, best_d = -1, self.slop_ns + 1
            for k, msg in enumerate(buf):  # held messages are in key order
                if msg.key > pivot.key + self.slop_ns:
                    break
                d = abs(msg.key - pivot.key)
                if d < best_d:
                    best, best_d = k, d
            if best < 0:
                self.missing[self.names[i]] += 1
                continue
            for _ in range(best):
                self._discard(i, buf.popleft())
            msg = buf.popleft()
            self._floor[i] = msg.key
            while buf and buf[0].key <= msg.key:  # same stamp: sets must not cross
                self._discard(i, buf.popleft())
            self._used[i] += 1
            stamps[i] = msg.stamp
            items[i] = msg.item
        self._last_emitted_key = pivot.key
        self._emitted[reason] += 1
        result = MatchedSet(tuple(stamps), tuple(items), self._pivot_index, self.names)
        if result.complete:
            self._complete += 1
        return result
