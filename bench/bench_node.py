"""End-to-end latency and output rate of the ``ws3d_perception`` node over real DDS.

Publishes a simulated stream (street, 64 beams ~ 120k points, one camera) at ``--rate``
Hz into the node (in-process, MultiThreadedExecutor, loopback DDS) and measures, per
mode, the median / p95 latency from publishing a sweep to receiving its
``panoptic/points``, the output rate, and the stale frames the latest-wins queue dropped.

    python bench/bench_node.py --model DIR_OR_CHECKPOINT [--backend onnxruntime]
        [--modes fusion lidar_only zero_shot] [--seconds 15] [--rate 10]

Not a test (it needs a model and takes a while); the numbers go in the issue note.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 200))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ws3d_ros.msg.image import array_to_image
from ws3d_ros.msg.kit import rclpy_kit, stamp_to_ns
from ws3d_ros.msg.pointcloud2 import array_to_cloud
from ws3d_ros.ros.perception_node import PerceptionNode
from ws3d_ros.sim.rig import SimConfig, Simulator


def sim_messages(frames: int, beams: int) -> tuple[list, list, CameraInfo, list[float], int]:
    kit = rclpy_kit()
    sim = Simulator(SimConfig(frames=frames, lidar_beams=beams, cameras=1))
    clouds, images, npts = [], [], 0
    for k in range(frames):
        f = sim.frame(k)
        shot = f.cameras["camera"]
        clouds.append((f.stamp_ns, f.points))
        images.append((shot.stamp_ns - f.stamp_ns, f.images["camera"], shot.camera.frame_id))
        npts = len(f.points)
    info = shot.camera.to_camera_info(stamp_ns=0, kit=kit)
    T = [float(v) for v in shot.T_cam_from_lidar.matrix.reshape(-1)]
    return clouds, images, info, T, npts


def run_mode(args: argparse.Namespace, mode: str, data: tuple) -> dict[str, float]:
    clouds, images, info, T, npts = data
    kit = rclpy_kit()
    context = Context()
    rclpy.init(context=context)
    overrides = [
        Parameter("model_path", value=str(args.model)),
        Parameter("backend", value=args.backend),
        Parameter("mode", value=mode),
        Parameter("extrinsics.camera.matrix", value=T),
        Parameter("use_tf_static", value=False),
        Parameter("publish.instances", value=False),
    ]
    node = PerceptionNode(context=context, parameter_overrides=overrides)
    rig = Node("ws3d_bench_rig", context=context)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    pub_p = rig.create_publisher(PointCloud2, "points", qos)
    pub_i = rig.create_publisher(Image, "image", qos)
    pub_c = rig.create_publisher(CameraInfo, "camera_info", qos)
    received: dict[int, float] = {}
    rig.create_subscription(
        PointCloud2,
        "panoptic/points",
        lambda m: received.setdefault(stamp_to_ns(m.header.stamp), time.monotonic()),
        qos,
    )
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(node)
    executor.add_node(rig)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    while pub_p.get_subscription_count() == 0:
        time.sleep(0.05)
    pub_c.publish(info)
    period = 1.0 / args.rate
    n = int(args.seconds * args.rate)
    sent: dict[int, float] = {}
    t0 = time.monotonic()
    base = 1_900_000_000_000_000_000
    for k in range(n):
        time.sleep(max(0.0, t0 + k * period - time.monotonic()))
        stamp = base + round(k * period * 1e9)
        _, pts = clouds[k % len(clouds)]
        offset, img, frame_id = images[k % len(images)]
        pub_c.publish(info)
        pub_i.publish(array_to_image(img, "rgb8", frame_id=frame_id, stamp_ns=stamp + offset,
                                     kit=kit))  # fmt: skip
        pub_p.publish(array_to_cloud(pts, frame_id="lidar", stamp_ns=stamp, kit=kit))
        sent[stamp] = time.monotonic()
    time.sleep(3.0)
    lat = np.array([received[s] - sent[s] for s in sent if s in received]) * 1e3
    times = sorted(received[s] for s in sent if s in received)
    hz = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    out = {
        "mode": mode,
        "points": npts,
        "sent": n,
        "labelled": len(lat),
        "median_ms": float(np.median(lat)) if len(lat) else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if len(lat) else float("nan"),
        "out_hz": hz,
        "stale_drops": node.worker.stats.dropped,
    }
    executor.shutdown(timeout_sec=5.0)
    node.destroy_node()
    rig.destroy_node()
    rclpy.shutdown(context=context)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--modes", nargs="+", default=["fusion", "lidar_only", "zero_shot"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--beams", type=int, default=64)
    args = parser.parse_args(argv)
    data = sim_messages(4, args.beams)
    print("| mode | points | in Hz | out Hz | labelled | median ms | p95 ms | stale drops |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes:
        r = run_mode(args, mode, data)
        print(
            f"| {mode} | {r['points']} | {args.rate:g} | {r['out_hz']:.2f} | "
            f"{r['labelled']}/{r['sent']} | {r['median_ms']:.0f} | {r['p95_ms']:.0f} | "
            f"{r['stale_drops']} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
