"""Two cameras over real DDS: per-camera topics, both used, a missing one flagged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import PERIOD_NS, Rig, SimMessages, labels_of, node_overrides, start_rig, stop_rig
from ros_harness import wait_for as wait
from sensor_msgs.msg import CameraInfo, Image

from ws3d_ros.ros.perception_node import PerceptionNode

pytestmark = pytest.mark.ros

T0 = 1_800_000_000_000_000_000
# '' is the camera named "camera" on the topics image/camera_info; "right" uses right/...
NAMESPACES = ("", "right")
CAMERAS = ("camera", "right")


@pytest.fixture(scope="module")
def rig2(tiny_model: Path, sim: SimMessages) -> Iterator[Rig]:
    matrix = sim.extrinsics_matrix()
    overrides = node_overrides(
        sim, tiny_model, **{"qos.sensor_data": False, "publish.overlay": True}
    )
    overrides += [Parameter("cameras", value=list(NAMESPACES))]
    overrides += [Parameter("extrinsics.right.matrix", value=matrix)]
    r = start_rig(lambda ctx: PerceptionNode(context=ctx, parameter_overrides=overrides))
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    r.cams = {  # type: ignore[attr-defined]
        "camera": (r.pub_image, r.pub_info),
        "right": (
            r.rig.create_publisher(Image, "right/image", qos),
            r.rig.create_publisher(CameraInfo, "right/camera_info", qos),
        ),
    }
    pubs = [p for pair in r.cams.values() for p in pair]  # type: ignore[attr-defined]
    wait(lambda: all(p.get_subscription_count() > 0 for p in pubs), 10, "camera subscriptions")

    def infos_received() -> bool:
        for _, info in r.cams.values():  # type: ignore[attr-defined]
            info.publish(sim.camera_info(0))
        d = r.diagnostics()
        return all(int(d.get(f"count.in.{c}/camera_info", 0)) > 0 for c in CAMERAS)

    wait(infos_received, 15, "both camera_infos")
    yield r
    stop_rig(r)


def _send(r: Rig, sim: SimMessages, stamp: int, cameras: tuple[str, ...]) -> None:
    for c in cameras:
        image_pub, info_pub = r.cams[c]  # type: ignore[attr-defined]
        cam_stamp = stamp + sim.camera_offsets_ns[0]
        info_pub.publish(sim.camera_info(cam_stamp))
        image_pub.publish(sim.image(0, cam_stamp))
    r.pub_points.publish(sim.cloud(0, stamp))


def test_both_cameras_feed_the_sweep(rig2: Rig, sim: SimMessages) -> None:
    before = rig2.diagnostics()
    stamp = T0 + PERIOD_NS
    _send(rig2, sim, stamp, CAMERAS)
    out = rig2.wait_output(stamp)
    assert len(labels_of(out)) == len(sim.points[0])
    after = rig2.diagnostics()
    for c in CAMERAS:
        assert int(after.get(f"count.in.{c}/image", 0)) > int(before.get(f"count.in.{c}/image", 0))
        assert int(after.get(f"drops.sync.missing_image.{c}", 0)) == int(
            before.get(f"drops.sync.missing_image.{c}", 0)
        )


def test_a_missing_camera_is_flagged_and_the_sweep_still_labelled(
    rig2: Rig, sim: SimMessages
) -> None:
    before = int(rig2.diagnostics().get("drops.sync.missing_image.right", 0))
    stamp = T0 + 2 * PERIOD_NS
    _send(rig2, sim, stamp, ("camera",))
    out = rig2.wait_output(stamp)
    assert len(labels_of(out)) == len(sim.points[0])
    wait(
        lambda: int(rig2.diagnostics().get("drops.sync.missing_image.right", 0)) > before,
        10,
        "the right camera to be flagged",
    )


def test_overlay_tiles_every_camera(rig2: Rig, sim: SimMessages) -> None:
    rig2.rec.clear("panoptic/overlay")
    stamp = T0 + 50 * PERIOD_NS
    _send(rig2, sim, stamp, CAMERAS)
    rig2.wait_output(stamp)
    wait(lambda: rig2.rec.get("panoptic/overlay"), 10, "panoptic/overlay")
    overlay = rig2.rec.messages("panoptic/overlay")[-1]
    h, w = sim.images[0].shape[:2]
    assert overlay.encoding == "rgb8"
    assert (overlay.width, overlay.height) == (2 * w, h)  # both cameras, side by side
