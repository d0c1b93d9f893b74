"""The lifecycle flavour of the perception node (``perception_node --managed``), driven
through its lifecycle services over real DDS (issue 19): the model loads on configure,
nothing is subscribed or published unless active, cleanup frees, shutdown ends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from ros_harness import (
    CLASSES,
    PERIOD_NS,
    Rig,
    SimMessages,
    node_overrides,
    start_rig,
    stop_rig,
    wait_for,
)

from ws3d_ros.ros.perception_node import ManagedPerceptionNode

pytestmark = pytest.mark.ros

T0 = 1_760_000_000_000_000_000


def _call(rig: Rig, client: Any, request: Any, timeout: float = 30.0) -> Any:
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(request)
    wait_for(future.done, timeout, f"{client.srv_name} to answer")
    return future.result()


def _transition(rig: Rig, client: Any, transition_id: int) -> bool:
    request = ChangeState.Request()
    request.transition = Transition(id=transition_id)
    return bool(_call(rig, client, request).success)


def test_lifecycle_transitions_over_dds(tiny_model: Path, sim: SimMessages) -> None:
    overrides = node_overrides(sim, tiny_model, **{"qos.sensor_data": False})
    rig = start_rig(
        lambda ctx: ManagedPerceptionNode(context=ctx, parameter_overrides=overrides),
        wait_inputs=False,
    )
    try:
        name = rig.node.get_fully_qualified_name()
        change = rig.rig.create_client(ChangeState, f"{name}/change_state")
        get_state = rig.rig.create_client(GetState, f"{name}/get_state")

        def state() -> int:
            return int(_call(rig, get_state, GetState.Request()).current_state.id)

        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert rig.node.pipeline is None  # the model loads on configure, not before
        assert rig.node.count_subscribers("/points") == 0

        assert _transition(rig, change, Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert rig.node.pipeline is not None
        assert rig.node.count_subscribers("/points") == 0  # inactive: not subscribed

        assert _transition(rig, change, Transition.TRANSITION_ACTIVATE)
        assert state() == State.PRIMARY_STATE_ACTIVE
        rig.wait_inputs()
        rig.prime_camera_info(sim)
        stamp = T0 + 100 * PERIOD_NS
        rig.send_frame(sim, 0, stamp)
        rig.wait_output(stamp)
        wait_for(rig.label_maps, 10.0, "the label map on activate")
        assert [c["name"] for c in rig.label_maps()[-1]["classes"]] == CLASSES

        assert _transition(rig, change, Transition.TRANSITION_DEACTIVATE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        rig.rec.clear()
        for k in range(3):
            rig.send_frame(sim, k, stamp + (k + 1) * PERIOD_NS)
        time.sleep(1.5)  # longer than a tiny-model frame and two diagnostics periods
        assert rig.rec.get("panoptic/points") == []
        assert rig.rec.get("/diagnostics") == []
        assert rig.rec.get("panoptic/label_map") == []

        assert _transition(rig, change, Transition.TRANSITION_ACTIVATE)
        rig.wait_inputs()
        stamp2 = stamp + 10 * PERIOD_NS
        rig.send_frame(sim, 1, stamp2)
        rig.wait_output(stamp2)

        assert _transition(rig, change, Transition.TRANSITION_DEACTIVATE)
        assert _transition(rig, change, Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert rig.node.pipeline is None and rig.node.worker is None
        # configure again after cleanup: a new model, ready to activate
        assert _transition(rig, change, Transition.TRANSITION_CONFIGURE)
        assert rig.node.pipeline is not None
        assert not rig.node.done()
        assert _transition(rig, change, Transition.TRANSITION_INACTIVE_SHUTDOWN)
        assert rig.node.done()  # the executable leaves its spin loop on this
    finally:
        stop_rig(rig)


def test_lifecycle_configure_failure_keeps_the_node_unconfigured(sim: SimMessages) -> None:
    overrides = node_overrides(sim, Path("/nonexistent/model.pt"))
    rig = start_rig(
        lambda ctx: ManagedPerceptionNode(context=ctx, parameter_overrides=overrides),
        wait_inputs=False,
    )
    try:
        name = rig.node.get_fully_qualified_name()
        change = rig.rig.create_client(ChangeState, f"{name}/change_state")
        assert not _transition(rig, change, Transition.TRANSITION_CONFIGURE)
        assert rig.node.pipeline is None
    finally:
        stop_rig(rig)
