"""Test helpers: a tiny real model, simulated sensor messages, and a node running in a
MultiThreadedExecutor thread next to a "rig" node that publishes inputs and records
outputs over real DDS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from ws3d_ros.msg.image import array_to_compressed, array_to_image
from ws3d_ros.msg.kit import rclpy_kit, stamp_to_ns
from ws3d_ros.msg.pointcloud2 import array_to_cloud, cloud_to_array

TINY_CONFIG = {
    "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [96, 320]},
    "lidar_encoder": {
        "stem_channels": 8,
        "encoder_channels": [8, 16],
        "decoder_channels": [16, 16],
    },
}
PERIOD_NS = 100_000_000
CLASSES = ["road", "building", "vegetation", "car", "pedestrian"]
THINGS = ["car", "pedestrian"]


def tiny_checkpoint(path: Path) -> Path:
    from ws3d_ros.models.checkpoint import build_model, save_checkpoint
    from ws3d_ros.models.config import ModelConfig

    return save_checkpoint(path, build_model(ModelConfig.from_dict(TINY_CONFIG)))


@dataclass
class SimMessages:
    """Sweeps (structured arrays), one camera's images and calibration."""

    points: list[np.ndarray]
    images: list[np.ndarray]
    camera_offsets_ns: list[int]
    camera: Any  # CameraModel
    T_cam_from_lidar: Any  # Transform
    lidar_frame: str
    kit: Any = field(default_factory=rclpy_kit)

    def cloud(self, k: int, stamp_ns: int) -> PointCloud2:
        pts = self.points[k % len(self.points)]
        return array_to_cloud(pts, frame_id=self.lidar_frame, stamp_ns=stamp_ns, kit=self.kit)

    def image(self, k: int, stamp_ns: int) -> Image:
        return array_to_image(
            self.images[k % len(self.images)],
            "rgb8",
            frame_id=self.camera.frame_id,
            stamp_ns=stamp_ns,
            kit=self.kit,
        )

    def compressed_image(self, k: int, stamp_ns: int, fmt: str = "jpeg") -> CompressedImage:
        return array_to_compressed(
            self.images[k % len(self.images)],
            fmt,
            frame_id=self.camera.frame_id,
            stamp_ns=stamp_ns,
            kit=self.kit,
        )

    def camera_info(self, stamp_ns: int) -> CameraInfo:
        return self.camera.to_camera_info(stamp_ns=stamp_ns, kit=self.kit)

    def extrinsics_matrix(self) -> list[float]:
        return [float(v) for v in self.T_cam_from_lidar.matrix.reshape(-1)]


def make_sim_messages(frames: int = 2, every: int = 20) -> SimMessages:
    from ws3d_ros.sim.rig import SimConfig, Simulator

    sim = Simulator(SimConfig(frames=frames, lidar_beams=32, cameras=1, seed=3))
    pts, imgs, offs = [], [], []
    shot = None
    for k in range(frames):
        f = sim.frame(k)
        pts.append(np.ascontiguousarray(f.points[::every]))
        shot = f.cameras["camera"]
        imgs.append(f.images["camera"])
        offs.append(shot.stamp_ns - f.stamp_ns)
    assert shot is not None
    return SimMessages(pts, imgs, offs, shot.camera, shot.T_cam_from_lidar, f.lidar_frame)


