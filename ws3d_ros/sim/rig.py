"""The simulated rig: configuration, sensors, extrinsics, timing, and the frame generator.

Contract:
- :class:`SimConfig` holds every choice of a simulation (preset, frames,
  rate, seed, cameras 1 or 6, LiDAR beams 32/64/128, storage); invalid
  values raise :class:`~ws3d_ros.errors.Ws3dError` naming the field.
- :func:`make_rig` builds the sensors: a spinning LiDAR on ``base_link``
  (frame ``lidar``), and either one front camera (name ``camera``, frame
  ``camera``: KITTI-like 1242x375 on the street, 640x480 indoors) or a
  nuScenes-like ring (names ``front, front_left, front_right, back,
  back_left, back_right``, frames ``camera_<name>``, 800x450, 70 deg HFOV,
  the back one 110 deg), all pinhole + mild plumb_bob distortion, optical
  frames (z forward, x right, y down).
- Timing: sweep ``k`` is stamped ``start_ns + k / rate``; each camera's
  exposure is that stamp plus a fixed per-camera offset (a few ms) plus a
  seeded jitter of at most 0.5 ms, so consumers must synchronise. A camera
  image is rendered at its exposure time (ego and moving things placed
  there); the LiDAR sweep at the sweep stamp.
- :class:`Simulator` yields :class:`SimFrame` s; ``Simulator(cfg).frame(k)``
  is the same for any access order (each frame draws from its own seeded
  generator), so the same config always gives the same data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.geometry.camera import CameraModel
from ws3d_ros.geometry.extrinsics import Transform
from ws3d_ros.sim.camera import CameraRenderer, Render
from ws3d_ros.sim.classes import SimClass
from ws3d_ros.sim.lidar import LidarModel, scan
from ws3d_ros.sim.scene import PRESETS, Scene, build_scene

if TYPE_CHECKING:
    from ws3d_ros.data.frame import Frame

BEAMS = (32, 64, 128)
CAMERA_COUNTS = (1, 6)
STORAGES = ("mcap", "sqlite3")
RING_NAMES = ("front", "front_left", "front_right", "back", "back_left", "back_right")
#: First sweep stamp: a fixed epoch (2023-11-14T22:13:20Z), never the wall clock.
DEFAULT_START_NS = 1_700_000_000_000_000_000

BASE_FRAME = "base_link"
ODOM_FRAME = "odom"
LIDAR_FRAME = "lidar"

# Optical frame (z forward, x right, y down) -> body frame (x forward, y left, z up).
_R_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated recording; see the module docstring."""

    preset: str = "street"
    frames: int = 20
    rate_hz: float = 10.0
    seed: int = 0
    cameras: int = 1
    lidar_beams: int = 64
    storage: str = "mcap"
    start_ns: int = DEFAULT_START_NS

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise Ws3dError(f"preset must be one of {', '.join(PRESETS)}, found {self.preset!r}")
        if self.frames < 1:
            raise Ws3dError(f"frames must be >= 1, found {self.frames}")
        if not 0.1 <= self.rate_hz <= 50.0:
            raise Ws3dError(f"rate_hz must be within [0.1, 50], found {self.rate_hz}")
        if self.cameras not in CAMERA_COUNTS:
            raise Ws3dError(f"cameras must be 1 or 6, found {self.cameras}")
        if self.lidar_beams not in BEAMS:
            raise Ws3dError(f"lidar_beams must be one of {BEAMS}, found {self.lidar_beams}")
        if self.storage not in STORAGES:
            raise Ws3dError(f"storage must be mcap or sqlite3, found {self.storage!r}")
        if self.seed < 0:
            raise Ws3dError(f"seed must be >= 0, found {self.seed}")

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate_hz


@dataclass(frozen=True)
class CameraSpec:
    """One camera of the rig: model, mounting, and exposure timing."""

    name: str
    frame_id: str
    model: CameraModel
    T_base_from_cam: Transform
    offset_ns: int
    jitter_ns: int = 500_000

    @property
    def image_topic(self) -> str:
        ns = "/camera" if self.name == "camera" else f"/camera/{self.name}"
        return f"{ns}/image_raw"

    @property
    def info_topic(self) -> str:
        return self.image_topic.removesuffix("/image_raw") + "/camera_info"


