"""Benchmark of the PointCloud2 codec against a naive per-point struct baseline.

Run: ``.venv/bin/python bench/bench_codec.py``. A bench runner imports this file
and calls :func:`run`, which returns one dict per measured operation.

The cloud: 131072 points (128 beams x 1024 columns, one Ouster-class sweep),
fields x, y, z, intensity (float32), ring (uint16), time (float32), in the
32-byte padded layout PCL-based Velodyne/Ouster drivers publish
(x@0 y@4 z@8 [pad] intensity@16 ring@20 [pad] time@24 [pad to 32]).

Operations (median wall time of >= 7 runs, ``time.perf_counter``; the naive
baseline runs 3 times):
- decode: ``cloud_to_array`` + ``cloud_xyz`` vs. a loop of
  ``struct.unpack_from`` per point (sensor_msgs_py's old ``read_points``)
  followed by ``np.array`` of the x, y, z values;
- encode: ``array_to_cloud`` of the structured array vs. a loop of
  ``struct.pack_into`` per point into a bytearray, as the old
  ``create_cloud`` did;
- both for rosbags messages (numpy data, zero-copy) and rclpy messages
  (``array.array`` data, one copy), plus ``xyz_to_cloud`` packing separate
  columns.
"""

from __future__ import annotations

import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Runnable as a plain script from a checkout: the package need not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ws3d_ros.msg.kit import MessageKit, rclpy_kit, rosbags_kit
from ws3d_ros.msg.pointcloud2 import (
    array_to_cloud,
    cloud_to_array,
    cloud_xyz,
    xyz_to_cloud,
)

N_POINTS = 128 * 1024
RUNS = 9
NAIVE_RUNS = 3
POINT_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "intensity", "ring", "time"],
        "formats": ["<f4", "<f4", "<f4", "<f4", "<u2", "<f4"],
        "offsets": [0, 4, 8, 16, 20, 24],
        "itemsize": 32,
    }
)
# The same layout as one struct format: padding bytes are 'x'.
POINT_STRUCT = struct.Struct("<fff4xfH2xf4x")


