"""A picture of one simulated frame: camera(s) with projected labelled points, a BEV, a legend.

Contract: :func:`render_preview(frame, classes)` returns an RGB uint8 image:
on top the camera image(s) with the sweep's points projected (z-buffered, so
hidden points are not drawn) and coloured by their ground-truth class; below a
bird's-eye view of the sweep (x forward to the right) coloured by class, with
each thing's instance outlined by its oriented bounding box, the ego and the
camera field(s) of view; at the bottom a legend of class names and colours.
Works for any class list (colours come from the classes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ws3d_ros.geometry.projection import project_points
from ws3d_ros.sim.classes import SimClass, class_colors

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WIDTH = 1242


def _label_colors(labels: np.ndarray, classes: Sequence[SimClass]) -> np.ndarray:
    table = np.vstack([class_colors(classes), np.full((1, 3), 128, np.uint8)])
    idx = np.where(labels < len(classes), labels, len(classes)).astype(np.int64)
    return table[idx]


def _splat(image: np.ndarray, uv: np.ndarray, colors: np.ndarray, size: int) -> None:
    """Draw ``size`` x ``size`` squares at ``uv`` (far-to-near order is the caller's job)."""
    h, w = image.shape[:2]
    u = np.floor(uv[:, 0] - 0.5 * (size - 1)).astype(np.int64)
    v = np.floor(uv[:, 1] - 0.5 * (size - 1)).astype(np.int64)
    for du in range(size):
        for dv in range(size):
            uu, vv = u + du, v + dv
            ok = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
            image[vv[ok], uu[ok]] = colors[ok]


def _title(image: np.ndarray, text: str) -> None:
    (tw, th), base = cv2.getTextSize(text, _FONT, 0.55, 1)
    image[4 : 12 + th + base, 4 : 12 + tw] //= 3
    cv2.putText(image, text, (8, 8 + th), _FONT, 0.55, (255, 255, 255), 1, cv2.LINE_AA)


def _camera_panel(
    frame: object,
    name: str,
    classes: Sequence[SimClass],
    width: int,
    max_height: int,
    title: str | None = None,
) -> np.ndarray:
    """The camera image scaled into ``width`` x ``max_height`` (centred), points on top."""
    shot = frame.cameras[name]
    image = frame.images[name]
    proj = project_points(
        frame.xyz, shot.camera, shot.T_cam_from_lidar, zbuffer_block=4, zbuffer_tolerance=0.5
    )
    idx = np.flatnonzero(proj.mask)
    order = idx[np.argsort(-proj.depth[idx], kind="stable")]  # far first, near on top
    colors = _label_colors(frame.labels[order], classes)
    h, w = image.shape[:2]
    scale = min(width / w, max_height / h)
    size = (round(w * scale), round(h * scale))
    image = (
        image.copy() if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    )
    _splat(image, proj.uv[order] * scale, colors, 2 if scale > 0.6 else 1)
    _title(image, title or f"{name}: LiDAR points by class")
    pad = width - size[0]
    return np.pad(image, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), constant_values=255)


