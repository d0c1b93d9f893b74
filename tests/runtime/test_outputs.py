"""Output messages: the panoptic PointCloud2 contract, label map, overlay."""

from __future__ import annotations

import json

import numpy as np

from ws3d_ros.msg.pointcloud2 import cloud_to_array, structured
from ws3d_ros.runtime.outputs import label_map_message, overlay_image, panoptic_cloud
from ws3d_ros.runtime.result import UNKNOWN, PanopticResult


def _cloud(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    xyz[3] = np.nan  # passes through unchanged
    return structured(
        x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], intensity=rng.random(n, dtype=np.float32)
    )


def test_panoptic_cloud_has_contract_fields_order_and_count() -> None:
    pts = _cloud(50)
    res = PanopticResult.empty(50)
    res.label[:10] = 4
    res.instance[:5] = 7
    res.score[:10] = 0.75
    msg = panoptic_cloud(pts, res, frame_id="lidar", stamp_ns=123_000_000_456)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "label", "instance", "score"]
    assert [f.datatype for f in msg.fields] == [7, 7, 7, 4, 6, 7]
    assert msg.header.frame_id == "lidar"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (123, 456)
    arr = cloud_to_array(msg)
    assert len(arr) == 50
    np.testing.assert_array_equal(arr["x"], pts["x"])
    assert np.isnan(arr["x"][3]) and not msg.is_dense
    assert (arr["label"][:10] == 4).all() and (arr["label"][10:] == UNKNOWN).all()
    assert (arr["instance"][:5] == 7).all() and (arr["instance"][5:] == 0).all()


def test_organised_cloud_keeps_its_shape() -> None:
    pts = _cloud(24).reshape(4, 6)
    msg = panoptic_cloud(pts, PanopticResult.empty(24), frame_id="l", stamp_ns=0)
    assert (msg.height, msg.width) == (4, 6)


def test_label_map_message_and_overlay() -> None:
    doc = {"classes": [{"id": 0, "name": "road"}]}
    msg = label_map_message(json.dumps(doc))
    assert json.loads(msg.data) == doc
    image = np.zeros((20, 30, 3), np.uint8)
    table = np.array([[255, 0, 0], [128, 128, 128]], np.uint8)
    uv = np.array([[5.5, 5.5], [29.9, 19.9]], np.float32)
    out = overlay_image(image, uv, np.array([0, UNKNOWN], np.uint16), table, radius=1)
    assert tuple(out[5, 5]) == (255, 0, 0) and tuple(out[19, 29]) == (128, 128, 128)
    assert image.sum() == 0  # input untouched


def test_camera_overlays_cover_every_camera_and_tile() -> None:
    from ws3d_ros.runtime.outputs import camera_overlays, tile_images
    from ws3d_ros.sim.rig import SimConfig, Simulator

    frame = Simulator(SimConfig(frames=1, lidar_beams=32, seed=2, cameras=6)).frame(0).to_frame()
    frame.views[1].image = None  # a late camera has no overlay
    n = len(frame.points)
    result = PanopticResult(
        label=np.zeros(n, np.uint16), instance=np.zeros(n, np.uint32),
        score=np.ones(n, np.float32), in_fov=np.ones(n, bool),
    )  # fmt: skip
    table = np.array([[255, 0, 0], [0, 0, 0]], np.uint8)
    pictures = camera_overlays(frame, result, table)
    names = [v.name for v in frame.views]
    assert list(pictures) == names[:1] + names[2:]
    for name, pic in pictures.items():
        view = frame.view(name)
        assert pic.shape == view.image.shape
        assert ((pic == [255, 0, 0]).all(-1) & ~(view.image == [255, 0, 0]).all(-1)).any()
    tiled = tile_images(list(pictures.values()), columns=3)
    h, w = next(iter(pictures.values())).shape[:2]
    assert tiled.shape == (2 * h, 3 * w, 3)
    np.testing.assert_array_equal(tiled[:h, :w], pictures[names[0]])