def make_points(n: int = N_POINTS, seed: int = 0) -> np.ndarray:
    """A synthetic sweep in the padded driver layout."""
    rng = np.random.default_rng(seed)
    points = np.zeros(n, dtype=POINT_DTYPE)
    azimuth = np.tile(np.linspace(-np.pi, np.pi, 1024, endpoint=False), n // 1024 + 1)[:n]
    ring = np.repeat(np.arange(128), 1024)[:n]
    elevation = np.deg2rad(np.linspace(-22.5, 22.5, 128))[ring]
    rng_m = rng.uniform(1.0, 80.0, n)
    points["x"] = rng_m * np.cos(elevation) * np.cos(azimuth)
    points["y"] = rng_m * np.cos(elevation) * np.sin(azimuth)
    points["z"] = rng_m * np.sin(elevation)
    points["intensity"] = rng.uniform(0, 255, n)
    points["ring"] = ring
    points["time"] = np.tile(np.linspace(0.0, 0.1, 1024, endpoint=False), n // 1024 + 1)[:n]
    return points


# --------------------------------------------------------------------------- naive baseline


def naive_decode(msg: Any) -> tuple[list[tuple], np.ndarray]:
    """Per-point unpacking, as sensor_msgs_py's read_points did before numpy."""
    data = bytes(msg.data)
    step = msg.point_step
    unpack_from = POINT_STRUCT.unpack_from
    points = [unpack_from(data, i * step) for i in range(msg.width * msg.height)]
    xyz = np.array([p[:3] for p in points], dtype=np.float32)
    return points, xyz


def naive_encode(points: np.ndarray, kit: MessageKit) -> Any:
    """Per-point packing into a bytearray, as sensor_msgs_py's create_cloud did."""
    columns = [points[name].tolist() for name in POINT_DTYPE.names]
    buf = bytearray(POINT_STRUCT.size * len(points))
    pack_into = POINT_STRUCT.pack_into
    step = POINT_STRUCT.size
    for i, values in enumerate(zip(*columns, strict=True)):
        pack_into(buf, i * step, *values)
    fields = [
        kit.make("sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=1)
        for n, o, d in (
            ("x", 0, 7),
            ("y", 4, 7),
            ("z", 8, 7),
            ("intensity", 16, 7),
            ("ring", 20, 4),
            ("time", 24, 7),
        )
    ]
    return kit.make(
        "sensor_msgs/msg/PointCloud2",
        header=kit.header("lidar", 0),
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=step,
        row_step=step * len(points),
        data=kit.uint8_array(buf),
        is_dense=True,
    )


# --------------------------------------------------------------------------- timing


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up (caches, first-touch page faults)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _decode(msg: Any) -> np.ndarray:
    return cloud_xyz(cloud_to_array(msg))


def run(n_points: int = N_POINTS, runs: int = RUNS, naive_runs: int = NAIVE_RUNS) -> list[dict]:
    """Time every operation; one dict per row (times in ms, speed-up vs. naive)."""
    points = make_points(n_points)
    results: list[dict] = []
    for kit in (rosbags_kit(), rclpy_kit()):
        msg = array_to_cloud(points, frame_id="lidar", stamp_ns=0, kit=kit)
        # Sanity: both paths read and write the same bytes.
        _, naive_xyz = naive_decode(msg)
        np.testing.assert_array_equal(_decode(msg), naive_xyz)
        assert bytes(naive_encode(points[:1000], kit).data) == points[:1000].tobytes()

        naive_dec = median_ms(lambda msg=msg: naive_decode(msg), naive_runs)
        ours_dec = median_ms(lambda msg=msg: _decode(msg), runs)
        results.append(_row(f"decode ({kit.flavour})", ours_dec, naive_dec, n_points))

        naive_enc = median_ms(lambda kit=kit: naive_encode(points, kit), naive_runs)
        ours_enc = median_ms(
            lambda kit=kit: array_to_cloud(points, frame_id="lidar", stamp_ns=0, kit=kit), runs
        )
        results.append(_row(f"encode ({kit.flavour})", ours_enc, naive_enc, n_points))

        xyz = cloud_xyz(points)
        extras = {n: np.ascontiguousarray(points[n]) for n in ("intensity", "ring", "time")}
        ours_cols = median_ms(
            lambda kit=kit, xyz=xyz, extras=extras: xyz_to_cloud(
                xyz, frame_id="lidar", stamp_ns=0, kit=kit, **extras
            ),
            runs,
        )
        results.append(_row(f"encode from columns ({kit.flavour})", ours_cols, naive_enc, n_points))
    return results


def _row(name: str, ours_ms: float, naive_ms: float, n_points: int) -> dict:
    return {
        "name": name,
        "points": n_points,
        "median_ms": ours_ms,
        "naive_ms": naive_ms,
        "speedup": naive_ms / ours_ms if ours_ms > 0 else float("inf"),
        "runs": RUNS,
        "naive_runs": NAIVE_RUNS,
    }


def markdown(results: list[dict]) -> str:
    lines = [
        f"PointCloud2 codec, {results[0]['points']} points, point_step 32 "
        f"(median of {RUNS} runs; naive: {NAIVE_RUNS})",
        "",
        "| operation | ws3d_ros (ms) | naive struct loop (ms) | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['median_ms']:.3f} | {r['naive_ms']:.1f} | {r['speedup']:,.0f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    results = run()
    print(markdown(results))
    worst = min(r["speedup"] for r in results if r["name"].startswith("decode"))
    print(f"\nworst decode speed-up: {worst:,.0f}x (acceptance: >= 20x)")
    return 0 if worst >= 20 else 1


if __name__ == "__main__":
    sys.exit(main())