@dataclass(frozen=True)
class Rig:
    """The sensors on ``base_link``."""

    lidar: LidarModel
    T_base_from_lidar: Transform
    cameras: tuple[CameraSpec, ...]
    lidar_frame: str = LIDAR_FRAME
    base_frame: str = BASE_FRAME
    odom_frame: str = ODOM_FRAME

    def camera(self, name: str) -> CameraSpec:
        for c in self.cameras:
            if c.name == name:
                return c
        raise Ws3dError(f"no camera {name!r}; the rig has {[c.name for c in self.cameras]}")

    def T_cam_from_lidar(self, name: str) -> Transform:
        return self.camera(name).T_base_from_cam.inverse() @ self.T_base_from_lidar


def _mount(xyz: tuple[float, float, float], yaw_deg: float, pitch_deg: float) -> Transform:
    """Optical frame at ``xyz`` on base_link, looking along ``yaw``, tilted down by ``pitch``."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    Rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    Ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])  # +pitch tilts x down
    T = np.eye(4)
    T[:3, :3] = Rz @ Ry @ _R_BODY_FROM_OPTICAL
    T[:3, 3] = xyz
    return Transform(T)


def _intrinsics(
    name: str, width: int, height: int, hfov_deg: float, D: tuple[float, ...], frame_id: str
) -> CameraModel:
    f = 0.5 * width / math.tan(math.radians(0.5 * hfov_deg))
    return CameraModel.from_intrinsics(
        width, height, f, f, 0.5 * width - 0.5, 0.5 * height - 0.5, D=D, frame_id=frame_id
    )


def make_rig(config: SimConfig, max_range: float) -> Rig:
    """The sensors of ``config`` (see the module docstring for names and frames)."""
    street = config.preset == "street"
    lidar = LidarModel.for_beams(config.lidar_beams, max_range=max_range, rate_hz=config.rate_hz)
    lidar_xyz = (0.81, 0.0, 1.73) if street else (0.1, 0.0, 0.9)
    T_base_from_lidar = Transform(_translation(lidar_xyz))
    cams: list[CameraSpec] = []
    if config.cameras == 1:
        if street:
            # KITTI's left colour camera: 1242x375, fx = 721.5 (~81 deg HFOV).
            model = CameraModel.from_intrinsics(
                1242,
                375,
                721.5377,
                721.5377,
                609.5593,
                172.854,
                D=(-0.05, 0.012, 0.0004, -0.0003, 0.0),
                frame_id="camera",
            )
            mount = _mount((1.08, 0.06, 1.65), 0.0, 0.5)
        else:
            model = _intrinsics("camera", 640, 480, 87.0, (-0.04, 0.01, 0.0, 0.0, 0.0), "camera")
            mount = _mount((0.25, 0.0, 0.8), 0.0, 2.0)
        cams.append(CameraSpec("camera", "camera", model, mount, offset_ns=4_000_000))
    else:
        z = 1.55 if street else 0.85
        layout = {
            "front": ((1.7, 0.0, z), 0.0, 70.0),
            "front_left": ((1.5, 0.5, z), 55.0, 70.0),
            "front_right": ((1.5, -0.5, z), -55.0, 70.0),
            "back": ((-0.1, 0.0, z), 180.0, 110.0),
            "back_left": ((1.0, 0.5, z), 110.0, 70.0),
            "back_right": ((1.0, -0.5, z), -110.0, 70.0),
        }
        for k, name in enumerate(RING_NAMES):
            xyz, yaw, hfov = layout[name]
            frame_id = f"camera_{name}"
            D = (-0.04 - 0.01 * (k % 3), 0.008, 0.0002 * (k - 2), -0.0002, 0.0)
            model = _intrinsics(name, 800, 450, hfov, D, frame_id)
            cams.append(
                CameraSpec(
                    name,
                    frame_id,
                    model,
                    _mount(xyz, yaw, 0.0),
                    offset_ns=2_000_000 + 1_500_000 * k,
                )
            )
    return Rig(lidar, T_base_from_lidar, tuple(cams))


def _translation(xyz: tuple[float, float, float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = xyz
    return T


class CameraShot(NamedTuple):
    """A camera's calibration for one frame and its exposure stamp."""

    camera: CameraModel
    T_cam_from_lidar: Transform
    stamp_ns: int


