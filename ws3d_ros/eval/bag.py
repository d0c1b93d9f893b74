"""Evaluate a model or a labelled output bag against a bag's ground truth.

Contract: :func:`evaluate_bag` scores either a model (``model``: exported directory or
``ws3d train`` checkpoint, run through the :class:`~ws3d_ros.runtime.pipeline.Pipeline`)
or the ``/panoptic/points`` of a bag written by ``ws3d infer`` (``pred``) against the
ground truth of ``bag`` (a labels topic or SemanticKITTI sidecars, as ``sensors`` says),
split in and out of the camera field of view (:func:`ws3d_ros.eval.scoring.in_fov_mask`).
Classes: ``classes_file``, else the label map of the labels, else the bag's
``classes.yaml``. It returns ``(result, extra, names, colors)``: the
:meth:`~ws3d_ros.eval.metrics.PanopticEvaluator.result` document, ``{"baseline":
majority-class baseline, "frames", "frames_without_prediction"}``, the class names and
their ``(C, 3)`` uint8 colours. ``ws3d eval`` and ``training.experiments`` call it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.data.sensors import SensorSet
from ws3d_ros.errors import Ws3dError
from ws3d_ros.eval.scoring import FrameScorer, class_lut, map_predicted

POINTS_TOPIC = "/panoptic/points"
LABEL_MAP_TOPIC = "/panoptic/label_map"


def bag_classes(
    bag: Path, frames: Any, classes_file: Path | None = None
) -> tuple[list[str], list[bool], np.ndarray]:
    """Names, thing flags and ``(C, 3)`` uint8 colours of the classes ``bag``'s labels use."""
    from ws3d_ros.data.labels import bag_label_classes

    if classes_file is not None and not Path(classes_file).is_file():
        raise Ws3dError(f"no classes file {classes_file}")
    found, origin = bag_label_classes(bag, frames.label_classes, classes_file)
    if found is None:
        raise Ws3dError(f"no class list ({origin}); pass --classes-file or --label-map")
    return (
        list(found.names),
        [n in found.things for n in found.names],
        np.array(found.colors, np.uint8).reshape(-1, 3),
    )


def prediction_stream(pred_bag: Path) -> tuple[dict[int, Any], dict[int, str]]:
    """``stamp_ns -> (labels, instances)`` int64 of a ``ws3d infer`` bag and its label map
    (class id -> name; empty when the bag has none)."""
    from ws3d_ros.data.bag import BagReader
    from ws3d_ros.msg.kit import stamp_to_ns
    from ws3d_ros.msg.pointcloud2 import cloud_to_array

    clouds: dict[int, Any] = {}
    id_to_name: dict[int, str] = {}
    with BagReader(pred_bag) as reader:
        if POINTS_TOPIC not in reader.topics:
            raise Ws3dError(f"{pred_bag} has no {POINTS_TOPIC} (write it with `ws3d infer`)")
        wanted = [POINTS_TOPIC] + ([LABEL_MAP_TOPIC] if LABEL_MAP_TOPIC in reader.topics else [])
        for topic, _, msg in reader.messages(wanted):
            if topic == LABEL_MAP_TOPIC:
                doc = json.loads(msg.data)
                for entry in doc.get("classes", []):
                    id_to_name[int(entry["id"])] = str(entry["name"])
                continue
            arr = cloud_to_array(msg).reshape(-1)
            clouds[stamp_to_ns(msg.header.stamp)] = (
                arr["label"].astype(np.int64),
                arr["instance"].astype(np.int64),
            )
    return clouds, id_to_name


def evaluate_bag(
    bag: Path,
    *,
    model: Path | None = None,
    pred: Path | None = None,
    backend: str | None = None,
    device: str = "cpu",
    mode: str = "fusion",
    classes_file: Path | None = None,
    max_frames: int = 0,
    quiet: bool = False,
    sensors: SensorSet | None = None,
) -> tuple[dict[str, Any], dict[str, Any], list[str], np.ndarray]:
    """Score ``model`` or ``pred`` (exactly one) on ``bag`` (module docstring)."""
    from ws3d_ros.data.frames import BagFrames

    if (model is None) == (pred is None):
        raise Ws3dError("evaluate one of a model or a prediction bag")
    frames = BagFrames(bag, sensors=sensors or SensorSet())
    try:
        return _evaluate(
            frames, bag, model, pred, backend, device, mode, classes_file, max_frames, quiet
        )
    finally:
        frames.close()


def _evaluate(
    frames: Any,
    bag: Path,
    model: Path | None,
    pred: Path | None,
    backend: str | None,
    device: str,
    mode: str,
    classes_file: Path | None,
    max_frames: int,
    quiet: bool,
) -> tuple[dict[str, Any], dict[str, Any], list[str], np.ndarray]:
    from tqdm import tqdm

    names, thing, colors = bag_classes(bag, frames, classes_file)
    scorer = FrameScorer(names, thing)
    pipeline = None
    clouds: dict[int, Any] = {}
    if model is not None:
        from ws3d_ros.runtime.pipeline import Pipeline

        backend = backend or ("onnxruntime" if Path(model).is_dir() else "torch")
        pipeline = Pipeline.load(model, backend=backend, device=device, mode=mode)
        pipeline.set_vocabulary(names, [n for n, t in zip(names, thing, strict=True) if t])
        vocab = pipeline.vocabulary
        lut = class_lut({vocab.id_of(n): n for n in vocab.names}, names)
    else:
        assert pred is not None
        clouds, id_to_name = prediction_stream(pred)
        lut = class_lut(id_to_name or dict(enumerate(names)), names)
    missing = 0
    unlabelled = 0
    bar = tqdm(desc="eval", unit="sweep", disable=quiet)
    for frame in frames:
        if frame.labels is None:
            unlabelled += 1
            continue
        if pipeline is not None:
            res = pipeline(frame)
            pl, pi = res.label.astype(np.int64), res.instance.astype(np.int64)
        else:
            if frame.stamp_ns not in clouds:
                missing += 1
                continue
            pl, pi = clouds[frame.stamp_ns]
            if len(pl) != len(frame.labels):
                raise Ws3dError(
                    f"prediction at {frame.stamp_ns} has {len(pl)} points, sweep has "
                    f"{len(frame.labels)}"
                )
        # The FOV split is a property of the data (every finite point a camera with
        # an image sees), the same for a model and a prediction bag, whatever the range.
        scorer.add(frame, map_predicted(pl, lut), pi)
        bar.update(1)
        if max_frames and scorer.frames >= max_frames:
            break
    bar.close()
    if scorer.frames == 0:
        raise Ws3dError(_nothing_scored(frames, bag, unlabelled, missing))
    info = {"frames": scorer.frames, "frames_without_prediction": missing}
    return scorer.result(), {"baseline": scorer.baseline(), **info}, names, colors


def _nothing_scored(frames: Any, bag: Path, unlabelled: int, missing: int) -> str:
    from ws3d_ros.data.labels import no_labels_message

    if unlabelled or not frames.stats.frames:
        looked = []
        if frames.topics.labels is not None:
            looked.append(f"labels topic {frames.topics.labels} ({unlabelled} sweeps without)")
        else:
            looked.append("a PointCloud2 with a 'label' field (none in the bag)")
        if frames.sidecars is not None:
            looked.append(f"sidecars {frames.sidecars.directory}/NNNNNN.label")
        return no_labels_message(bag, looked)
    return (
        f"no labelled sweep of {bag} could be evaluated "
        f"({missing} labelled sweeps had no prediction in --pred)"
    )