def _bev_panel(
    frame: object,
    classes: Sequence[SimClass],
    width: int,
    x_range: tuple[float, float],
    y_half: float,
    title: str | None = None,
) -> np.ndarray:
    ppm = width / (x_range[1] - x_range[0])
    height = round(2 * y_half * ppm)
    image = np.full((height, width, 3), 105, np.uint8)
    # Grid every 10 m.
    for x in range(math.ceil(x_range[0] / 10) * 10, int(x_range[1]) + 1, 10):
        c = round((x - x_range[0]) * ppm)
        cv2.line(image, (c, 0), (c, height - 1), (125, 125, 125), 1)
    for y in range(-int(y_half // 10) * 10, int(y_half) + 1, 10):
        r = round((y_half - y) * ppm)
        cv2.line(image, (0, r), (width - 1, r), (125, 125, 125), 1)

    def to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.stack([(x - x_range[0]) * ppm, (y_half - y) * ppm], axis=-1)

    xyz = frame.xyz
    order = np.argsort(xyz[:, 2], kind="stable")  # high points drawn last
    colors = _label_colors(frame.labels[order], classes)
    _splat(image, to_px(xyz[order, 0], xyz[order, 1]), colors, 2)
    for inst in np.unique(frame.instances[frame.instances > 0]):
        sel = frame.instances == inst
        if sel.sum() < 5:
            continue
        pts = to_px(xyz[sel, 0], xyz[sel, 1]).astype(np.float32)
        box = cv2.boxPoints(cv2.minAreaRect(pts)).round().astype(np.int32)
        cv2.polylines(image, [box], True, (255, 255, 255), 1, cv2.LINE_AA)
    # Camera fields of view (from the optical axis and horizontal FOV of each camera).
    for shot in getattr(frame, "cameras", {}).values():
        T_lidar_from_cam = shot.T_cam_from_lidar.inverse().matrix
        cam = shot.camera
        fx = float(np.asarray(cam.K, np.float64).reshape(3, 3)[0, 0])
        half = math.atan2(0.5 * cam.width, fx)
        o = T_lidar_from_cam[:3, 3]
        for s in (-1.0, 1.0):
            d = T_lidar_from_cam[:3, :3] @ np.array([s * math.tan(half), 0.0, 1.0])
            d = d / np.linalg.norm(d[:2])
            end = o[:2] + 25.0 * d[:2]
            p0 = to_px(np.array([o[0]]), np.array([o[1]]))[0]
            p1 = to_px(np.array([end[0]]), np.array([end[1]]))[0]
            cv2.line(
                image,
                tuple(int(v) for v in p0),
                tuple(int(v) for v in p1),
                (230, 230, 230),
                1,
                cv2.LINE_AA,
            )
    ego = to_px(np.array([0.0]), np.array([0.0]))[0]
    tri = np.array([[ego[0] + 12, ego[1]], [ego[0] - 7, ego[1] - 7], [ego[0] - 7, ego[1] + 7]])
    cv2.fillPoly(image, [tri.round().astype(np.int32)], (255, 255, 255))
    extent = f"{x_range[1] - x_range[0]:.0f} m x {2 * y_half:.0f} m"
    _title(image, title or f"bird's-eye view ({extent}), instance boxes")
    return image


def _legend(classes: Sequence[SimClass], width: int) -> np.ndarray:
    entries = []
    for c in classes:
        (tw, _), _ = cv2.getTextSize(c.name, _FONT, 0.5, 1)
        entries.append((c, tw + 34))
    rows, row, used = [], [], 0
    for c, w in entries:
        if used + w > width - 10 and row:
            rows.append(row)
            row, used = [], 0
        row.append((c, w))
        used += w
    rows.append(row)
    image = np.full((26 * len(rows) + 8, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        x = 8
        y = 8 + 26 * r
        for c, w in row:
            cv2.rectangle(image, (x, y + 2), (x + 16, y + 18), tuple(int(v) for v in c.color), -1)
            cv2.rectangle(image, (x, y + 2), (x + 16, y + 18), (0, 0, 0), 1)
            name = c.name + ("*" if c.thing else "")
            cv2.putText(image, name, (x + 22, y + 15), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            x += w
    return image


def render_preview(frame: object, classes: Sequence[SimClass]) -> np.ndarray:
    """RGB picture of a :class:`~ws3d_ros.sim.rig.SimFrame` (see the module docstring)."""
    names = list(frame.cameras)
    panels = []
    if len(names) == 1:
        panels.append(_camera_panel(frame, names[0], classes, _WIDTH, 480))
    else:
        order = ["front_left", "front", "front_right", "back_right", "back", "back_left"]
        ring = [n for n in order if n in names] + [n for n in names if n not in order]
        tile = _WIDTH // 3
        for r in range(0, len(ring), 3):
            row = [_camera_panel(frame, n, classes, tile, 480) for n in ring[r : r + 3]]
            h = max(p.shape[0] for p in row)
            row = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in row]
            strip = np.concatenate(row, axis=1)
            panels.append(np.pad(strip, ((0, 0), (0, _WIDTH - strip.shape[1]), (0, 0))))
    max_range = (
        float(np.percentile(np.linalg.norm(frame.xyz[:, :2], axis=1), 98))
        if len(frame.points)
        else 50.0
    )
    reach = min(80.0, max(15.0, max_range))
    x_range = (-0.5 * reach, reach) if len(names) == 1 else (-reach, reach)
    panels.append(_bev_panel(frame, classes, _WIDTH, x_range, min(30.0, 0.4 * reach)))
    panels.append(_legend(classes, _WIDTH))
    sep = np.full((4, _WIDTH, 3), 255, np.uint8)
    out = []
    for k, p in enumerate(panels):
        if k:
            out.append(sep)
        out.append(p)
    return np.concatenate(out, axis=0)


def camera_picture(
    frame: object, classes: Sequence[SimClass], name: str | None = None, title: str | None = None
) -> np.ndarray:
    """One camera image with the frame's points drawn in the colour of ``frame.labels``."""
    name = name or next(iter(frame.cameras))
    h, w = frame.images[name].shape[:2]
    return _camera_panel(frame, name, classes, w, h, title)


def bev_picture(frame: object, classes: Sequence[SimClass], reach: float = 60.0) -> np.ndarray:
    """Bird's-eye view coloured by ``frame.labels`` with ``frame.instances`` boxes + legend."""
    bev = _bev_panel(frame, classes, _WIDTH, (-0.5 * reach, reach), min(30.0, 0.4 * reach))
    return np.concatenate([bev, _legend(classes, _WIDTH)], axis=0)


def labels_bev(
    xyz: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[SimClass],
    title: str,
    *,
    instances: np.ndarray | None = None,
    width: int = _WIDTH,
    reach: float = 60.0,
) -> np.ndarray:
    """Bird's-eye view of any per-point ``labels`` (ids into ``classes``; ids past the
    list, e.g. 65535 unlabelled, are grey) with ``title``; no legend (:func:`legend`)."""
    from types import SimpleNamespace

    view = SimpleNamespace(
        xyz=np.asarray(xyz),
        labels=np.asarray(labels),
        instances=np.zeros(len(xyz), np.uint32) if instances is None else instances,
    )
    return _bev_panel(view, classes, width, (-0.5 * reach, reach), min(30.0, 0.4 * reach), title)


def legend(classes: Sequence[SimClass], width: int = _WIDTH) -> np.ndarray:
    """The class legend strip (name, colour, ``*`` on thing classes)."""
    return _legend(classes, width)