@dataclass
class SimFrame:
    """One simulated sweep with its camera images and ground truth."""

    index: int
    stamp_ns: int
    points: np.ndarray  # structured: x, y, z, intensity (f4), ring (u2), time (f4)
    labels: np.ndarray  # (N,) uint16 class ids
    instances: np.ndarray  # (N,) uint32, 0 = stuff
    images: dict[str, np.ndarray]  # name -> (H, W, 3) uint8 RGB
    class_images: dict[str, np.ndarray]  # name -> (H, W) uint16, 65535 = nothing hit
    instance_images: dict[str, np.ndarray]  # name -> (H, W) uint32
    depth_images: dict[str, np.ndarray]  # name -> (H, W) float32 optical z, inf = sky
    cameras: dict[str, CameraShot]
    T_odom_from_base: Transform
    T_base_from_lidar: Transform
    classes: tuple[SimClass, ...]
    lidar_frame: str = LIDAR_FRAME
    camera_frames: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points)

    @property
    def xyz(self) -> np.ndarray:
        return np.stack([self.points["x"], self.points["y"], self.points["z"]], axis=1)

    def to_frame(self) -> object:
        """The project's :class:`~ws3d_ros.data.frame.Frame` for this sweep (with labels)."""
        from ws3d_ros.data.frame import CameraView, Frame

        views = [
            CameraView(name, shot.camera, shot.T_cam_from_lidar, self.images[name], shot.stamp_ns)
            for name, shot in self.cameras.items()
        ]
        return Frame(
            stamp_ns=self.stamp_ns,
            frame_id=self.lidar_frame,
            points=self.points,
            views=views,
            labels=self.labels,
            instances=self.instances,
            index=self.index,
            source="sim",
        )


class Simulator:
    """Generates the frames of one :class:`SimConfig` (see the module docstring)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.scene: Scene = build_scene(config.preset, config.seed, config.duration_s)
        self.rig = make_rig(config, self.scene.max_range)
        self._renderers = {c.name: CameraRenderer(c.model) for c in self.rig.cameras}

    @property
    def classes(self) -> tuple[SimClass, ...]:
        return self.scene.classes

    def __len__(self) -> int:
        return self.config.frames

    def stamp_ns(self, index: int) -> int:
        return self.config.start_ns + round(index * 1e9 / self.config.rate_hz)

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, index, stream])

    def render(self, name: str, t: float, rng: np.random.Generator) -> Render:
        """Render camera ``name`` at scene time ``t`` (s after the first sweep)."""
        spec = self.rig.camera(name)
        T_world_from_cam = self.scene.T_world_from_base(t) @ spec.T_base_from_cam.matrix
        return self._renderers[name].render(
            self.scene, self.scene.primitives_at(t), T_world_from_cam, rng
        )

    def frame(self, index: int) -> SimFrame:
        if not 0 <= index < self.config.frames:
            raise Ws3dError(f"frame index {index} outside 0..{self.config.frames - 1}")
        stamp = self.stamp_ns(index)
        t = (stamp - self.config.start_ns) * 1e-9
        scene, rig = self.scene, self.rig
        T_world_from_lidar = scene.T_world_from_base(t) @ rig.T_base_from_lidar.matrix
        sweep = scan(
            rig.lidar, scene.primitives_at(t), scene.ground, T_world_from_lidar, self._rng(index, 0)
        )
        timing = self._rng(index, 1)
        images, class_images, instance_images, depth_images, shots = {}, {}, {}, {}, {}
        for k, spec in enumerate(rig.cameras):
            jitter = int(timing.integers(-spec.jitter_ns, spec.jitter_ns + 1))
            cam_stamp = stamp + spec.offset_ns + jitter
            view = self.render(
                spec.name, (cam_stamp - self.config.start_ns) * 1e-9, self._rng(index, 2 + k)
            )
            images[spec.name] = view.rgb
            class_images[spec.name] = view.label
            instance_images[spec.name] = view.instance
            depth_images[spec.name] = view.depth
            shots[spec.name] = CameraShot(spec.model, rig.T_cam_from_lidar(spec.name), cam_stamp)
        return SimFrame(
            index=index,
            stamp_ns=stamp,
            points=sweep.points,
            labels=sweep.labels,
            instances=sweep.instances,
            images=images,
            class_images=class_images,
            instance_images=instance_images,
            depth_images=depth_images,
            cameras=shots,
            T_odom_from_base=Transform(scene.ego_pose(t)),
            T_base_from_lidar=rig.T_base_from_lidar,
            classes=scene.classes,
            lidar_frame=rig.lidar_frame,
            camera_frames={c.name: c.frame_id for c in rig.cameras},
        )

    def frames(self) -> Iterator[SimFrame]:
        for index in range(self.config.frames):
            yield self.frame(index)


def sample_frame(beams: int = 32, seed: int = 0) -> Frame:
    """A simulated street sweep with a front camera (example input and export parity data)."""
    sim = Simulator(SimConfig(frames=1, lidar_beams=beams, seed=seed))
    return sim.frame(0).to_frame()  # type: ignore[return-value]