class Recorder:
    """Thread-safe list of (receive time, message) per topic."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, list[tuple[float, Any]]] = {}

    def add(self, topic: str, msg: Any) -> None:
        with self.lock:
            self.items.setdefault(topic, []).append((time.monotonic(), msg))

    def get(self, topic: str) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.items.get(topic, []))

    def messages(self, topic: str) -> list[Any]:
        return [m for _, m in self.get(topic)]

    def clear(self, topic: str | None = None) -> None:
        with self.lock:
            if topic is None:
                self.items.clear()
            else:
                self.items.pop(topic, None)


class Rig:
    """The node under test plus a rig node in one executor thread (real DDS)."""

    def __init__(
        self, node: Node, context: Context, *, compressed: bool = False, wait_inputs: bool = True
    ) -> None:
        self.node = node
        self.compressed = compressed
        self.context = context
        self.rig = Node("ws3d_test_rig", context=context)
        self.rec = Recorder()
        reliable = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=20, reliability=ReliabilityPolicy.RELIABLE
        )
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=5,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.pub_points = self.rig.create_publisher(PointCloud2, "points", reliable)
        if compressed:  # image_transport's compressed topic next to the raw name
            self.pub_image = self.rig.create_publisher(
                CompressedImage, "image/compressed", reliable
            )
        else:
            self.pub_image = self.rig.create_publisher(Image, "image", reliable)
        self.pub_info = self.rig.create_publisher(CameraInfo, "camera_info", reliable)
        for topic, cls, qos in (
            ("panoptic/points", PointCloud2, reliable),
            ("panoptic/label_map", String, latched),
            ("panoptic/instances", MarkerArray, reliable),
            ("panoptic/overlay", Image, reliable),
            ("/diagnostics", DiagnosticArray, reliable),
        ):
            self.rig.create_subscription(cls, topic, lambda m, t=topic: self.rec.add(t, m), qos)
        self.executor = MultiThreadedExecutor(num_threads=3, context=context)
        self.executor.add_node(node)
        self.executor.add_node(self.rig)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        if wait_inputs:
            self.wait_inputs()

    def wait_inputs(self) -> None:
        """Until the node's input subscriptions match the rig's publishers."""
        wait_for(
            lambda: all(
                p.get_subscription_count() > 0
                for p in (self.pub_points, self.pub_image, self.pub_info)
            ),
            10.0,
            "the node's subscriptions to match",
        )

    def prime_camera_info(self, sim: SimMessages, timeout: float = 10.0) -> None:
        """Publish camera_info until the node reports having received it."""

        def received() -> bool:
            self.pub_info.publish(sim.camera_info(0))
            d = self.diagnostics()
            return int(d.get("count.in.camera/camera_info", 0)) > 0

        wait_for(received, timeout, "the node to receive camera_info")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self.thread.join(5.0)
        self.node.destroy_node()
        self.rig.destroy_node()

    # ------------------------------------------------------------- helpers
    def set_parameters(self, params: Iterable[Parameter], timeout: float = 10.0) -> list[Any]:
        """Through the node's SetParameters service (what `ros2 param set` uses)."""
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.rig, self.node.get_fully_qualified_name())
        assert client.wait_for_services(timeout_sec=timeout)
        future = client.set_parameters(list(params))
        wait_for(future.done, timeout, "the parameter service to answer")
        return list(future.result().results)

    def get_parameter(self, name: str) -> Any:
        return self.node.get_parameter(name).value

    def send_frame(self, sim: SimMessages, k: int, stamp_ns: int, *, image: bool = True) -> None:
        if image:
            cam_stamp = stamp_ns + sim.camera_offsets_ns[k % len(sim.camera_offsets_ns)]
            self.pub_info.publish(sim.camera_info(cam_stamp))
            if self.compressed:
                self.pub_image.publish(sim.compressed_image(k, cam_stamp))
            else:
                self.pub_image.publish(sim.image(k, cam_stamp))
        self.pub_points.publish(sim.cloud(k, stamp_ns))

    def outputs_for(self, stamp_ns: int) -> list[PointCloud2]:
        return [
            m
            for m in self.rec.messages("panoptic/points")
            if stamp_to_ns(m.header.stamp) == stamp_ns
        ]

    def wait_output(self, stamp_ns: int, timeout: float = 20.0) -> PointCloud2:
        wait_for(lambda: self.outputs_for(stamp_ns), timeout, f"panoptic/points at {stamp_ns}")
        return self.outputs_for(stamp_ns)[0]

    def label_maps(self) -> list[dict]:
        return [json.loads(m.data) for m in self.rec.messages("panoptic/label_map")]

    def diagnostics(self, timeout: float = 10.0) -> dict[str, str]:
        """Key/values of the next /diagnostics message."""
        self.rec.clear("/diagnostics")
        wait_for(lambda: self.rec.get("/diagnostics"), timeout, "/diagnostics")
        status = self.rec.messages("/diagnostics")[-1].status[0]
        out = {kv.key: kv.value for kv in status.values}
        out["__level__"] = str(status.level[0] if isinstance(status.level, bytes) else status.level)
        out["__message__"] = status.message
        return out


def labels_of(msg: PointCloud2) -> np.ndarray:
    return cloud_to_array(msg).reshape(-1)["label"]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def node_overrides(sim: SimMessages, model: Path, **extra: Any) -> list[Parameter]:
    values: dict[str, Any] = {
        "model_path": str(model),
        "backend": "torch",
        "classes": CLASSES,
        "thing_classes": THINGS,
        "extrinsics.camera.matrix": sim.extrinsics_matrix(),
        "diagnostics_period": 0.2,
        "sync.timeout": 0.3,
        "use_tf_static": False,
        **extra,
    }
    return [Parameter(k, value=v) for k, v in values.items()]


def start_rig(make_node: Callable[[Context], Node], **rig_options: Any) -> Rig:
    context = Context()
    rclpy.init(context=context)
    node = make_node(context)
    return Rig(node, context, **rig_options)


def stop_rig(rig: Rig) -> None:
    rig.close()
    rclpy.shutdown(context=rig.context)
