"""The on-disk frame cache of training: bags -> per-frame arrays, built once, sharded.

Contract:
- :func:`build_cache` reads every bag through :class:`ws3d_ros.data.frames.BagFrames`
  (the project's one bag reader, with the run's
  :class:`~ws3d_ros.data.sensors.SensorSet`), brings each sweep's intensity to the
  model's ``intensity_range`` with :class:`~ws3d_ros.data.intensity.IntensityNormalizer`
  (the runtime's one normalisation), preprocesses each sweep with
  :func:`ws3d_ros.models.inputs.prepare_geometry` (same point filter as the runtime) and
  lifts the frozen teacher's dense image features to the kept points with
  :func:`ws3d_ros.models.inputs.camera_inputs` (same projection and sampling as the
  runtime). It shows a tqdm bar and writes one ``.npz`` per frame.
- Per frame (:class:`CachedFrame`): the kept points as a structured float32 array
  (``x, y, z`` + the model's point feature fields), ground-truth ``labels`` (uint16,
  65535 unknown) and ``instances`` (uint32) when the bag has a labels topic or a
  SemanticKITTI ``.label`` sidecar, the lifted CLIP features of the points a camera
  with an image sees (``clip_feats (V, D)`` float16, unit rows) with ``clip_index (N,)``
  (``V`` = unseen, the runtime's layout), ``view_of (N,)`` int8 (first camera that sees
  the point, -1 none) and an unsupervised over-segmentation ``segments (N,)`` int32
  (:func:`ws3d_ros.geometry.supervoxels.supervoxels`, voxel ``supervoxel_voxel`` m,
  seeds every ``supervoxel_size`` m). Classes: the bags' ``classes.yaml``, else the
  labels' own class list (a label map file, or the ``panoptic/label_map`` of a labels
  topic written by ``ws3d infer``). A sweep whose images are all
  missing is cached as a LiDAR-only frame (``V = 0``).
- Frames are numbered in bag order, bag after bag; shard ``k`` of ``num_shards`` holds
  frames ``k::num_shards`` (``shard_KKK/FFFFFF.npz``), so DDP ranks read disjoint shards.
- The cache directory is keyed by a hash of the bags (path, size, mtime of their files),
  the model config parts that change the cached arrays (point range and features, the
  CLIP spec), a fingerprint of the CLIP weights, the over-segmentation size and the
  frame selection: any change builds a new cache beside the old one. ``index.json`` is
  written last (atomically), so an interrupted build is simply rebuilt.
- :func:`split_frames` is deterministic: whole bags named in ``val_bags`` and, per bag,
  the frames in the last ``val_fraction`` of the bag's time span are validation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError
from ws3d_ros.labels import UNKNOWN_LABEL
from ws3d_ros.models.config import ModelConfig

log = logging.getLogger(__name__)

CACHE_FORMAT = "ws3d-train-cache/1"
INDEX_FILE = "index.json"
UNKNOWN = UNKNOWN_LABEL

#: ``fn(list of RGB uint8 images) -> list of (h, w, D) float32 maps`` (a frozen 2D teacher).
FeatureFn = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass
class CachedFrame:
    """One cached sweep (see the module docstring); every per-point array has N rows."""

    key: str
    points: np.ndarray  # (N,) structured float32: x, y, z + point feature fields
    clip_feats: np.ndarray  # (V, D) float16/float32 unit rows
    clip_index: np.ndarray  # (N,) int64, V = unseen
    view_of: np.ndarray  # (N,) int8, -1 = no camera
    segments: np.ndarray  # (N,) int32 over-segmentation ids
    labels: np.ndarray | None = None  # (N,) uint16
    instances: np.ndarray | None = None  # (N,) uint32
    #: training labels (weak or full, 65535 = unlabelled); set by the trainer, not cached
    train_labels: np.ndarray | None = None
    #: (N, ceil(C/8)) uint8 packed candidate classes of unlabelled points (``np.packbits``
    #: along axis 1, class k = bit k); set by the trainer from the clicks and OTOC's
    #: pseudo labels, not cached
    train_candidates: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    @property
    def xyz(self) -> np.ndarray:
        return np.stack([self.points["x"], self.points["y"], self.points["z"]], axis=1)

    @property
    def in_fov(self) -> np.ndarray:
        return self.clip_index < len(self.clip_feats)

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "points": self.points,
            "clip_feats": self.clip_feats,
            "clip_index": self.clip_index,
            "view_of": self.view_of,
            "segments": self.segments,
        }
        if self.labels is not None:
            arrays["labels"] = self.labels
        if self.instances is not None:
            arrays["instances"] = self.instances
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, key: str = "") -> CachedFrame:
        with np.load(path) as data:
            return cls(
                key=key or path.stem,
                points=data["points"],
                clip_feats=data["clip_feats"],
                clip_index=data["clip_index"].astype(np.int64),
                view_of=data["view_of"],
                segments=data["segments"],
                labels=data["labels"] if "labels" in data.files else None,
                instances=data["instances"] if "instances" in data.files else None,
            )


@dataclass(frozen=True)
class FrameRecord:
    """One line of ``index.json``."""

    file: str  # relative to the cache directory
    bag: str
    stamp_ns: int
    frame: int  # global frame number
    shard: int
    points: int
    seen: int
    has_labels: bool

    @property
    def key(self) -> str:
        return f"{Path(self.bag).name}:{self.stamp_ns}"


@dataclass
class FrameCache:
    """A built cache: its directory and frame records (in global frame order)."""

    root: Path
    records: list[FrameRecord]
    meta: dict[str, Any]

    @classmethod
    def open(cls, root: Path) -> FrameCache:
        data = json.loads((root / INDEX_FILE).read_text())
        if data.get("format") != CACHE_FORMAT:
            raise Ws3dError(f"{root} is not a {CACHE_FORMAT} cache")
        return cls(root, [FrameRecord(**r) for r in data["frames"]], data["meta"])

    @property
    def num_shards(self) -> int:
        return int(self.meta["num_shards"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("classes") or [])

    @property
    def thing_names(self) -> list[str]:
        return list(self.meta.get("things") or [])

    def load(self, record: FrameRecord) -> CachedFrame:
        return CachedFrame.load(self.root / record.file, record.key)

    def shards_for_rank(self, rank: int, world: int) -> list[int]:
        if world > self.num_shards:
            raise Ws3dError(
                f"{world} training processes but the cache has {self.num_shards} shards; "
                "set data.num_shards >= the number of processes"
            )
        return list(range(rank, self.num_shards, world))


def split_frames(
    records: Sequence[FrameRecord], val_fraction: float, val_bags: Sequence[str] = ()
) -> tuple[list[FrameRecord], list[FrameRecord]]:
    """``(train, val)``: see the module docstring (deterministic, by bag and time)."""
    val_names = {Path(b).resolve().name for b in val_bags} | {Path(b).name for b in val_bags}
    by_bag: dict[str, list[FrameRecord]] = {}
    for r in records:
        by_bag.setdefault(r.bag, []).append(r)
    train: list[FrameRecord] = []
    val: list[FrameRecord] = []
    for bag, recs in by_bag.items():
        if Path(bag).name in val_names:
            val += recs
            continue
        t0 = min(r.stamp_ns for r in recs)
        t1 = max(r.stamp_ns for r in recs)
        cut = t0 + (1.0 - val_fraction) * (t1 - t0)
        for r in recs:
            (val if val_fraction > 0 and r.stamp_ns > cut else train).append(r)
    key = {r.frame: k for k, r in enumerate(records)}
    train.sort(key=lambda r: key[r.frame])
    val.sort(key=lambda r: key[r.frame])
    return train, val


# ----------------------------------------------------------------------------- keying
def _bag_fingerprint(bag: Path) -> list[Any]:
    files = sorted(p for p in bag.rglob("*") if p.is_file()) if bag.is_dir() else [bag]
    return [[str(p.resolve()), p.stat().st_size, int(p.stat().st_mtime)] for p in files]


def clip_fingerprint(clip_model: Any) -> str:
    """sha256 of the CLIP weights (random-init towers differ by seed, so hash them)."""
    h = hashlib.sha256()
    for name, tensor in sorted(clip_model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(
    bags: Sequence[Path],
    config: ModelConfig,
    clip_hash: str,
    options: dict[str, Any],
) -> str:
    payload = {
        "format": CACHE_FORMAT,
        "bags": [_bag_fingerprint(Path(b)) for b in bags],
        "point_range": config.raw["point_range"],
        "point_features": list(config.point_features),
        "clip": {k: v for k, v in config.clip.items() if k != "templates"},
        "clip_hash": clip_hash,
        "options": options,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- build
def _classes_of(bag: Path) -> tuple[list[str], list[str], list[list[int]]]:
    from ws3d_ros.labels import load_classes

    path = (bag if bag.is_dir() else bag.parent) / "classes.yaml"
    if not path.is_file():
        return [], [], []
    classes = load_classes(path)
    return (
        [c.name for c in classes],
        [c.name for c in classes if c.thing],
        [list(c.color) for c in classes],
    )


def _sidecar_labels(
    sidecars: Path | None, index: int, n: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """SemanticKITTI ``NNNNNN.label`` (raw ids; see :class:`ws3d_ros.data.labels.SidecarLabels`)."""
    from ws3d_ros.data.labels import SidecarLabels

    if sidecars is None:
        return None, None
    found = SidecarLabels(sidecars).read(index, n)
    return (None, None) if found is None else found


def _kept_points(points: np.ndarray, kept: np.ndarray, fields: Sequence[str]) -> np.ndarray:
    from ws3d_ros.models.inputs import point_columns

    names = ["x", "y", "z", *[f for f in fields if f not in ("x", "y", "z")]]
    cols = point_columns(points[kept], names)
    out = np.zeros(len(kept), dtype=[(n, np.float32) for n in names])
    for k, n in enumerate(names):
        out[n] = cols[:, k]
    return out


def cache_frame(
    frame: Any,
    config: ModelConfig,
    teacher: FeatureFn,
    embed_dim: int,
    *,
    supervoxel_size: float = 1.0,
    supervoxel_voxel: float = 0.2,
    sidecar_labels: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> CachedFrame:
    """One :class:`~ws3d_ros.data.frame.Frame` -> :class:`CachedFrame` (no disk I/O)."""
    from ws3d_ros.geometry.supervoxels import supervoxels
    from ws3d_ros.models.inputs import camera_hits_for, camera_inputs, prepare_geometry

    geom = prepare_geometry(frame.points, config)
    views = [v for v in frame.views if v.image is not None and v.image.size]
    hits = camera_hits_for(geom, views)
    if views:
        maps = teacher([v.image for v in views])
        sizes = [(v.image.shape[0], v.image.shape[1]) for v in views]
        cam = camera_inputs(geom, hits, maps, sizes, embed_dim)
    else:
        cam = camera_inputs(geom, [], [], [], embed_dim)
    view_of = np.full(len(geom.kept), -1, np.int8)
    for k in range(len(hits) - 1, -1, -1):  # first camera wins
        view_of[hits[k].index] = k
    points = _kept_points(frame.points, geom.kept, config.point_features)
    intensity = points["intensity"] if "intensity" in (points.dtype.names or ()) else None
    seg = supervoxels(
        geom.xyz, intensity=intensity, voxel_size=supervoxel_voxel, seed_resolution=supervoxel_size
    ).labels
    labels, instances = frame.labels, frame.instances
    if labels is None:
        labels, instances = sidecar_labels
    return CachedFrame(
        key=f"{Path(frame.source).name}:{frame.stamp_ns}",
        points=points,
        clip_feats=cam.clip_feats.astype(np.float16),
        clip_index=cam.clip_index.astype(np.int64),
        view_of=view_of,
        segments=seg.astype(np.int32),
        labels=None if labels is None else labels[geom.kept].astype(np.uint16),
        instances=None if instances is None else instances[geom.kept].astype(np.uint32),
    )


def build_cache(
    bags: Sequence[str | Path],
    config: ModelConfig,
    cache_root: str | Path,
    *,
    teacher: FeatureFn,
    clip_hash: str,
    embed_dim: int,
    num_shards: int = 4,
    supervoxel_size: float = 1.0,
    supervoxel_voxel: float = 0.2,
    max_frames_per_bag: int = 0,
    frame_stride: int = 1,
    label_sidecars: str | Path | None = None,
    sensors: Any = None,
    progress: bool = True,
) -> FrameCache:
    """Build (or reuse) the cache of ``bags`` under ``cache_root/<key>``; see module doc."""
    from tqdm import tqdm

    from ws3d_ros.data.bag import BagReader
    from ws3d_ros.data.frames import BagFrames
    from ws3d_ros.data.intensity import IntensityNormalizer
    from ws3d_ros.data.sensors import SensorSet

    sensors = sensors or SensorSet()
    if label_sidecars and sensors.label_sidecars is None:
        sensors = dataclasses.replace(sensors, label_sidecars=Path(label_sidecars))
    bag_paths = [Path(b) for b in bags]
    for b in bag_paths:
        if not b.exists():
            raise Ws3dError(f"bag {b} does not exist")
    options = {
        "num_shards": num_shards,
        "supervoxel_size": supervoxel_size,
        "supervoxel_voxel": supervoxel_voxel,
        "intensity_range": list(config.intensity_range),
        "sensors": {
            k: None if v is None else str(v) for k, v in dataclasses.asdict(sensors).items()
        },
        "max_frames_per_bag": max_frames_per_bag,
        "frame_stride": frame_stride,
        "label_sidecars": str(sensors.label_sidecars) if sensors.label_sidecars else None,
    }
    key = cache_key(bag_paths, config, clip_hash, options)
    root = Path(cache_root) / key
    if (root / INDEX_FILE).is_file():
        log.info("frame cache %s is up to date", root)
        return FrameCache.open(root)
    root.mkdir(parents=True, exist_ok=True)
    for k in range(num_shards):
        (root / f"shard_{k:03d}").mkdir(exist_ok=True)

    classes: list[str] = []
    things: list[str] = []
    colors: list[list[int]] = []
    for b in bag_paths:
        names, th, col = _classes_of(b)
        if names and classes and names != classes:
            raise Ws3dError(f"{b}/classes.yaml lists other classes than the first bag's")
        if names and not classes:
            classes, things, colors = names, th, col

    total = 0
    for b in bag_paths:
        with BagReader(b) as reader:
            n = max(
                (info.count for info in reader.topics.values() if "PointCloud2" in info.msgtype),
                default=0,
            )
        n = -(-n // max(frame_stride, 1))
        total += min(n, max_frames_per_bag) if max_frames_per_bag else n
    records: list[FrameRecord] = []
    bar = tqdm(total=total, desc="cache", unit="frame", disable=not progress)
    for b in bag_paths:
        taken = 0
        normalize = IntensityNormalizer(config.intensity_range)
        with BagFrames(b, sensors=sensors) as frames:
            if not classes and frames.label_classes is not None:
                found = frames.label_classes
                classes, things = list(found.names), list(found.things)
                colors = [list(c) for c in found.colors]
            for frame in frames:
                if frame.index % max(frame_stride, 1):
                    continue
                if max_frames_per_bag and taken >= max_frames_per_bag:
                    break
                cached = cache_frame(
                    normalize(frame),
                    config,
                    teacher,
                    embed_dim,
                    supervoxel_size=supervoxel_size,
                    supervoxel_voxel=supervoxel_voxel,
                )
                g = len(records)
                shard = g % num_shards
                rel = f"shard_{shard:03d}/{g:06d}.npz"
                cached.save(root / rel)
                records.append(
                    FrameRecord(
                        file=rel,
                        bag=str(b.resolve()),
                        stamp_ns=int(frame.stamp_ns),
                        frame=g,
                        shard=shard,
                        points=len(cached),
                        seen=int(cached.in_fov.sum()),
                        has_labels=cached.labels is not None,
                    )
                )
                taken += 1
                bar.update(1)
    bar.close()
    if not records:
        raise Ws3dError(f"no frames in {[str(b) for b in bag_paths]}")
    meta = {
        "num_shards": num_shards,
        "classes": classes,
        "things": things,
        "colors": colors,
        "embed_dim": embed_dim,
        "clip_hash": clip_hash,
        "bags": [str(b.resolve()) for b in bag_paths],
        "options": options,
    }
    index = {
        "format": CACHE_FORMAT,
        "meta": meta,
        "frames": [dataclasses.asdict(r) for r in records],
    }
    tmp = root / f".{INDEX_FILE}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, root / INDEX_FILE)
    return FrameCache(root, records, meta)
