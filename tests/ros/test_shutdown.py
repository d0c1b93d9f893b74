"""Clean shutdown of every executable (issue 19): SIGINT / SIGTERM end the process with
exit code 0 and no traceback, within launch's SIGTERM timeout even while a frame is being
labelled; a second signal exits at once. Real processes, real DDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2

from ws3d_ros.msg.kit import rclpy_kit
from ws3d_ros.msg.pointcloud2 import xyz_to_cloud
from ws3d_ros.ros.worker import InferenceWorker

pytestmark = pytest.mark.ros

# launch sends SIGTERM 5 s after SIGINT (sigterm_timeout): a clean exit must come sooner
LAUNCH_SIGTERM_TIMEOUT_S = 5.0
BAD_OUTPUT = ("Traceback", "terminate called", "KeyboardInterrupt", "RCLError")


class Process:
    """A child process whose merged stdout/stderr is collected by a thread."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_text(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            assert self.proc.poll() is None, f"exited early:\n{self.output}"
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} after {timeout} s:\n{self.output}")

    def stop(self, *signals: int, gap_s: float = 0.2, timeout: float = 20.0) -> float:
        """Send the signals; return the seconds until exit."""
        t0 = time.monotonic()
        for k, sig in enumerate(signals):
            if k:
                time.sleep(gap_s)
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"did not exit within {timeout} s:\n{self.output}") from None
        self._reader.join(5)
        return time.monotonic() - t0

    def assert_clean_exit(self) -> None:
        assert self.proc.returncode == 0, self.output
        for bad in BAD_OUTPUT:
            assert bad not in self.output, self.output


@pytest.fixture
def probe() -> Iterator[Node]:
    context = Context()
    rclpy.init(context=context)
    node = Node("ws3d_shutdown_probe", context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _node_cmd(model: Path, topic: str) -> list[str]:
    return [
        sys.executable, "-m", "ws3d_ros.ros.perception_node", "--ros-args",
        "-p", f"model_path:={model}", "-p", "backend:=torch", "-p", "mode:=lidar_only",
        "-p", "use_tf_static:=false", "-p", "qos.sensor_data:=false",
        "-r", f"points:={topic}",
    ]  # fmt: skip


def _spin(node: Node, seconds: float) -> None:
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    executor.remove_node(node)


def test_perception_node_sigint_twice_during_inference(tiny_model: Path, probe: Node) -> None:
    topic = f"/shutdown_{os.getpid()}/points"
    proc = Process(_node_cmd(tiny_model, topic))
    try:
        proc.wait_for_text("ready:", 60)
        pub = probe.create_publisher(
            PointCloud2,
            topic,
            QoSProfile(
                history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE
            ),
        )
        outputs: list[PointCloud2] = []
        probe.create_subscription(PointCloud2, "/panoptic/points", outputs.append, 10)
        # large sweeps keep the worker busy for a while with the tiny model
        rng = np.random.default_rng(0)
        xyz = rng.uniform(-40, 40, (400_000, 3)).astype(np.float32)
        kit = rclpy_kit()
        deadline = time.monotonic() + 30
        k = 0
        while not outputs and time.monotonic() < deadline:
            pub.publish(xyz_to_cloud(xyz, frame_id="lidar", stamp_ns=10**18 + k * 10**8, kit=kit))
            k += 1
            _spin(probe, 0.3)
        assert outputs, f"no output from the node:\n{proc.output}"
        pub.publish(xyz_to_cloud(xyz, frame_id="lidar", stamp_ns=10**18 + k * 10**8, kit=kit))
        _spin(probe, 0.2)  # the sweep reached the worker: a frame is in flight
        took = proc.stop(signal.SIGINT, signal.SIGINT)
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
    proc.assert_clean_exit()
    assert took < LAUNCH_SIGTERM_TIMEOUT_S, took
    assert "shutting down" in proc.output


def test_perception_node_sigterm_once(tiny_model: Path) -> None:
    proc = Process(_node_cmd(tiny_model, f"/sigterm_{os.getpid()}/points"))
    try:
        proc.wait_for_text("ready:", 60)
        took = proc.stop(signal.SIGTERM)
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
    proc.assert_clean_exit()
    assert "SIGTERM: shutting down" in proc.output
    assert took < LAUNCH_SIGTERM_TIMEOUT_S, took


def test_managed_node_start_failure_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    cmd = [
        sys.executable, "-m", "ws3d_ros.ros.perception_node", "--managed", "--autostart",
        "--ros-args", "-p", f"model_path:={missing}", "-p", "backend:=torch",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith("perception_node: error")
    ]
    assert len(errors) == 1, proc.stderr


def test_plain_node_start_failure_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    cmd = [
        sys.executable, "-m", "ws3d_ros.ros.perception_node",
        "--ros-args", "-p", f"model_path:={missing}", "-p", "backend:=torch",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr
    assert proc.stderr.count("perception_node: error:") == 1, proc.stderr


def test_bag_player_and_click_labeler_stop_cleanly(tmp_path: Path) -> None:
    from test_bag_player import write_bag

    bag = write_bag(tmp_path / "bag")
    player = Process(
        [sys.executable, "-m", "ws3d_ros.ros.bag_player", str(bag), "--loop", "--rate", "0.2"]
    )
    labeler = Process(
        [
            sys.executable, "-m", "ws3d_ros.ros.click_labeler", "--ros-args",
            "-p", f"output:={tmp_path / 'clicks.jsonl'}", "-r", f"__ns:=/cl{os.getpid()}",
        ]
    )  # fmt: skip
    try:
        player.wait_for_text("playing", 60)
        labeler.wait_for_text("writing clicks", 60)
        time.sleep(0.5)
        assert player.stop(signal.SIGINT) < LAUNCH_SIGTERM_TIMEOUT_S
        assert labeler.stop(signal.SIGINT) < LAUNCH_SIGTERM_TIMEOUT_S
    finally:
        for p in (player, labeler):
            if p.proc.poll() is None:
                p.proc.kill()
    player.assert_clean_exit()
    labeler.assert_clean_exit()


def test_worker_stop_abandons_a_long_item() -> None:
    started = threading.Event()

    def slow(_item: int) -> None:
        started.set()
        time.sleep(3.0)

    worker: InferenceWorker[int] = InferenceWorker(slow).start()
    worker.submit(1)
    assert started.wait(5)
    worker.submit(2)
    t0 = time.monotonic()
    assert worker.stop(0.2) is False  # abandoned, not waited for
    assert time.monotonic() - t0 < 1.0
    assert worker.stats.discarded_at_stop == 1
    quick: InferenceWorker[int] = InferenceWorker(lambda _i: None).start()
    quick.submit(1)
    assert quick.stop(2.0) is True


def test_a_repeated_ctrl_c_is_one_signal_and_a_later_one_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A terminal's Ctrl-C reaches the node twice under ros2 launch (process group +
    launch's forward): within REPEAT_S that is one request; a later one exits at once."""
    from ws3d_ros.ros import executable

    clock = [100.0]
    exits: list[int] = []
    monkeypatch.setattr(executable.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(executable.os, "_exit", exits.append)
    signals = executable.ShutdownSignals("test")
    signals._handle(signal.SIGINT, None)
    assert signals.requested.is_set() and exits == []
    clock[0] += 0.05
    signals._handle(signal.SIGINT, None)  # launch's forwarded copy
    assert exits == []
    clock[0] += executable.REPEAT_S
    signals._handle(signal.SIGTERM, None)  # a real second request: exit now, code 0
    assert exits == [0]
