"""Fixtures for the ROS 2 tests: real rclpy over Fast DDS on loopback.

Every test session gets its own ROS_DOMAIN_ID (from the process id), so parallel runs
on one machine never see each other's topics. The environment is set before rclpy is
imported by any test module.
"""

from __future__ import annotations

import os

os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 200)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")

from pathlib import Path

import pytest
from ros_harness import SimMessages, make_sim_messages, tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight checkpoint (CLIP ws3d-tiny + a small LiDAR net)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="session")
def sim() -> SimMessages:
    """Two simulated street sweeps (subsampled) with their camera, as numpy + calibration."""
    return make_sim_messages()
