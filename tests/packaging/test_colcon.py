"""The package builds with colcon the way a ROS workspace would build it.

A real (non-symlink) ``colcon build`` into a temporary workspace must install
the executables under ``lib/ws3d_ros`` (where ``ros2 run`` looks), launch and
config files plus package.xml under ``share/ws3d_ros``, and the ament index
marker. colcon-common-extensions comes from PyPI (requirements/dev.txt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLCON = Path(sys.executable).parent / "colcon"


@pytest.fixture(scope="module")
def install_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src" / "ws3d_ros"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "build",
            "install",
            "log",
            "demo_out",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".hypothesis",
            "runs",
        ),
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [str(COLCON), "build", "--event-handlers", "console_direct-"],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ws / "install" / "ws3d_ros"


def test_package_xml_is_format3_ament_python() -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "ws3d_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "visualization_msgs", "diagnostic_msgs"):
        assert dep in deps


def test_executables_in_lib_package_dir(install_tree: Path) -> None:
    lib = install_tree / "lib" / "ws3d_ros"
    for exe in ("ws3d", "bag_player", "perception_node", "click_labeler"):
        assert (lib / exe).is_file(), sorted(p.name for p in lib.iterdir())
        assert os.access(lib / exe, os.X_OK)


def test_share_has_launch_config_and_package_xml(install_tree: Path) -> None:
    share = install_tree / "share" / "ws3d_ros"
    assert (share / "package.xml").is_file()
    launch_files = sorted(p.name for p in (ROOT / "launch").glob("*.py"))
    config_files = sorted(p.name for p in (ROOT / "config").glob("*.yaml"))
    assert launch_files and config_files
    assert sorted(p.name for p in (share / "launch").glob("*.py")) == launch_files
    assert sorted(p.name for p in (share / "config").glob("*.yaml")) == config_files


def test_ament_index_marker(install_tree: Path) -> None:
    marker = install_tree / "share" / "ament_index" / "resource_index" / "packages" / "ws3d_ros"
    assert marker.is_file()


def test_installed_cli_runs(install_tree: Path) -> None:
    site = next((install_tree / "lib").glob("python3*/site-packages"))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, str(install_tree / "lib" / "ws3d_ros" / "ws3d"), "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=install_tree,
    )
    assert proc.returncode == 0, proc.stderr
    assert "examples:" in proc.stdout
