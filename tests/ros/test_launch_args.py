"""perception.launch.py's argument semantics (ws3d_ros.ros.launch_args), without `launch`:
the user's file wins over package defaults, vocabulary only when given (by name or path,
a wrong name is an error), single-value arguments only when given (issue 19)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ws3d_ros.ros.launch_args import (
    ARGUMENTS,
    LaunchArgumentError,
    node_setup,
    resolve_vocabulary,
    shipped_vocabularies,
)

ROOT = Path(__file__).resolve().parents[2]
SHARE = ROOT  # the source tree has the installed share layout: config/vocabularies/*.yaml


def test_defaults_pass_nothing_over_the_nodes_own_defaults() -> None:
    setup = node_setup({}, SHARE)
    assert setup.parameters == []  # no file, no inline value: nothing can shadow a user file
    assert setup.arguments == []
    assert setup.namespace == ""
    assert setup.remappings == [
        ("points", "points"),
        ("image", "image"),
        ("camera_info", "camera_info"),
    ]


def test_users_file_is_not_overridden_by_launch_defaults(tmp_path: Path) -> None:
    mine = tmp_path / "my.yaml"
    mine.write_text("/**/ws3d_perception:\n  ros__parameters:\n    model_path: /m\n")
    setup = node_setup({"params_file": str(mine), "namespace": "robot1"}, SHARE)
    assert setup.parameters == [str(mine)]  # no model_path / backend / vocabulary after it
    assert setup.namespace == "robot1"


def test_vocabulary_by_name_layers_after_the_users_file(tmp_path: Path) -> None:
    mine = tmp_path / "my.yaml"
    mine.write_text("{}\n")
    setup = node_setup({"params_file": str(mine), "vocabulary": "indoor"}, SHARE)
    assert setup.parameters == [str(mine), str(SHARE / "config/vocabularies/indoor.yaml")]
    assert "indoor" in shipped_vocabularies(SHARE) and "driving" in shipped_vocabularies(SHARE)
    own = tmp_path / "warehouse.yaml"
    own.write_text("{}\n")
    assert resolve_vocabulary(str(own), SHARE) == own


def test_a_wrong_vocabulary_is_an_error_naming_the_shipped_ones() -> None:
    with pytest.raises(LaunchArgumentError, match=r"'kitchen'.*driving, indoor"):
        node_setup({"vocabulary": "kitchen"}, SHARE)


def test_single_value_arguments_apply_only_when_given(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    setup = node_setup(
        {"model_path": str(model), "backend": "torch", "mode": "zero_shot", "use_sim_time": "true"},
        SHARE,
    )
    assert setup.parameters == [
        {
            "model_path": str(model.resolve()),
            "backend": "torch",
            "mode": "zero_shot",
            "use_sim_time": True,
        }
    ]
    only_mode = node_setup({"mode": "lidar_only"}, SHARE)
    assert only_mode.parameters == [{"mode": "lidar_only"}]


def test_managed_autostart_and_compressed_transport() -> None:
    setup = node_setup(
        {
            "managed": "true",
            "autostart": "true",
            "image_transport": "compressed",
            "image": "/cam/image_raw",
        },
        SHARE,
    )
    assert setup.arguments == ["--managed", "--autostart"]
    assert setup.parameters == [{"image_transport.camera": "compressed"}]
    assert ("image/compressed", "/cam/image_raw/compressed") in setup.remappings
    with pytest.raises(LaunchArgumentError, match="needs managed"):
        node_setup({"autostart": "true"}, SHARE)
    with pytest.raises(LaunchArgumentError, match="raw or compressed"):
        node_setup({"image_transport": "theora"}, SHARE)
    with pytest.raises(LaunchArgumentError, match="true or false"):
        node_setup({"managed": "maybe"}, SHARE)


def test_missing_params_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LaunchArgumentError, match="not a file"):
        node_setup({"params_file": str(tmp_path / "nope.yaml")}, SHARE)


def test_launch_file_declares_every_argument_through_launch_args() -> None:
    """The launch file (not importable without `launch`) uses this module's table."""
    text = (ROOT / "launch" / "perception.launch.py").read_text()
    tree = ast.parse(text)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "ws3d_ros.ros.launch_args"
        for alias in node.names
    }
    assert {"ARGUMENTS", "node_setup"} <= imported
    assert "OpaqueFunction" in text and "DeclareLaunchArgument" in text
    assert set(ARGUMENTS) >= {
        "params_file",
        "vocabulary",
        "model_path",
        "backend",
        "mode",
        "managed",
    }
