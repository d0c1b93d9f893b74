"""ament_python / pip install script for ws3d_ros.

colcon builds this with ``setup.cfg``'s script dirs, so console scripts land
in ``lib/ws3d_ros`` where ``ros2 run`` and ``ros2 launch`` look; launch and
config files are installed under ``share/ws3d_ros``.
"""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "ws3d_ros"
HERE = Path(__file__).parent


def _tree(src: str) -> list[tuple[str, list[str]]]:
    """Data-file entries that mirror ``src``'s folders under share/PACKAGE."""
    entries = []
    for folder in sorted({p.parent for p in (HERE / src).rglob("*") if p.is_file()}):
        rel = folder.relative_to(HERE)
        files = sorted(str(p.relative_to(HERE)) for p in folder.iterdir() if p.is_file())
        entries.append((f"share/{PACKAGE}/{rel}", files))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    package_data={"training": ["configs/*.yaml"], PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_tree("launch"),
        *_tree("config"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="ws3d_ros developers",
    maintainer_email="ws3d-ros@example.org",
    description="Open-vocabulary LiDAR-camera panoptic perception for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "ws3d = ws3d_ros.cli.main:main",
            "bag_player = ws3d_ros.ros.bag_player:main",
            "perception_node = ws3d_ros.ros.perception_node:main",
            "click_labeler = ws3d_ros.ros.click_labeler:main",
        ],
    },
)
