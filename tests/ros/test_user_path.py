"""The ROS user's path over real DDS (issue 19): a namespaced node with the user's
parameter file, rclpy's own parameters through the parameter service, a compressed
camera stream that is fused, and the lifecycle flavour driven through its services."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from rclpy.parameter import Parameter
from ros_harness import (
    PERIOD_NS,
    Rig,
    SimMessages,
    node_overrides,
    start_rig,
    stop_rig,
)

from ws3d_ros.ros import params as P
from ws3d_ros.ros.perception_node import PerceptionNode, load_pipeline

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_750_000_000_000_000_000


class RecordingPipeline:
    """The real pipeline; keeps each result's count of points a camera saw (fused)."""

    def __init__(self, inner: Any) -> None:
        self.__dict__["inner"] = inner
        self.__dict__["in_fov"] = []

    def __call__(self, frame: Any, **kw: Any) -> Any:
        result = self.inner(frame, **kw)
        self.in_fov.append(int(result.in_fov.sum()))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)


def _user_params_file(path: Path, sim: SimMessages, model: Path) -> dict[str, Any]:
    """A user's file in the shipped layout (/**/ws3d_perception) with non-default values."""
    values: dict[str, Any] = {
        "model_path": str(model),
        "backend": "torch",
        "classes": ["car", "road", "building"],
        "thing_classes": ["car"],
        "score_threshold": 0.25,
        "sync.slop": 0.07,
        "queue_depth": 2,
        "publish.overlay": True,
        "extrinsics.camera.matrix": sim.extrinsics_matrix(),
        "use_tf_static": False,
        "intensity_range": [0.0, 255.0],
        "image_transport.camera": "compressed",
    }
    doc = {f"/**/{P.NODE_NAME}": {"ros__parameters": values}}
    path.write_text(yaml.safe_dump(doc))
    return values


def test_namespaced_node_applies_every_value_of_the_users_file(
    tmp_path: Path, tiny_model: Path, sim: SimMessages
) -> None:
    import rclpy
    from rclpy.context import Context

    params_file = tmp_path / "my.yaml"
    values = _user_params_file(params_file, sim, tiny_model)
    context = Context()
    rclpy.init(args=["node", "--ros-args", "--params-file", str(params_file)], context=context)
    try:
        node = PerceptionNode(context=context, namespace="robot1")
        try:
            assert node.get_fully_qualified_name() == "/robot1/ws3d_perception"
            for name, value in values.items():
                got = node.get_parameter(name).value
                assert (list(got) if isinstance(got, list | tuple) else got) == pytest.approx(
                    value
                ), name
            assert list(node.pipeline.vocabulary.names) == ["car", "road", "building"]
            assert node.pipeline.intensity.declared is not None  # 0-255 input declared
            assert node.count_subscribers("/robot1/image/compressed") == 1
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_shipped_parameter_files_apply_under_a_namespace(tiny_model: Path) -> None:
    """The shipped vocabulary file applies to /robot1/ws3d_perception too."""
    import rclpy
    from rclpy.context import Context

    indoor = ROOT / "config" / "vocabularies" / "indoor.yaml"
    expected = yaml.safe_load(indoor.read_text())[f"/**/{P.NODE_NAME}"]["ros__parameters"]
    context = Context()
    args = ["node", "--ros-args", "--params-file", str(ROOT / "config" / "perception.yaml")]
    args += ["--params-file", str(indoor), "-p", f"model_path:={tiny_model}"]
    args += ["-p", "backend:=torch", "-p", "use_tf_static:=false"]
    rclpy.init(args=args, context=context)
    try:
        node = PerceptionNode(context=context, namespace="robot1")
        try:
            assert list(node.get_parameter("classes").value) == expected["classes"]
            assert list(node.pipeline.vocabulary.names) == expected["classes"]
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture(scope="module")
def compressed_rig(tiny_model: Path, sim: SimMessages) -> Any:
    overrides = node_overrides(
        sim, tiny_model, **{"image_transport.camera": "compressed", "qos.sensor_data": False}
    )

    def factory(values: Mapping[str, Any]) -> Any:
        return RecordingPipeline(load_pipeline(values))

    r = start_rig(
        lambda ctx: PerceptionNode(
            context=ctx, parameter_overrides=overrides, pipeline_factory=factory
        ),
        compressed=True,
    )
    r.prime_camera_info(sim)
    yield r
    stop_rig(r)


def test_compressed_camera_stream_is_fused(compressed_rig: Rig, sim: SimMessages) -> None:
    assert compressed_rig.node.count_publishers("/image/compressed") == 1
    assert compressed_rig.node.count_subscribers("/image") == 0  # raw topic not subscribed
    for k in range(3):
        stamp = T0 + k * PERIOD_NS
        compressed_rig.send_frame(sim, k, stamp)
        compressed_rig.wait_output(stamp)
    pipeline = compressed_rig.node.pipeline
    assert pipeline.in_fov and min(pipeline.in_fov) > 0, pipeline.in_fov
    d = compressed_rig.diagnostics()
    assert int(d.get("count.in.camera/image", 0)) >= 3
    assert not any(k.startswith("lidar_only_sweeps") for k in d), d


def test_use_sim_time_is_set_through_the_parameter_service(compressed_rig: Rig) -> None:
    (result,) = compressed_rig.set_parameters([Parameter("use_sim_time", value=True)])
    assert result.successful, result.reason
    assert compressed_rig.get_parameter("use_sim_time") is True
    (result,) = compressed_rig.set_parameters([Parameter("use_sim_time", value=False)])
    assert result.successful, result.reason
    # the node's own checks still refuse bad values
    (result,) = compressed_rig.set_parameters([Parameter("score_threshold", value=3.0)])
    assert not result.successful


def test_click_labeler_parameter_file_applies_under_a_namespace(tmp_path: Path) -> None:
    """The shipped config/click_labeler.yaml (keyed /**/click_labeler), edited by a user,
    applies to /robot1/click_labeler."""
    import rclpy
    from rclpy.context import Context

    from ws3d_ros.ros.click_labeler import PARAMS, ClickLabeler

    doc = yaml.safe_load((ROOT / "config" / "click_labeler.yaml").read_text())
    values = doc["/**/click_labeler"]["ros__parameters"]
    assert set(values) == set(PARAMS)
    values.update(output=str(tmp_path / "c.jsonl"), bag="street_07", current_class="car")
    mine = tmp_path / "clicks.yaml"
    mine.write_text(yaml.safe_dump(doc))
    context = Context()
    rclpy.init(args=["node", "--ros-args", "--params-file", str(mine)], context=context)
    try:
        node = ClickLabeler(context=context, namespace="robot1")
        try:
            assert node.get_fully_qualified_name() == "/robot1/click_labeler"
            for name in ("output", "bag", "current_class"):
                assert node.get_parameter(name).value == values[name]
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
