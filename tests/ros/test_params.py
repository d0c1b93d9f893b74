"""The parameter table (ROS-free) and everything generated from or checked against it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ws3d_ros.ros import params as P
from ws3d_ros.runtime.vocabulary import Vocabulary

ROOT = Path(__file__).resolve().parents[2]


def test_every_parameter_is_documented_and_its_default_valid() -> None:
    names = [p.name for p in P.PARAMETERS]
    assert len(names) == len(set(names))
    for p in P.PARAMETERS:
        assert p.type in P.TYPES, p.name
        assert len(p.description) > 20, p.name
        P.check_value(p, p.default)
    P.check_update(P.defaults())
    required = {
        "classes", "thing_classes", "prompt_templates", "score_threshold", "mode", "backend",
        "device", "model_path", "sync.slop", "sync.queue_size", "sync.timeout",
        "calibration_file", "publish.overlay", "publish.instances",
    }  # fmt: skip
    assert required <= set(names)
    for name in ("backend", "device", "model_path", "cameras", "queue_depth"):
        assert P.spec_for(name).read_only, name
    for name in ("classes", "thing_classes", "prompt_templates", "score_threshold", "mode"):
        assert not P.spec_for(name).read_only, name


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("classes", [], "must not be empty"),
        ("classes", ["car", " car "], "duplicates"),
        ("classes", ["car", ""], "empty name"),
        ("classes", "car", "string_array"),
        ("score_threshold", 1.01, "within [0, 1]"),
        ("score_threshold", float("nan"), "finite"),
        ("score_threshold", True, "double"),
        ("mode", "fast", "one of"),
        ("backend", "cuda", "one of"),
        ("device", "gpu0", "cuda:N"),
        ("prompt_templates", ["no placeholder"], "{}"),
        ("prompt_templates", ["{} and {}"], "exactly one"),
        ("sync.queue_size", 0, "within [1, 100]"),
        ("cameras", ["front", "/front"], "duplicate"),
        ("cameras", ["9cam"], "valid ROS name"),
        ("extrinsics.front.xyz", [1.0, 2.0], "3 numbers"),
        ("extrinsics.front.matrix", [1.0] * 9, "12 or 16"),
        ("sync.time_offset.front", 2.0, "within [-1, 1]"),
    ],
)
def test_bad_values_are_refused_with_a_reason(name: str, value: object, reason: str) -> None:
    with pytest.raises(P.ParamError) as info:
        P.check_value(P.spec_for(name), value)
    assert reason in str(info.value)
    assert name in str(info.value)


def test_cross_parameter_rules() -> None:
    values = P.defaults(["front"])
    # a thing class not in classes is ignored, so classes can change alone (ros2 param set)
    values["classes"] = ["car", "stroller"]
    P.check_update(values, ["classes"])
    assert P.vocabulary_args(values) == (["car", "stroller"], ["car"], list(P.DEFAULT_TEMPLATES))
    values["extrinsics.front.xyz"] = [0.0, 0.0, 1.0]
    values["extrinsics.front.matrix"] = [float(v) for v in range(16)]
    with pytest.raises(P.ParamError, match="give one form"):
        P.check_update(values, ["extrinsics.front.matrix"])
    values["extrinsics.front.xyz"] = []
    with pytest.raises(P.ParamError, match=r"extrinsics\.front"):  # not a rigid transform
        P.check_update(values, ["extrinsics.front.matrix"])
    values["extrinsics.front.matrix"] = []
    values["extrinsics.front.rpy"] = [0.0, 0.0, 1.57]
    assert P.extrinsics_spec(values, "front") == {"xyz": [0.0, 0.0, 0.0], "rpy": [0.0, 0.0, 1.57]}
    P.check_update(values)


def test_per_camera_parameters_expand_and_resolve() -> None:
    assert P.camera_name("") == "camera"
    assert P.camera_name("/cams/front/") == "cams_front"
    names = {p.name for p in P.expand(["front", "back"])}
    assert {"extrinsics.front.xyz", "extrinsics.back.matrix", "sync.time_offset.back"} <= names
    assert not any(P.CAMERA in n for n in names)
    assert P.spec_for("sync.time_offset.left").range == (-1.0, 1.0)
    with pytest.raises(P.ParamError, match="unknown parameter"):
        P.spec_for("sync.nope")


def test_params_module_has_no_rclpy_import() -> None:
    tree = ast.parse((ROOT / "ws3d_ros/ros/params.py").read_text())
    imported = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert not any(m.startswith(("rclpy", "rcl_interfaces")) for m in imported)


def test_generated_docs_and_params_file_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_param_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_params_file_documents_every_parameter_with_valid_values() -> None:
    text = (ROOT / "config/perception.yaml").read_text()
    doc = yaml.safe_load(text)
    values = doc[f"/**/{P.NODE_NAME}"]["ros__parameters"]
    commented = {
        line.strip()[2:].split(":")[0]
        for line in text.splitlines()
        if line.strip().startswith("# ") and line.strip().endswith(": []")
    }
    declared = {p.name for p in P.expand(values["cameras"])}
    assert set(values) | commented == declared
    lines = text.splitlines()
    for name in declared:
        at = next(i for i, line in enumerate(lines) if line.strip().lstrip("# ").startswith(name))
        assert lines[at - 1].strip().startswith("#"), f"{name} has no comment above it"
    merged = {**P.defaults(values["cameras"]), **values}
    P.check_update(merged)
    md = (ROOT / "docs/parameters.md").read_text()
    for p in P.PARAMETERS:
        assert f"`{p.name}`" in md


@pytest.mark.parametrize("name", ["driving", "indoor"])
def test_ready_vocabularies_are_valid(name: str) -> None:
    doc = yaml.safe_load((ROOT / f"config/vocabularies/{name}.yaml").read_text())
    values = doc[f"/**/{P.NODE_NAME}"]["ros__parameters"]
    assert set(values) == {"classes", "thing_classes", "prompt_templates"}
    merged = {**P.defaults(), **values}
    P.check_update(merged)
    assert set(values["thing_classes"]) <= set(values["classes"])
    vocab = Vocabulary.create(*P.vocabulary_args(merged))
    assert len(vocab.names) == len(values["classes"])


def test_default_vocabulary_is_the_driving_file() -> None:
    doc = yaml.safe_load((ROOT / "config/vocabularies/driving.yaml").read_text())
    values = doc[f"/**/{P.NODE_NAME}"]["ros__parameters"]
    assert values["classes"] == P.spec_for("classes").default
    assert values["thing_classes"] == P.spec_for("thing_classes").default


def _call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def test_launch_file_arguments_and_node() -> None:
    """The launch file is checked by reading it (launch_ros is not in the pip install); its
    argument semantics are tested in test_launch_args.py."""
    from ws3d_ros.ros.launch_args import ARGUMENTS

    source = (ROOT / "launch/perception.launch.py").read_text()
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    (node,) = [c for c in calls if _call_name(c) == "Node"]
    kw = {k.arg: k.value for k in node.keywords}
    consts = {k: ast.literal_eval(v) for k, v in kw.items() if isinstance(v, ast.Constant)}
    assert consts["executable"] == "perception_node"
    assert "ws3d_perception" in source and 'PACKAGE = "ws3d_ros"' in source
    for name, (default, text) in ARGUMENTS.items():
        assert text, name
        if name == "backend" and default:
            assert default in P.spec_for("backend").choices
    setup = (ROOT / "setup.py").read_text()
    assert "perception_node = ws3d_ros.ros.perception_node:main" in setup


def test_precision_choices_match_the_runtime() -> None:
    from ws3d_ros.models.device.precision import PRECISIONS

    assert P.spec_for("precision").choices == PRECISIONS == P.PRECISIONS
