"""Tests of ws3d_ros.sim.preview: the picture holds the camera, the BEV and the legend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ws3d_ros.sim.bagwrite import save_preview
from ws3d_ros.sim.classes import class_colors
from ws3d_ros.sim.preview import render_preview
from ws3d_ros.sim.rig import SimConfig, Simulator


def colour_present(image: np.ndarray, color) -> bool:
    return bool(np.any(np.all(image == np.asarray(color, np.uint8), axis=-1)))


def test_single_camera_preview(tmp_path: Path) -> None:
    sim = Simulator(SimConfig(frames=1, seed=3, lidar_beams=32))
    frame = sim.frame(0)
    pic = render_preview(frame, sim.classes)
    assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[1] == 1242
    assert pic.shape[0] > 375 + 300
    # Class colours of the main classes are drawn (camera overlay and BEV).
    colors = class_colors(sim.classes)
    for cid in (0, 3, 8):  # road, building, car
        assert colour_present(pic[375:], colors[cid])
    # The top panel is the (dimmed) camera image, not an empty canvas.
    assert pic[:375].std() > 20
    path = save_preview(frame, tmp_path / "p.png")
    back = cv2.imread(str(path))[:, :, ::-1]
    assert np.array_equal(back, pic)


def test_ring_and_indoor_previews() -> None:
    sim = Simulator(SimConfig(frames=1, cameras=6, preset="indoor", lidar_beams=32))
    pic = render_preview(sim.frame(0), sim.classes)
    assert pic.shape[1] == 1242
    colors = class_colors(sim.classes)
    assert colour_present(pic, colors[1])  # wall
