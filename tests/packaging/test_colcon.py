"""The package builds with colcon the way a ROS workspace would build it (issue 19).

A real (non-symlink) ``colcon build`` into a temporary workspace must install
the executables under ``lib/ws3d_ros`` (where ``ros2 run`` looks), launch and
config files plus package.xml under ``share/ws3d_ros``, and the ament index
marker; every module of ``ws3d_ros`` and ``training`` must import FROM THE INSTALL
TREE (not the source checkout), every executable must answer ``--help``, and
``perception_node`` started the way ``ros2 run`` starts it (after
``source install/setup.bash``) must reach ready. A non-editable wheel must hold every
module too. colcon-common-extensions comes from PyPI (requirements/dev.txt).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
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


ROS_PACKAGES = ("rclpy", "rcl_interfaces", "launch", "launch_ros", "ament_index_python")


def test_package_xml_declares_every_ros_package_the_code_imports() -> None:
    """rosdep installs only what package.xml names: every ROS import must be declared."""
    import ast
    import xml.etree.ElementTree as ET

    deps = {e.text for e in ET.parse(ROOT / "package.xml").getroot().findall("exec_depend")}
    imported: dict[str, str] = {}
    files = [*(ROOT / "ws3d_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top.endswith(("_msgs", "_interfaces")) or top in ROS_PACKAGES:
                    imported.setdefault(top, str(path.relative_to(ROOT)))
    assert {"rclpy", "rcl_interfaces", "sensor_msgs"} <= set(imported)
    missing = {pkg: where for pkg, where in imported.items() if pkg not in deps}
    assert missing == {}, missing


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


def _source_modules() -> set[str]:
    """Dotted names of every module under ws3d_ros/ and training/ in the checkout."""
    names = set()
    for top in ("ws3d_ros", "training"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _install_env(install_tree: Path) -> dict[str, str]:
    site = next((install_tree / "lib").glob("python3*/site-packages"))
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


IMPORT_ALL = """
import importlib, json, sys
site = sys.argv[1]
bad = {}
for name in json.loads(sys.argv[2]):
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        bad[name] = f"{type(exc).__name__}: {exc}"
        continue
    if not (getattr(module, "__file__", None) or "").startswith(site):
        bad[name] = f"imported from {getattr(module, '__file__', None)}, not the install tree"
print(json.dumps(bad))
"""


def test_every_module_imports_from_the_install_tree(install_tree: Path) -> None:
    import json

    site = next((install_tree / "lib").glob("python3*/site-packages"))
    modules = sorted(
        _source_modules() - {"ws3d_ros.runtime.tensorrt_backend"} | {"ws3d_ros.runtime"}
    )
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(site), json.dumps(modules)],
        env=_install_env(install_tree),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=install_tree,
    )
    assert proc.returncode == 0, proc.stderr
    bad = json.loads(proc.stdout.strip().splitlines()[-1])
    assert bad == {}, bad
    # the TensorRT backend imports tensorrt lazily: its module file must still be installed
    assert (site / "ws3d_ros" / "runtime" / "tensorrt_backend.py").is_file()
    assert (site / "training" / "configs").is_dir()


@pytest.mark.parametrize("exe", ["ws3d", "perception_node", "click_labeler", "bag_player"])
def test_installed_executables_answer_help(install_tree: Path, exe: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(install_tree / "lib" / "ws3d_ros" / exe), "--help"],
        env=_install_env(install_tree),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=install_tree,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("usage:"), proc.stdout
    assert "ready" not in proc.stdout + proc.stderr  # help only: no node started


def test_installed_perception_node_reaches_ready(install_tree: Path, tmp_path: Path) -> None:
    """``source install/setup.bash`` then what ``ros2 run ws3d_ros perception_node`` runs."""
    from ws3d_ros.models.checkpoint import build_model, save_checkpoint
    from ws3d_ros.models.config import ModelConfig

    model = save_checkpoint(
        tmp_path / "tiny.pt",
        build_model(
            ModelConfig.from_dict(
                {
                    "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [96, 320]},
                    "lidar_encoder": {
                        "stem_channels": 8,
                        "encoder_channels": [8, 16],
                        "decoder_channels": [16, 16],
                    },
                }
            )
        ),
    )
    ws = install_tree.parents[1]
    exe = install_tree / "lib" / "ws3d_ros" / "perception_node"
    script = (
        f"source {ws / 'install' / 'setup.bash'} && exec {sys.executable} {exe} "
        f"--ros-args -p model_path:={model} -p backend:=torch -r __ns:=/pkg{os.getpid()}"
    )
    proc = subprocess.Popen(
        ["bash", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("ready:" in line for line in lines):
            chunk = proc.stdout.readline()
            if chunk:
                lines.append(chunk)
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        assert any("ready:" in line for line in lines), "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
    assert proc.returncode == 0, "".join(lines) + (rest or "")


def test_non_editable_wheel_holds_every_module(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "install", "log", "demo_out", "*.egg-info", "__pycache__",
            ".pytest_cache", ".hypothesis", "runs",
        ),
    )  # fmt: skip
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    wheel_cmd += ["--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist"), str(src)]
    proc = subprocess.run(
        wheel_cmd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("ws3d_ros-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        files = set(zf.namelist())
    missing = sorted(
        name
        for name in _source_modules()
        if f"{name.replace('.', '/')}.py" not in files
        and f"{name.replace('.', '/')}/__init__.py" not in files
    )
    assert missing == [], missing
    assert any(f.startswith("training/configs/") and f.endswith(".yaml") for f in files)
