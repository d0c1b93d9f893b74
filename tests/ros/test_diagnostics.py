"""ws3d_ros.ros.diagnostics (issue 20): transport gaps from stamps, the LiDAR-only share
that raises WARN and falls back to OK, and last_error ageing out."""

from __future__ import annotations

from ws3d_ros.ros.diagnostics import OK, WARN, NodeDiagnostics, StampGaps

MS = 1_000_000


def test_stamp_gaps_count_missing_periods() -> None:
    g = StampGaps()
    t = 0
    for _ in range(10):  # 10 Hz, regular
        assert g.add("points", t) == 0
        t += 100 * MS
    assert g.add("points", t + 200 * MS) == 2  # two sweeps never arrived
    assert g.gaps["points"] == 2
    assert g.add("points", t + 300 * MS) == 0  # back to regular
    assert g.add("points", 0) == 0  # time went back (bag loop): no gap, period relearnt
    assert g.add("points", 300 * MS) == 0  # too few steps to know the period yet
    assert g.gaps["points"] == 2


def test_jitter_is_not_a_gap() -> None:
    g = StampGaps()
    t = 0
    for k in range(50):
        t += (100 + (7 if k % 2 else -7)) * MS
        g.add("image", t)
    assert g.gaps["image"] == 0


def _kv(d: NodeDiagnostics, now: float) -> tuple[int, str, dict[str, str]]:
    level, message, kv = d.report(now)
    return level, message, dict(kv)


def test_lidar_only_share_warns_and_recovers() -> None:
    d = NodeDiagnostics(window_s=5.0, lidar_only_warn=0.5)
    now = 100.0
    for k in range(10):  # fused
        d.missing_cameras((), now + k * 0.1)
        d.published(now + k * 0.1, {"total": 10.0})
    level, message, kv = _kv(d, now + 1.0)
    assert level == OK and kv["lidar_only_share"] == "0.00"
    for k in range(30):  # images stop: LiDAR-only
        t = now + 1.0 + k * 0.1
        d.missing_cameras(("front",), t)
        d.published(t, {"total": 10.0})
    level, message, kv = _kv(d, now + 4.0)
    assert level == WARN and "front" in message and "LiDAR-only" in message
    for k in range(60):  # images are back
        t = now + 4.0 + k * 0.1
        d.missing_cameras((), t)
        d.published(t, {"total": 10.0})
    level, message, kv = _kv(d, now + 10.0)
    assert level == OK, message
    assert kv["lidar_only_sweeps.front"] == "30"


def test_last_error_ages_out() -> None:
    d = NodeDiagnostics(error_ttl_s=30.0)
    d.failed("RuntimeError: boom", now=10.0)
    d.published(11.0, {"total": 1.0})  # a later frame worked
    _, _, kv = _kv(d, 20.0)
    assert kv["last_error"] == "RuntimeError: boom" and kv["last_error_age_s"] == "10.0"
    _, _, kv = _kv(d, 45.0)
    assert "last_error" not in kv


def test_gaps_are_reported() -> None:
    d = NodeDiagnostics()
    for k in range(8):
        d.stamp("points", k * 100 * MS)
    d.stamp("points", 1200 * MS)
    _, _, kv = _kv(d, 1.0)
    assert kv["gaps.points"] == "4" and kv["gaps.total"] == "4"


def test_log_text_from_messages_has_no_control_sequences() -> None:
    import logging

    from ws3d_ros.ros.diagnostics import ThrottleFilter, printable

    assert printable("\x1b[31mred\nline\u202e") == "\\x1b[31mred\\x0aline\\u202e"
    assert len(printable("x" * 1000)) == 500
    record = logging.LogRecord("t", logging.WARNING, "", 0, "skipped: %s", ("bad \x1b[2J",), None)
    assert ThrottleFilter(0.0).filter(record)
    assert "\x1b" not in record.getMessage() and "\\x1b[2J" in record.getMessage()
