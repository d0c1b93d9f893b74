"""Tests of ws3d_ros.sync: ApproximateTime semantics and the LiDAR-driven pivot policy."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ws3d_ros.errors import Ws3dError
from ws3d_ros.sync import (
    STAMP_AHEAD,
    STAMP_BEHIND,
    ApproximateTimeSynchronizer,
    MatchedSet,
    PivotSynchronizer,
    SyncError,
)

MS = 1_000_000
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def feed(sync: ApproximateTimeSynchronizer, events: list[tuple[int, int]]) -> list[tuple]:
    """Add (stream, stamp) events (item = event index); return (event index, stamps) per set."""
    out = []
    for k, (stream, stamp) in enumerate(events):
        out.extend((k, s.stamps_ns) for s in sync.add(stream, stamp, k))
    return out


# -- ApproximateTimeSynchronizer: hand-written scenarios --------------------------------------
# Expected outputs were worked out by hand from the message_filters algorithm and checked
# against the C++ policy (compiled against stub rclcpp types) on the same arrival sequences.


def test_perfect_alignment_publishes_on_the_last_message_of_each_set() -> None:
    sync = ApproximateTimeSynchronizer(3)
    events = [(s, t) for t in (0, 100, 200) for s in (0, 1, 2)]
    out = []
    for k, (stream, stamp) in enumerate(events):
        out += [(k, s.stamps_ns, s.pivot_index) for s in sync.add(stream, stamp, k)]
    # ties: the pivot is the last stream holding the latest stamp (message_filters order)
    assert out == [(2, (0, 0, 0), 2), (5, (100, 100, 100), 2), (8, (200, 200, 200), 2)]
    assert sync.drops == Counter()
    assert sync.num_queued == 0


def test_jitter_finds_the_ideal_sets() -> None:
    s0, s1, s2 = [0, 100, 200, 300], [8, 97, 205, 296], [-5, 110, 190, 310]
    events = sorted(
        [(0, t) for t in s0] + [(1, t) for t in s1] + [(2, t) for t in s2], key=lambda e: e[1]
    )
    out = feed(ApproximateTimeSynchronizer(3), events)
    assert [stamps for _, stamps in out] == [(0, 8, -5), (100, 97, 110), (200, 205, 190)]
    # each set is proved optimal when the stream that ran dry (the -5, 110, 190 one) delivers
    # its next message: only then can no later candidate be better
    assert [k for k, _ in out] == [5, 8, 11]


def test_missing_message_is_superseded_and_the_rest_still_pairs() -> None:
    sync = ApproximateTimeSynchronizer(2, names=["a", "b"])
    events = [(0, 0), (1, 0), (0, 100), (0, 200), (1, 200), (0, 300), (1, 300)]
    out = feed(sync, events)
    assert out == [(1, (0, 0)), (4, (200, 200)), (6, (300, 300))]
    assert sync.drops == Counter(superseded=1)
    assert sync.dropped_per_stream == {"a": Counter(superseded=1), "b": Counter()}


def test_pivot_and_interval_of_a_published_set() -> None:
    sync = ApproximateTimeSynchronizer(2)
    assert sync.add(0, 0, "a0") == []
    assert sync.add(1, 3, "b0") == []  # cannot prove (0, 3) optimal yet
    (s,) = sync.add(0, 100, "a1")
    assert s.stamps_ns == (0, 3) and s.items == ("a0", "b0")
    assert s.pivot_index == 1 and s.pivot_stamp_ns == 3 and s.interval_ns == 3
    assert s.complete and s.missing == ()
    assert s.item("1") == "b0" and s.stamp("0") == 0


def test_inter_message_lower_bound_publishes_without_waiting() -> None:
    sync = ApproximateTimeSynchronizer(2, inter_message_lower_bound_ns=[100, 100])
    assert sync.add(0, 0, "a0") == []
    (s,) = sync.add(1, 3, "b0")  # the next "a" cannot come before 100: (0, 3) is optimal
    assert s.stamps_ns == (0, 3)


def test_max_interval_rejects_wide_candidates() -> None:
    sync = ApproximateTimeSynchronizer(2, max_interval_ns=40)
    events = [(0, 0), (1, 50), (0, 100), (1, 160), (0, 170), (1, 175)]
    out = feed(sync, events)
    # (0,50), (100,50), (100,160) all span more than 40: their oldest message goes
    assert out == [(5, (170, 175))]
    assert sync.drops == Counter(max_interval=3, superseded=1)


def test_queue_overflow_drops_the_oldest() -> None:
    sync = ApproximateTimeSynchronizer(2, queue_size=2)
    assert feed(sync, [(0, 0), (0, 10), (0, 20)]) == []
    assert sync.drops == Counter(queue_overflow=1)
    assert sync.dropped_per_stream["0"] == Counter(queue_overflow=1)
    (s,) = sync.add(1, 20, "b")
    assert s.stamps_ns == (20, 20)
    assert sync.drops == Counter(queue_overflow=1, superseded=1)
    assert sync.num_queued == 0


def test_overflowed_stream_can_be_pivot_again_once_it_is_not_the_latest_head() -> None:
    sync = ApproximateTimeSynchronizer(2, queue_size=2)
    events = [(1, 2), (1, 7), (1, 20), (0, 9), (0, 20)]
    # b@2 overflows; (9, 7) has a as pivot, which clears b's "has dropped" mark, so b may
    # be the pivot of (20, 20)
    assert feed(sync, events) == [(3, (9, 7)), (4, (20, 20))]
    assert sync.drops == Counter(queue_overflow=1)


def test_out_of_order_stamp_is_dropped_and_counted() -> None:
    sync = ApproximateTimeSynchronizer(2)
    assert sync.add(0, 100, "a") == []
    assert sync.add(0, 50, "late") == []
    assert sync.drops == Counter(out_of_order=1)
    (s,) = sync.add(1, 100, "b")
    assert s.items == ("a", "b")


def test_age_penalty_prefers_the_older_candidate() -> None:
    # pivot b@14: candidate (5, 14) spans 9, the later (22, 14) spans 8; the later one wins
    # only if 8 * (1 + age_penalty) < 9
    events = [(1, 14), (0, 5), (0, 22)]
    assert feed(ApproximateTimeSynchronizer(2, age_penalty=0.0), events) == [(2, (22, 14))]
    assert feed(ApproximateTimeSynchronizer(2, age_penalty=0.1), events) == [(2, (22, 14))]
    sync = ApproximateTimeSynchronizer(2, age_penalty=0.5)
    assert feed(sync, events) == [(2, (5, 14))]
    assert sync.num_queued == 1  # a@22 waits for the next b


def test_reset_discards_queued_messages_and_accepts_a_time_jump() -> None:
    sync = ApproximateTimeSynchronizer(2)
    feed(sync, [(0, 1000), (0, 1100)])
    sync.reset()
    assert sync.drops == Counter(reset=2) and sync.num_queued == 0
    assert sync.add(0, 0, "a") == []  # would be out of order without the reset
    assert len(sync.add(1, 0, "b")) == 1


def test_bad_arguments_raise_sync_error() -> None:
    with pytest.raises(SyncError, match="n_streams"):
        ApproximateTimeSynchronizer(1)
    with pytest.raises(SyncError, match="queue_size"):
        ApproximateTimeSynchronizer(2, queue_size=0)
    with pytest.raises(SyncError, match="age_penalty"):
        ApproximateTimeSynchronizer(2, age_penalty=-0.5)
    with pytest.raises(SyncError, match="max_interval"):
        ApproximateTimeSynchronizer(2, max_interval_ns=-1)
    with pytest.raises(SyncError, match="inter_message_lower_bound_ns"):
        ApproximateTimeSynchronizer(2, inter_message_lower_bound_ns=[1])
    with pytest.raises(SyncError, match="unique"):
        ApproximateTimeSynchronizer(2, names=["x", "x"])
    sync = ApproximateTimeSynchronizer(2, names=["lidar", "cam"])
    with pytest.raises(SyncError, match="unknown stream 'radar'"):
        sync.add("radar", 0, None)
    with pytest.raises(SyncError, match="out of range"):
        sync.add(2, 0, None)
    with pytest.raises(Ws3dError, match="integer number of nanoseconds"):
        sync.add("cam", 1.5, None)  # type: ignore[arg-type]


# -- ApproximateTimeSynchronizer: brute-force optimality reference and properties ---------------


def brute_force_best_interval(remaining: list[list[int]], pivot_stream: int) -> int:
    """Smallest interval over every set (one message per stream) containing the pivot."""
    pivot = remaining[pivot_stream][0]
    choices = [[pivot] if i == pivot_stream else r for i, r in enumerate(remaining)]
    return min(max(c) - min(c) for c in itertools.product(*choices))


@st.composite
def distinct_stamp_streams(draw: st.DrawFn) -> tuple[int, list[list[int]], list[int]]:
    """Streams of distinct stamps (no ties anywhere) and an arrival interleaving."""
    n = draw(st.integers(2, 3))
    stamps = draw(st.lists(st.integers(0, 400), min_size=n, max_size=15, unique=True))
    owner = draw(st.lists(st.integers(0, n - 1), min_size=len(stamps), max_size=len(stamps)))
    streams = [sorted(t for t, o in zip(stamps, owner, strict=True) if o == i) for i in range(n)]
    # a sentinel per stream, far in the future, lets every real pivot be resolved
    for i, s in enumerate(streams):
        s.append(10_000 + i)
    pool = [i for i, s in enumerate(streams) for _ in s]
    order = draw(st.permutations(pool))
    return n, streams, list(order)


@PROPERTY
@given(distinct_stamp_streams())
def test_published_sets_are_optimal_brute_force(case: tuple) -> None:
    n, streams, order = case
    sync = ApproximateTimeSynchronizer(n, queue_size=1000, age_penalty=0.0)
    nxt = [0] * n
    published: list[MatchedSet] = []
    for stream in order:
        published += sync.add(stream, streams[stream][nxt[stream]], (stream, nxt[stream]))
        nxt[stream] += 1
    assert sync.drops["queue_overflow"] == 0
    remaining = [list(s) for s in streams]
    for s in published:
        assert all(remaining), "a set was published although a stream had nothing left"
        heads = [r[0] for r in remaining]
        pivot_stream = heads.index(max(heads))
        assert s.pivot_index == pivot_stream
        assert s.stamps_ns[pivot_stream] == heads[pivot_stream]
        assert s.interval_ns == brute_force_best_interval(remaining, pivot_stream)
        for i, stamp in enumerate(s.stamps_ns):
            remaining[i] = [t for t in remaining[i] if t > stamp]  # sets never cross
    # every set whose pivot is a real message has been published
    if all(remaining):
        heads = [r[0] for r in remaining]
        assert max(heads) >= 10_000


@st.composite
def arbitrary_streams(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], dict]:
    """Any arrival sequence: ties, duplicates and out-of-order stamps allowed."""
    n = draw(st.integers(2, 4))
    events = draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 300)), min_size=0, max_size=40)
    )
    kwargs = {
        "queue_size": draw(st.integers(1, 6)),
        "max_interval_ns": draw(st.none() | st.integers(0, 80)),
        "age_penalty": draw(st.sampled_from([0.0, 0.1, 0.5, 2.0])),
        "inter_message_lower_bound_ns": draw(
            st.lists(st.integers(0, 40), min_size=n, max_size=n) | st.none()
        ),
    }
    return n, events, kwargs


@PROPERTY
@given(arbitrary_streams())
def test_approximate_time_invariants(case: tuple) -> None:
    n, events, kwargs = case
    sync = ApproximateTimeSynchronizer(n, **kwargs)
    sets: list[MatchedSet] = []
    for k, (stream, stamp) in enumerate(events):
        sets += sync.add(stream, stamp, (stream, k))
    used = [item for s in sets for item in s.items]
    assert len(used) == len(set(used)), "a message appears in two sets"
    for s in sets:
        assert s.complete and len(s.items) == n
        assert [item[0] for item in s.items] == list(range(n))  # one per stream, in order
        if kwargs["max_interval_ns"] is not None:
            assert s.interval_ns <= kwargs["max_interval_ns"]
    for i in range(n):
        per_stream = [s.items[i][1] for s in sets]
        assert per_stream == sorted(per_stream)  # increasing arrival (and stamp) order
        stamps = [s.stamps_ns[i] for s in sets]
        assert stamps == sorted(stamps)
    # every input message is published, dropped or still queued
    assert n * len(sets) + sum(sync.drops.values()) + sync.num_queued == len(events)
    assert sum(sum(c.values()) for c in sync.dropped_per_stream.values()) == sum(
        sync.drops.values()
    )
    assert sync.published_sets == len(sets)


@PROPERTY
@given(
    n=st.integers(2, 4),
    n_sets=st.integers(1, 12),
    period=st.integers(40, 200),
    data=st.data(),
)
def test_periodic_streams_with_small_jitter_find_every_ideal_set(
    n: int, n_sets: int, period: int, data: st.DataObject
) -> None:
    bound = (period - 1) // 4  # |jitter| < period / 4
    jitter = st.integers(-bound, bound)
    # one extra period so the last ideal set can be proved optimal
    stamps = [[k * period + data.draw(jitter) for k in range(n_sets + 1)] for _ in range(n)]
    delays = st.integers(0, period // 2 - 1)
    arrivals = sorted(
        (t + data.draw(delays), i, t) for i in range(n) for t in stamps[i]
    )  # per stream, arrival order == stamp order: delays are below the smallest stamp gap
    sync = ApproximateTimeSynchronizer(n, queue_size=10)
    sets: list[MatchedSet] = []
    for _, i, t in arrivals:
        sets += sync.add(i, t, t)
    ideal = [tuple(stamps[i][k] for i in range(n)) for k in range(n_sets + 1)]
    assert [s.stamps_ns for s in sets[:n_sets]] == ideal[:n_sets]
    assert len(sets) in (n_sets, n_sets + 1)
    assert sync.drops["queue_overflow"] == 0 and sync.drops["superseded"] == 0


# -- PivotSynchronizer: hand-written scenarios -------------------------------------------------


def make_pivot(**kwargs: object) -> PivotSynchronizer:
    args: dict = {"slop_ns": 20 * MS, "timeout_ns": 100 * MS, "queue_size": 10}
    args.update(kwargs)
    return PivotSynchronizer(["lidar", "cam0", "cam1"], "lidar", **args)


def test_pivot_perfect_alignment_emits_as_soon_as_decided() -> None:
    sync = make_pivot()
    assert sync.add("lidar", 0, "L0", now_ns=5 * MS) == []
    assert sync.add("cam0", 0, "A0", now_ns=6 * MS) == []
    (s,) = sync.add("cam1", 0, "B0", now_ns=7 * MS)
    assert s.items == ("L0", "A0", "B0") and s.stamps_ns == (0, 0, 0)
    assert s.pivot_index == 0 and s.complete
    assert sync.stats()["decided"] == 1 and sync.num_pending == 0


def test_pivot_takes_the_nearest_message_within_slop() -> None:
    sync = make_pivot()
    sync.add("lidar", 100 * MS, "L", now_ns=0)
    sync.add("cam0", 70 * MS, "A70", now_ns=0)  # 30 ms away: outside slop
    sync.add("cam0", 95 * MS, "A95", now_ns=0)
    sync.add("cam1", 88 * MS, "B88", now_ns=0)
    assert sync.add("cam1", 111 * MS, "B111", now_ns=0) == []  # cam0 not decided yet
    (s,) = sync.add("cam0", 103 * MS, "A103", now_ns=0)  # 3 ms beats 5 ms
    assert s.items == ("L", "A103", "B111")  # 11 ms beats 12 ms
    # A70 and A95 were never used; B88 too
    assert sync.drops == Counter(unmatched=3)


def test_pivot_tie_goes_to_the_earlier_message() -> None:
    sync = make_pivot()
    sync.add("lidar", 100, "L", now_ns=0)
    sync.add("cam0", 90, "A90", now_ns=0)
    sync.add("cam0", 110, "A110", now_ns=0)
    (s,) = sync.add("cam1", 100, "B", now_ns=0)
    assert s.item("cam0") == "A90"


def test_pivot_decided_with_no_match_when_a_later_message_proves_none() -> None:
    sync = make_pivot()
    sync.add("lidar", 100 * MS, "L", now_ns=0)
    sync.add("cam1", 100 * MS, "B", now_ns=0)
    (s,) = sync.add("cam0", 150 * MS, "A150", now_ns=0)  # nothing within 20 ms of 100
    assert s.items == ("L", None, "B") and s.missing == ("cam0",)
    assert sync.missing == Counter(cam0=1)
    assert sync.stats()["decided"] == 1


def test_pivot_timeout_emits_with_missing_camera_and_late_camera_is_dropped() -> None:
    sync = make_pivot()
    sync.add("lidar", 0, "L0", now_ns=1000 * MS)
    sync.add("cam0", 0, "A0", now_ns=1001 * MS)
    assert sync.poll(now_ns=1099 * MS) == []
    (s,) = sync.poll(now_ns=1100 * MS)
    assert s.items == ("L0", "A0", None) and s.stamps_ns == (0, 0, None)
    assert sync.missing == Counter(cam1=1)
    assert sync.stats()["timeout"] == 1
    assert sync.add("cam1", 0, "B0", now_ns=1200 * MS) == []  # its pivot already went
    assert sync.add("lidar", 100 * MS, "L1", now_ns=1201 * MS) == []
    assert sync.drops == Counter(late=1)  # the next pivot cannot use it either
    assert sync.dropped_per_stream["cam1"] == Counter(late=1)
    assert sync.stats()["held"] == {"cam0": 0, "cam1": 0}


def test_pivot_late_camera_is_still_used_by_a_later_pivot_in_reach() -> None:
    sync = make_pivot(slop_ns=60)
    sync.add("lidar", 0, "L0", now_ns=0)
    sync.add("cam0", 0, "A0", now_ns=0)
    (s0,) = sync.poll(now_ns=100 * MS)
    assert s0.items == ("L0", "A0", None)
    sync.add("cam1", 50, "B50", now_ns=100 * MS)  # late for L0, within reach of L1
    sync.add("lidar", 100, "L1", now_ns=100 * MS)
    sync.add("cam0", 100, "A1", now_ns=100 * MS)
    (s1,) = sync.add("cam1", 120, "B120", now_ns=100 * MS)
    assert s1.items == ("L1", "A1", "B120")
    assert sync.drops == Counter(late=1)  # B50 lost to the nearer B120


def test_pivot_timeout_uses_the_best_candidate_that_arrived() -> None:
    sync = make_pivot()
    sync.add("lidar", 100 * MS, "L", now_ns=0)
    sync.add("cam0", 100 * MS, "A", now_ns=0)
    sync.add("cam1", 95 * MS, "B95", now_ns=0)  # undecided: a nearer one may still come
    (s,) = sync.poll(now_ns=100 * MS)
    assert s.items == ("L", "A", "B95") and s.complete


def test_pivot_queue_overflow_emits_oldest_incomplete_not_lost() -> None:
    sync = make_pivot(queue_size=2, timeout_ns=10**12)
    sync.add("cam0", 0, "A0", now_ns=0)
    assert sync.add("lidar", 0, "L0", now_ns=0) == []
    assert sync.add("lidar", 100 * MS, "L1", now_ns=0) == []
    (s,) = sync.add("lidar", 200 * MS, "L2", now_ns=0)
    assert s.items == ("L0", "A0", None)
    assert sync.drops == Counter(forced_incomplete=1)
    assert sync.stats()["forced"] == 1 and sync.num_pending == 2


def test_pivot_out_of_order_messages_are_dropped() -> None:
    sync = make_pivot()
    sync.add("cam0", 50, "A50", now_ns=0)
    sync.add("cam0", 40, "A40", now_ns=0)
    sync.add("lidar", 100, "L100", now_ns=0)
    sync.add("lidar", 90, "L90", now_ns=0)
    assert sync.drops == Counter(out_of_order=2)
    assert sync.dropped_per_stream["lidar"] == Counter(out_of_order=1)
    assert [s.item("lidar") for s in sync.flush()] == ["L100"]


def test_pivot_offsets_correct_camera_stamps() -> None:
    sync = make_pivot(slop_ns=5 * MS, offsets_ns={"cam0": 30 * MS})
    sync.add("lidar", 100 * MS, "L", now_ns=0)
    sync.add("cam1", 100 * MS, "B", now_ns=0)
    sync.add("cam0", 68 * MS, "A68", now_ns=0)
    (s,) = sync.add("cam0", 71 * MS, "A71", now_ns=0)  # corrected 101 ms
    assert s.item("cam0") == "A71" and s.stamp("cam0") == 71 * MS  # stamps stay as given
    assert s.interval_ns == 29 * MS


def test_pivot_message_used_once_and_sets_do_not_cross() -> None:
    # slop wider than half the pivot period: windows overlap; pivots take greedily in order
    sync = make_pivot(slop_ns=60)
    sync.add("cam1", 0, "B0", now_ns=0)
    sync.add("cam1", 100, "B100", now_ns=0)
    sync.add("lidar", 0, "L0", now_ns=0)
    sync.add("lidar", 100, "L100", now_ns=0)
    # A55 is nearer L100 than L0, but L0 is decided first and takes it (greedy, in order)
    (s0,) = sync.add("cam0", 55, "A55", now_ns=0)
    assert s0.items == ("L0", "A55", "B0")
    (s1,) = sync.add("cam0", 130, "A130", now_ns=0)
    assert s1.items == ("L100", "A130", "B100")
    assert sync.flush() == []


def test_pivot_duplicate_camera_stamps_are_not_used_twice() -> None:
    sync = make_pivot(slop_ns=0, timeout_ns=7)
    sync.add("lidar", 0, "L0", now_ns=3)
    sync.add("lidar", 0, "L1", now_ns=6)
    sync.add("cam0", 0, "A", now_ns=9)
    (s0,) = sync.add("cam0", 0, "A'", now_ns=12)  # L0 times out and takes A
    assert s0.items == ("L0", "A", None)
    (s1,) = sync.flush()
    assert s1.items == ("L1", None, None)  # A' has A's stamp: sets must not cross
    assert sync.drops == Counter(unmatched=1)


def test_pivot_camera_between_windows_is_unmatched() -> None:
    sync = make_pivot()
    sync.add("lidar", 0, "L0", now_ns=0)
    sync.add("cam1", 0, "B0", now_ns=0)
    sync.add("cam0", 0, "A0", now_ns=0)
    sync.add("cam0", 50 * MS, "A50", now_ns=0)  # 50 ms from both pivots
    sync.add("lidar", 100 * MS, "L1", now_ns=0)
    sync.add("cam1", 100 * MS, "B1", now_ns=0)
    (s,) = sync.add("cam0", 100 * MS, "A1", now_ns=0)
    assert s.items == ("L1", "A1", "B1")
    assert sync.drops == Counter(unmatched=1)


def test_pivot_flush_emits_everything_pending_in_order() -> None:
    sync = make_pivot(timeout_ns=10**12)
    for k in range(3):
        sync.add("lidar", k * 100 * MS, f"L{k}", now_ns=0)
    sync.add("cam0", 101 * MS, "A1", now_ns=0)
    out = sync.flush()
    assert [s.item("lidar") for s in out] == ["L0", "L1", "L2"]
    assert [s.item("cam0") for s in out] == [None, "A1", None]
    assert sync.missing == Counter(cam0=2, cam1=3)
    assert sync.num_pending == 0 and sync.flush() == []


def test_pivot_alone_emits_immediately() -> None:
    sync = PivotSynchronizer(["lidar"], "lidar", slop_ns=0, timeout_ns=0)
    (s,) = sync.add("lidar", 7, "L", now_ns=0)
    assert s.items == ("L",) and s.interval_ns == 0


def test_pivot_reset_flushes_and_forgets_order() -> None:
    sync = make_pivot()
    sync.add("lidar", 1000 * MS, "L", now_ns=0)
    sync.add("cam0", 2000 * MS, "A", now_ns=0)
    (s,) = sync.reset()
    assert s.items == ("L", None, None)
    assert sync.drops == Counter(reset=1)
    sync.add("lidar", 0, "L0", now_ns=0)
    assert sync.drops["out_of_order"] == 0


def test_pivot_bad_arguments() -> None:
    with pytest.raises(SyncError, match="pivot 'radar'"):
        PivotSynchronizer(["lidar", "cam"], "radar", slop_ns=1, timeout_ns=1)
    with pytest.raises(SyncError, match="slop_ns"):
        PivotSynchronizer(["lidar", "cam"], "lidar", slop_ns=-1, timeout_ns=1)
    with pytest.raises(SyncError, match="offsets_ns names unknown"):
        PivotSynchronizer(["lidar"], "lidar", slop_ns=1, timeout_ns=1, offsets_ns={"cam": 1})
    sync = make_pivot()
    with pytest.raises(SyncError, match="unknown stream"):
        sync.add("cam9", 0, None, now_ns=0)
    with pytest.raises(SyncError, match="now_ns"):
        sync.poll(now_ns=0.5)  # type: ignore[arg-type]


# -- PivotSynchronizer: properties -------------------------------------------------------------


@st.composite
def pivot_scenarios(draw: st.DrawFn) -> tuple:
    n_cams = draw(st.integers(0, 3))
    names = ["lidar"] + [f"cam{i}" for i in range(n_cams)]
    options = [
        st.tuples(st.just("lidar"), st.integers(0, 40)),  # pivot: stamp increment
        st.tuples(st.just("poll"), st.integers(0, 50)),  # time passes
    ]
    if n_cams:  # camera: absolute stamp, so out of order, duplicates and gaps all happen
        options.append(st.tuples(st.sampled_from(names[1:]), st.integers(-20, 300)))
    steps = st.one_of(*options)
    script = draw(st.lists(steps, max_size=60))
    kwargs = {
        "slop_ns": draw(st.integers(0, 30)),
        "timeout_ns": draw(st.integers(0, 60)),
        "queue_size": draw(st.integers(1, 5)),
        "offsets_ns": {n: draw(st.integers(-10, 10)) for n in names[1:]},
    }
    return names, script, kwargs


@PROPERTY
@given(pivot_scenarios())
def test_every_pivot_is_emitted_exactly_once_whatever_the_cameras_do(case: tuple) -> None:
    names, script, kwargs = case
    sync = PivotSynchronizer(names, "lidar", **kwargs)
    offsets = {"lidar": 0, **kwargs["offsets_ns"]}
    now, pivot_stamp, k = 0, 0, 0
    pivots: list[tuple] = []
    received = Counter()
    sets: list[MatchedSet] = []
    for name, value in script:
        now += 3
        if name == "poll":
            now += value
            sets += sync.poll(now)
            continue
        k += 1
        if name == "lidar":
            pivot_stamp += value
            pivots.append((name, k))
            sets += sync.add(name, pivot_stamp, (name, k), now)
        else:
            sets += sync.add(name, value, (name, k), now)
        received[name] += 1
    sets += sync.flush()
    assert [s.item("lidar") for s in sets] == pivots  # each once, in order, none dropped
    assert sync.num_pending == 0
    pivot_stamps = [s.pivot_stamp_ns for s in sets]
    assert pivot_stamps == sorted(pivot_stamps)
    used = [item for s in sets for item in s.items if item is not None]
    assert len(used) == len(set(used))
    for s in sets:
        for name, stamp, item in zip(s.names, s.stamps_ns, s.items, strict=True):
            assert (stamp is None) == (item is None)
            if stamp is not None:
                assert item[0] == name
                key = stamp + offsets[name]
                assert abs(key - s.pivot_stamp_ns) <= kwargs["slop_ns"]
    for i, name in enumerate(names):
        stamps = [s.stamps_ns[i] for s in sets if s.stamps_ns[i] is not None]
        if name != "lidar":  # sets do not cross: a camera's used stamps strictly increase
            assert all(a < b for a, b in itertools.pairwise(stamps))
        assert sync.missing[name] == sum(s.stamps_ns[i] is None for s in sets)
        used_here = sum(s.stamps_ns[i] is not None for s in sets)
        dropped = sum(sync.dropped_per_stream[name].values())
        held = sync.stats()["held"].get(name, 0)
        assert used_here + dropped + held == received[name]
    stats = sync.stats()
    assert stats["emitted"] == len(sets)
    assert stats["complete"] == sum(s.complete for s in sets)
    assert stats["decided"] + stats["timeout"] + stats["forced"] + stats["flush"] == len(sets)
    assert sync.drops["forced_incomplete"] == stats["forced"]


@PROPERTY
@given(
    n_pivots=st.integers(1, 15),
    timeout=st.integers(0, 50),
    data=st.data(),
)
def test_silent_camera_is_missing_in_every_set(
    n_pivots: int, timeout: int, data: st.DataObject
) -> None:
    sync = PivotSynchronizer(["lidar", "cam", "dead"], "lidar", slop_ns=5, timeout_ns=timeout)
    sets: list[MatchedSet] = []
    now = 0
    for k in range(n_pivots):
        now += 100
        sets += sync.add("cam", k * 100 + data.draw(st.integers(-5, 5)), k, now)
        sets += sync.add("lidar", k * 100, k, now + 1)
        sets += sync.poll(now + data.draw(st.integers(0, 99)))
    sets += sync.flush()
    assert [s.item("lidar") for s in sets] == list(range(n_pivots))
    assert all(s.missing == ("dead",) for s in sets)
    assert [s.item("cam") for s in sets] == list(range(n_pivots))
    assert sync.missing == Counter(dead=n_pivots)


# -- outlier stamps: dropped and counted without moving the stream's clock ------------------
S = 1_000_000_000


def _drive(sync: PivotSynchronizer, events: list[tuple[str, int]], period: int = 100 * MS):
    """Feed (stream, stamp) events at 1 ms intervals of arrival; return every set (flushed)."""
    sets: list[MatchedSet] = []
    for k, (name, stamp) in enumerate(events):
        sets += sync.add(name, stamp, (name, stamp), now_ns=k * MS)
    return sets + sync.flush()


def _rig(n: int, bad: dict[int, int], period: int = 100 * MS) -> list[tuple[str, int]]:
    """n sweeps with an image each; image k replaced by a stamp of ``bad[k]``."""
    events = []
    for k in range(n):
        events.append(("lidar", k * period))
        events.append(("cam0", bad.get(k, k * period)))
    return events


def test_future_image_does_not_stall_fusion() -> None:
    # The +1000 s image of issue 20: without the check every later image is out_of_order.
    names = ["lidar", "cam0"]
    events = _rig(10, {3: 1000 * S})
    old = PivotSynchronizer(names, "lidar", slop_ns=20 * MS, timeout_ns=50 * MS,
                            max_ahead_ns=None)  # fmt: skip
    assert sum(s.complete for s in _drive(old, events)) == 3  # the failure mode, reproduced
    sync = PivotSynchronizer(names, "lidar", slop_ns=20 * MS, timeout_ns=50 * MS)
    sets = _drive(sync, events)
    assert [s.missing for s in sets] == [()] * 3 + [("cam0",)] + [()] * 6  # fusion recovers
    assert sync.drops == Counter({STAMP_AHEAD: 1})
    assert sync.dropped_per_stream["cam0"] == Counter({STAMP_AHEAD: 1})
    assert sync.stats()["drops"] == {STAMP_AHEAD: 1}  # what the node's diagnostics mirror


def test_image_far_behind_is_counted_and_harmless() -> None:
    sync = PivotSynchronizer(["lidar", "cam0"], "lidar", slop_ns=20 * MS, timeout_ns=50 * MS,
                             max_behind_ns=1 * S)  # fmt: skip
    sets = _drive(sync, _rig(6, {2: 0}, period=1 * S))  # an unset clock: stamp 0
    assert sum(s.complete for s in sets) == 5 and sets[2].missing == ("cam0",)
    assert sync.drops == Counter({STAMP_BEHIND: 1})


def test_future_sweep_is_dropped_and_a_real_jump_is_followed() -> None:
    sync = PivotSynchronizer(["lidar"], "lidar", slop_ns=0, timeout_ns=0)
    stamps = [0, 100 * MS, 1000 * S, 200 * MS, 300 * MS]
    sets = _drive(sync, [("lidar", s) for s in stamps])
    assert [s.pivot_stamp_ns for s in sets] == [0, 100 * MS, 200 * MS, 300 * MS]
    assert sync.drops == Counter({STAMP_AHEAD: 1})
    # A pause longer than max_ahead: the first sweep after it is held back, the second
    # agrees with it and the clock moves on (one sweep lost per pause).
    sync = PivotSynchronizer(["lidar"], "lidar", slop_ns=0, timeout_ns=0, max_ahead_ns=2 * S)
    stamps = [0, 100 * MS, 60 * S, 60 * S + 100 * MS, 60 * S + 200 * MS]
    sets = _drive(sync, [("lidar", s) for s in stamps])
    assert [s.pivot_stamp_ns for s in sets] == [0, 100 * MS, 60 * S + 100 * MS, 60 * S + 200 * MS]
    assert sync.drops == Counter({STAMP_AHEAD: 1})
    sync = PivotSynchronizer(["lidar"], "lidar", slop_ns=0, timeout_ns=0, max_behind_ns=1 * S)
    stamps = [5 * S, 5 * S + 1, 0, 4 * S + 500 * MS, 6 * S]
    assert [s.pivot_stamp_ns for s in _drive(sync, [("lidar", s) for s in stamps])] == [
        5 * S, 5 * S + 1, 6 * S]  # fmt: skip
    assert sync.drops == Counter({STAMP_BEHIND: 1, "out_of_order": 1})


def test_a_pause_seen_by_the_receive_clock_loses_nothing() -> None:
    """Sensors stop for 60 s and restart: the stamps jump as far as the receive clock did,
    so the first image and sweep after the pause are credible and fused (the node's
    restart-after-pause case; an offline bag passes its log times)."""
    sync = PivotSynchronizer(["lidar", "cam0"], "lidar", slop_ns=20 * MS, timeout_ns=50 * MS)
    sets: list[MatchedSet] = []
    for k in range(6):
        t = k * 100 * MS + (60 * S if k >= 3 else 0)  # stamps and arrival both jump at k=3
        sets += sync.add("cam0", t, ("cam0", t), now_ns=t + MS)  # the image comes first
        sets += sync.add("lidar", t, ("lidar", t), now_ns=t + 2 * MS)
    sets += sync.flush()
    assert len(sets) == 6 and all(s.complete for s in sets)
    assert sync.drops == Counter()


def test_future_image_before_the_first_sweep_is_purged() -> None:
    sync = PivotSynchronizer(["lidar", "cam0"], "lidar", slop_ns=20 * MS, timeout_ns=50 * MS)
    events = [("cam0", 1000 * S), *_rig(4, {})]
    sets = _drive(sync, events)
    assert all(s.complete for s in sets) and len(sets) == 4
    assert sync.drops == Counter({STAMP_AHEAD: 1})


def test_outlier_limits_are_checked() -> None:
    with pytest.raises(SyncError, match="max_ahead_ns"):
        PivotSynchronizer(["lidar"], "lidar", slop_ns=0, timeout_ns=0, max_ahead_ns=-1)
    with pytest.raises(SyncError, match="max_behind_ns"):
        PivotSynchronizer(["lidar"], "lidar", slop_ns=0, timeout_ns=0, max_behind_ns=1.5)


@PROPERTY
@given(
    bad=st.dictionaries(
        st.integers(0, 19),
        st.sampled_from([1000 * S, -1000 * S, 0, 7 * S, 10**18]),
        max_size=6,
    )
)
def test_outlier_images_never_cost_a_sane_pair(bad: dict[int, int]) -> None:
    base = 10_000 * S
    events = [(n, base + s if n == "lidar" or k // 2 not in bad else s)
              for k, (n, s) in enumerate(_rig(20, bad))]  # fmt: skip
    sync = PivotSynchronizer(["lidar", "cam0"], "lidar", slop_ns=20 * MS, timeout_ns=50 * MS)
    sets = _drive(sync, events)
    assert len(sets) == 20
    assert [k for k, s in enumerate(sets) if not s.complete] == sorted(bad)
    assert sum(sync.drops.values()) == len(bad)
    assert set(sync.drops) <= {STAMP_AHEAD, STAMP_BEHIND}
