"""bench/soak.py's table: samples -> rows, RSS growth after warm-up, and RSS reading."""

from __future__ import annotations

import os

from bench.soak import Sample, format_table, read_rss_bytes, rss_growth

MIB = 1024 * 1024


def _samples() -> list[Sample]:
    return [
        Sample(t_s=30, rss_bytes=900 * MIB, window_s=30, sent=600, received=540),
        Sample(t_s=60, rss_bytes=1000 * MIB, window_s=30, sent=600, received=600),
        Sample(t_s=90, rss_bytes=1030 * MIB, window_s=30, sent=600, received=570),
        Sample(t_s=120, rss_bytes=1020 * MIB, window_s=30, sent=600, received=600),
    ]


def test_growth_counts_from_the_first_sample_after_warm_up() -> None:
    assert abs(rss_growth(_samples(), warmup_s=60) - 0.02) < 1e-12
    assert abs(rss_growth(_samples(), warmup_s=0) - (1020 / 900 - 1)) < 1e-12
    assert rss_growth(_samples(), warmup_s=120) is None  # one sample is no trend
    assert rss_growth([], warmup_s=0) is None


def test_table_rows_and_summary() -> None:
    text = format_table(_samples(), warmup_s=60)
    lines = text.splitlines()
    assert lines[0].startswith("| t (s) | node RSS (MiB) | in Hz | out Hz")
    assert lines[2] == "| 30 (warm-up) | 900.0 | 20.0 | 18.0 | 600 | 540 |"
    assert lines[4] == "| 90 | 1030.0 | 20.0 | 19.0 | 600 | 570 |"
    assert lines[-1] == (
        "RSS growth after 60 s warm-up: +2.00 % (1000.0 -> 1020.0 MiB, peak 1030.0 MiB); "
        "mean output 19.7 Hz"
    )
    assert format_table(_samples()[:1], warmup_s=60).endswith("n/a (fewer than two samples)")


def test_rss_of_this_process() -> None:
    rss = read_rss_bytes(os.getpid())
    big = bytearray(64 * MIB)  # touched pages count
    for i in range(0, len(big), 4096):
        big[i] = 1
    assert read_rss_bytes(os.getpid()) - rss > 32 * MIB
    del big
