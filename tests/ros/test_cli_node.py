"""`ws3d node` starts the same node in its own process, from the shipped parameter file."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from ws3d_ros.cli.node import ros_arguments
from ws3d_ros.errors import Ws3dError

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]


def test_ros_arguments_follow_the_options(tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("{}\n")
    args = argparse.Namespace(
        params_file=[params],
        model="m.pt",
        backend="torch",
        device=None,
        mode="lidar_only",
        classes=["car", "traffic cone"],
        thing_classes=None,
        namespace="/robot1",
        ros_args=["-r", "points:=/lidar/points"],
    )
    out = ros_arguments(args)
    assert out[:3] == ["--ros-args", "--params-file", str(params)]
    assert f"model_path:={json.dumps(str(Path('m.pt').resolve()))}" in out
    assert 'classes:=["car", "traffic cone"]' in out
    assert 'mode:="lidar_only"' in out and 'backend:="torch"' in out
    assert out[-4:] == ["-r", "__ns:=/robot1", "-r", "points:=/lidar/points"]
    args.params_file = [tmp_path / "missing.yaml"]
    with pytest.raises(Ws3dError, match="does not exist"):
        ros_arguments(args)


def test_ws3d_node_runs_the_node_from_the_params_file(tiny_model: Path) -> None:
    cmd = [
        sys.executable, "-m", "ws3d_ros.cli.main", "node",
        "--params-file", str(ROOT / "config/perception.yaml"),
        "--model", str(tiny_model), "--backend", "torch", "--classes", "car", "road",
        "--thing-classes", "car",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    context = Context()
    rclpy.init(context=context)
    node = Node("ws3d_cli_probe", context=context)
    got: dict[str, object] = {}
    latched = QoSProfile(
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    node.create_subscription(
        String, "panoptic/label_map", lambda m: got.setdefault("map", json.loads(m.data)), latched
    )
    node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: got.setdefault("diag", m), 10
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ("map" in got and "diag" in got):
            executor.spin_once(timeout_sec=0.1)
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert "map" in got and "diag" in got, "no label map / diagnostics from `ws3d node`"
        label_map = got["map"]
        assert [c["name"] for c in label_map["classes"]] == ["car", "road"]  # type: ignore[index]
        values = {kv.key: kv.value for kv in got["diag"].status[0].values}  # type: ignore[attr-defined]
        assert values["backend"] == "torch" and values["mode"] == "fusion"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert proc.returncode == 0, out
    assert "ready: backend torch" in out
