"""Pipeline: input-aligned results, live vocabulary, modes, missing cameras, backend errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ws3d_ros.data.frame import Frame
from ws3d_ros.runtime.backends import BackendError
from ws3d_ros.runtime.pipeline import Pipeline
from ws3d_ros.runtime.result import UNKNOWN
from ws3d_ros.runtime.vocabulary import VocabularyError


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint, street_classes) -> Pipeline:
    classes, things = street_classes
    return Pipeline.load(tiny_checkpoint, backend="torch", classes=classes, thing_classes=things)


def _with_bad_points(frame: Frame) -> Frame:
    pts = frame.points.copy()
    pts["x"][:5] = np.nan
    pts["x"][5:10] = 500.0  # outside point_range
    return dataclasses.replace(frame, points=pts)


def test_result_is_aligned_with_the_input(pipeline: Pipeline, sim_frame: Frame) -> None:
    frame = _with_bad_points(sim_frame)
    result = pipeline(frame)
    n = len(frame.points)
    assert len(result.label) == len(result.instance) == len(result.score) == n
    assert (result.label[:10] == UNKNOWN).all() and (result.score[:10] == 0).all()
    assert (result.instance[:10] == 0).all() and not result.in_fov[:10].any()
    lo, hi = pipeline.config.point_range
    xyz = np.stack([frame.points[a] for a in "xyz"], axis=1)
    with np.errstate(invalid="ignore"):
        valid = np.all((xyz >= lo) & (xyz < hi), axis=1)
    assert valid[10:].mean() > 0.9
    # Threshold 0: every valid point gets a class, every other one is unknown.
    np.testing.assert_array_equal(result.label != UNKNOWN, valid)
    assert 0.05 < result.in_fov.mean() < 0.5
    assert set(np.unique(result.label[valid]).tolist()) <= set(
        pipeline.vocabulary.active_ids.tolist()
    )
    for stage in ("voxelise", "rulebook", "projection", "clip", "lift", "net", "group", "total"):
        assert result.timings[stage] >= 0
    # Stuff classes never carry instances.
    stuff = [e.id for e in pipeline.vocabulary.active if not e.thing]
    assert (result.instance[np.isin(result.label, stuff)] == 0).all()


def test_vocabulary_change_takes_effect_without_reexport(
    tiny_checkpoint, street_classes, sim_frame: Frame
) -> None:
    classes, things = street_classes
    pipe = Pipeline.load(tiny_checkpoint, backend="torch", classes=classes, thing_classes=things)
    before = pipe(sim_frame)
    ids = {n: pipe.vocabulary.id_of(n) for n in classes}
    counts = np.bincount(before.label[before.label != UNKNOWN], minlength=len(classes))
    top = int(np.argmax(counts))
    dropped = next(n for n, i in ids.items() if i == top)
    calls = pipe.backend._text.tower_calls

    pipe.set_vocabulary([n for n in classes if n != dropped] + ["stroller"], things)
    assert pipe.backend._text.tower_calls == calls + 1  # only the new name was encoded
    after = pipe(sim_frame)
    assert not (after.label == top).any()
    moved = before.label == top
    assert (after.label[moved] != top).all() and moved.sum() > 0
    assert pipe.vocabulary.id_of("stroller") == len(classes)  # new id, nothing renumbered
    for n in classes:
        if n != dropped:
            assert pipe.vocabulary.id_of(n) == ids[n]
    assert after.vocabulary_version == before.vocabulary_version + 1


def test_bad_vocabulary_keeps_the_old_one(pipeline: Pipeline) -> None:
    names = pipeline.vocabulary.names
    with pytest.raises(VocabularyError, match="not in classes"):
        pipeline.set_vocabulary(["car"], ["bus"])
    assert pipeline.vocabulary.names == names


def test_lidar_only_equals_fusion_with_every_image_missing(
    pipeline: Pipeline, sim_frame: Frame
) -> None:
    lidar = pipeline(sim_frame, mode="lidar_only")
    assert not lidar.in_fov.any()
    no_images = dataclasses.replace(
        sim_frame, views=[dataclasses.replace(v, image=None) for v in sim_frame.views]
    )
    missing = pipeline(no_images)
    assert missing.missing_cameras == tuple(v.name for v in sim_frame.views)
    np.testing.assert_array_equal(lidar.label, missing.label)
    fused = pipeline(sim_frame)
    # Out of the camera's view the fused model is the LiDAR-only model.
    out = ~fused.in_fov
    np.testing.assert_array_equal(fused.label[out], lidar.label[out])


def test_zero_shot_labels_only_what_a_camera_sees(
    tiny_config, street_classes, sim_frame: Frame
) -> None:
    classes, things = street_classes
    pipe = Pipeline.zero_shot(tiny_config, classes=classes, thing_classes=things)
    result = pipe(sim_frame)
    assert (result.label[~result.in_fov] == UNKNOWN).all()
    assert (result.label[result.in_fov] != UNKNOWN).all()
    with pytest.raises(Exception, match="needs trained 3D weights"):
        Pipeline(tiny_config, pipe.backend, mode="fusion")


def test_score_threshold_gives_unknown(pipeline: Pipeline, sim_frame: Frame) -> None:
    pipeline.score_threshold = 1.01
    try:
        assert (pipeline(sim_frame).label == UNKNOWN).all()
    finally:
        pipeline.score_threshold = 0.0


def test_backend_errors_name_the_way_out(tiny_checkpoint, tmp_path) -> None:
    with pytest.raises(BackendError, match="ws3d export"):
        Pipeline.load(tiny_checkpoint, backend="onnxruntime")
    with pytest.raises(BackendError, match="backend must be one of"):
        Pipeline.load(tiny_checkpoint, backend="openvino")
    with pytest.raises(BackendError, match="does not exist"):
        Pipeline.load(tmp_path / "nothing", backend="torch")
    with pytest.raises(BackendError, match="not an exported model directory"):
        Pipeline.load(tmp_path, backend="onnxruntime")


def test_six_camera_ring_sees_most_of_the_sweep(pipeline: Pipeline) -> None:
    from ws3d_ros.sim.rig import SimConfig, Simulator

    frame = Simulator(SimConfig(frames=1, lidar_beams=32, cameras=6, seed=2)).frame(0).to_frame()
    assert len(frame.views) == 6
    result = pipeline(frame)
    one = dataclasses.replace(frame, views=frame.views[:1])
    single = pipeline(one)
    # The ring covers far more of the 360-degree sweep than one camera does.
    assert result.in_fov.mean() > 2 * single.in_fov.mean()
    assert result.in_fov.mean() > 0.5
    missing = dataclasses.replace(
        frame, views=[dataclasses.replace(v, image=None) if k % 2 else v
                      for k, v in enumerate(frame.views)]
    )  # fmt: skip
    partial = pipeline(missing)
    assert len(partial.missing_cameras) == 3
    assert single.in_fov.mean() < partial.in_fov.mean() < result.in_fov.mean()


def test_from_config_picks_trained_or_zero_shot(tiny_checkpoint, tiny_config) -> None:
    trained = Pipeline.from_config(model=tiny_checkpoint, backend="torch", classes=["road"])
    assert trained.mode == "fusion" and trained.backend.has_net
    zero = Pipeline.from_config(tiny_config, classes=["road", "car"])
    assert zero.mode == "zero_shot" and not zero.backend.has_net
    with pytest.raises(Exception, match="needs a trained model"):
        Pipeline.from_config(tiny_config, mode="fusion")
