"""Soak test of the ``ws3d_perception`` node: memory and output rate over minutes of load.

Starts ``ws3d node`` as a subprocess (its own process, so its RSS is the node's alone),
publishes simulated sweeps + one camera (image, camera_info) at ``--rate`` Hz over real
DDS (loopback, a private ROS_DOMAIN_ID), and every ``--sample`` seconds records the
node's RSS (``/proc/PID/status`` VmRSS) and the output rate of ``panoptic/points``.
Prints one table row per sample and a summary: RSS growth after the warm-up
(``--warmup`` seconds), first vs last sample and the peak.

    python bench/soak.py --minutes 10                  # tiny random model, torch backend
    python bench/soak.py --model runs/demo/model --backend onnxruntime --minutes 10

Not a timed test: the numbers go in the issue note. Acceptance (issue 20): RSS growth
after warm-up < 5 % over 10 minutes. ``--model`` defaults to a tiny random-weight model
written to a temporary directory (what the ROS tests use).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY_CONFIG = {
    "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [96, 320]},
    "lidar_encoder": {
        "stem_channels": 8,
        "encoder_channels": [8, 16],
        "decoder_channels": [16, 16],
    },
}
CLASSES = ["road", "building", "vegetation", "car", "pedestrian"]
THINGS = ["car", "pedestrian"]


@dataclass(frozen=True)
class Sample:
    """One sampling window: seconds since the load started, node RSS, counts in the window."""

    t_s: float
    rss_bytes: int
    window_s: float
    sent: int
    received: int

    @property
    def in_hz(self) -> float:
        return self.sent / self.window_s if self.window_s > 0 else 0.0

    @property
    def out_hz(self) -> float:
        return self.received / self.window_s if self.window_s > 0 else 0.0


def read_rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", line
            return int(value) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line")


def rss_growth(samples: Sequence[Sample], warmup_s: float) -> float | None:
    """Relative RSS growth from the first sample at or after ``warmup_s`` to the last one
    (``None`` without two such samples)."""
    after = [s for s in samples if s.t_s >= warmup_s]
    if len(after) < 2:
        return None
    return after[-1].rss_bytes / after[0].rss_bytes - 1.0


def format_table(samples: Sequence[Sample], warmup_s: float) -> str:
    """The markdown table of the samples and a one-line summary under it."""
    mib = 1024 * 1024
    lines = [
        "| t (s) | node RSS (MiB) | in Hz | out Hz | sweeps in | labelled |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in samples:
        mark = "" if s.t_s >= warmup_s else " (warm-up)"
        lines.append(
            f"| {s.t_s:.0f}{mark} | {s.rss_bytes / mib:.1f} | {s.in_hz:.1f} | {s.out_hz:.1f} "
            f"| {s.sent} | {s.received} |"
        )
    growth = rss_growth(samples, warmup_s)
    if growth is None:
        lines.append(f"\nRSS growth after {warmup_s:g} s warm-up: n/a (fewer than two samples)")
    else:
        after = [s for s in samples if s.t_s >= warmup_s]
        peak = max(s.rss_bytes for s in after)
        out_hz = sum(s.received for s in after) / max(sum(s.window_s for s in after), 1e-9)
        lines.append(
            f"\nRSS growth after {warmup_s:g} s warm-up: {100 * growth:+.2f} % "
            f"({after[0].rss_bytes / mib:.1f} -> {after[-1].rss_bytes / mib:.1f} MiB, "
            f"peak {peak / mib:.1f} MiB); mean output {out_hz:.1f} Hz"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the run
def _tiny_model(directory: Path) -> Path:
    from ws3d_ros.models.checkpoint import build_model, save_checkpoint
    from ws3d_ros.models.config import ModelConfig

    return save_checkpoint(directory / "tiny.pt", build_model(ModelConfig.from_dict(TINY_CONFIG)))


def _sim(frames: int, beams: int, every: int) -> tuple[list, list, list, object, list[float]]:
    import numpy as np

    from ws3d_ros.sim.rig import SimConfig, Simulator

    sim = Simulator(SimConfig(frames=frames, lidar_beams=beams, cameras=1, seed=3))
    points, images, offsets, shot = [], [], [], None
    for k in range(frames):
        f = sim.frame(k)
        points.append(np.ascontiguousarray(f.points[::every]))
        shot = f.cameras["camera"]
        images.append(f.images["camera"])
        offsets.append(shot.stamp_ns - f.stamp_ns)
    assert shot is not None
    T = [float(v) for v in shot.T_cam_from_lidar.matrix.reshape(-1)]
    return points, images, offsets, shot.camera, T


def _node_command(args: argparse.Namespace, model: Path, T: list[float]) -> list[str]:
    params = {
        "extrinsics.camera.matrix": T,
        "use_tf_static": False,
        "publish.instances": False,
        "publish.overlay": False,
    }
    cmd = [sys.executable, "-m", "ws3d_ros.cli.main", "node", "--model", str(model),
           "--backend", args.backend, "--classes", *CLASSES, "--thing-classes", *THINGS,
           "--ros-args"]  # fmt: skip
    for name, value in params.items():
        cmd += ["-p", f"{name}:={json.dumps(value)}"]
    return cmd


def soak(args: argparse.Namespace) -> list[Sample]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from ws3d_ros.msg.image import array_to_image
    from ws3d_ros.msg.kit import rclpy_kit
    from ws3d_ros.msg.pointcloud2 import array_to_cloud

    points, images, offsets, camera, T = _sim(args.frames, args.beams, args.every)
    with (
        tempfile.TemporaryDirectory(prefix="ws3d_soak_") as tmp,
        open(Path(tmp) / "node.log", "w") as log,
    ):
        model = args.model or _tiny_model(Path(tmp))
        proc = subprocess.Popen(
            _node_command(args, model, T), stdout=log, stderr=subprocess.STDOUT, env=os.environ
        )
        context = Context()
        rclpy.init(context=context)
        rig = Node("ws3d_soak_rig", context=context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        pub_p = rig.create_publisher(PointCloud2, "points", qos)
        pub_i = rig.create_publisher(Image, "image", qos)
        pub_c = rig.create_publisher(CameraInfo, "camera_info", qos)
        lock = threading.Lock()
        counts = {"received": 0}

        def on_output(_msg: PointCloud2) -> None:
            with lock:
                counts["received"] += 1

        rig.create_subscription(PointCloud2, "panoptic/points", on_output, qos)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(rig)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        kit = rclpy_kit()
        samples: list[Sample] = []
        try:
            deadline = time.monotonic() + args.start_timeout
            while pub_p.get_subscription_count() == 0 or counts["received"] == 0:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the node did not start labelling (see {log.name}):\n"
                        + (Path(tmp) / "node.log").read_text()[-2000:]
                    )
                stamp = time.time_ns()
                pub_c.publish(camera.to_camera_info(stamp_ns=stamp, kit=kit))
                pub_p.publish(array_to_cloud(points[0], frame_id="lidar", stamp_ns=stamp, kit=kit))
                time.sleep(0.2)
            period = 1.0 / args.rate
            total = int(args.minutes * 60 * args.rate)
            t0 = time.monotonic()
            with lock:
                counts["received"] = 0
            sent, last_t, last_sent, last_received = 0, 0.0, 0, 0
            for k in range(total):
                time.sleep(max(0.0, t0 + k * period - time.monotonic()))
                stamp = time.time_ns()
                i = k % len(points)
                cam_stamp = stamp + offsets[i]
                pub_c.publish(camera.to_camera_info(stamp_ns=cam_stamp, kit=kit))
                pub_i.publish(array_to_image(images[i], "rgb8", frame_id=camera.frame_id,
                                             stamp_ns=cam_stamp, kit=kit))  # fmt: skip
                pub_p.publish(array_to_cloud(points[i], frame_id="lidar", stamp_ns=stamp, kit=kit))
                sent += 1
                now = time.monotonic() - t0
                if now - last_t >= args.sample or k == total - 1:
                    if proc.poll() is not None:
                        raise RuntimeError(f"the node exited with {proc.returncode}")
                    with lock:
                        received = counts["received"]
                    samples.append(Sample(now, read_rss_bytes(proc.pid), now - last_t,
                                          sent - last_sent, received - last_received))  # fmt: skip
                    row = samples[-1]
                    print(
                        f"t={now:.0f}s rss={row.rss_bytes / 2**20:.1f} MiB out={row.out_hz:.1f} Hz",
                        file=sys.stderr,
                        flush=True,
                    )
                    last_t, last_sent, last_received = now, sent, received
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            executor.shutdown(timeout_sec=5.0)
            rig.destroy_node()
            rclpy.shutdown(context=context)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model dir or checkpoint (default: tiny)")
    parser.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="sweeps per second")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds per table row")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS counts")
    parser.add_argument("--beams", type=int, default=32, choices=(32, 64, 128))
    parser.add_argument("--every", type=int, default=4, help="keep every N-th point")
    parser.add_argument("--frames", type=int, default=4, help="distinct simulated sweeps")
    parser.add_argument("--start-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 200))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    samples = soak(args)
    print(f"soak: {args.minutes:g} min at {args.rate:g} Hz, backend {args.backend}, "
          f"{'tiny random model' if args.model is None else args.model}\n")  # fmt: skip
    print(format_table(samples, args.warmup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
