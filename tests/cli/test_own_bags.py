"""``ws3d info / infer / eval / train`` on bags in the dataset converters' layouts, through
the sensor flags (issue 22): kitti2bag names with a KITTI calibration file and
SemanticKITTI sidecars, nuScenes names with six compressed cameras and 0-255 intensity."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.converters import SIM_TO_SK_CLASS, kitti_layout, nuscenes_layout
from tests.training.conftest import TINY
from ws3d_ros.cli.main import main

NUSC_CAMERAS = ("FRONT", "FRONT_LEFT", "FRONT_RIGHT", "BACK", "BACK_LEFT", "BACK_RIGHT")
SK_MAP = Path(__file__).resolve().parents[2] / "config" / "label_maps" / "semantic_kitti.yaml"


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("own_bags")
    kitti = kitti_layout(root / "kitti", tf_static=False, camera_info=False, crop=(1224, 370))
    nusc = nuscenes_layout(root / "nusc")
    return {"root": root, "kitti": kitti, "nusc": nusc}


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def _error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ws3d {command}: error: "), lines
    return lines[0]


def test_info_kitti_layout_with_a_calibration_file(bags, capsys) -> None:
    k = bags["kitti"]
    flags = ["--calibration", str(k["calib"]), "--label-sidecars", str(k["labels"]),
             "--label-map", str(SK_MAP)]  # fmt: skip
    assert main(["info", str(k["bag"]), "--json", *flags]) == 0
    info = _json(capsys)
    s = info["streams"]
    assert s["points"] == "/kitti/velo/pointcloud"
    assert s["cameras"] == {"camera_color_left": "/kitti/camera_color_left/image_raw"}
    assert s["calibration_file"].endswith("(kitti)")
    assert s["intensity_range"] == [0.0, 1.0]
    # No camera_info, no /tf_static: the calibration file's camera at the image's size.
    assert info["calibration"]["camera_color_left"].startswith("1224x370 ")
    assert info["frames"]["frames_with_all_cameras"] == 2
    assert "--points /kitti/velo/pointcloud" in info["override_flags"]
    # The calibration file is also read by `ws3d info FILE`, whatever its name.
    assert main(["info", str(k["calib"])]) == 0
    assert "kitti_calib" in capsys.readouterr().out
    # A wrong topic flag is one line naming the topics.
    assert main(["info", str(k["bag"]), "--points", "/velodyne_points"]) == 1
    assert "/kitti/velo/pointcloud" in _error(capsys, "info")


def test_pipeline_reads_a_0_255_cloud_as_its_0_1_twin(tiny_checkpoint, sim_frame) -> None:
    from dataclasses import replace

    from ws3d_ros.runtime.pipeline import Pipeline

    pipe = Pipeline.load(tiny_checkpoint, backend="torch", frame_path="numpy")
    pipe.set_vocabulary(["road", "car", "building", "vegetation"], ["car"])
    ref = pipe(sim_frame)
    points = sim_frame.points.copy()
    points["intensity"] = points["intensity"] * 255.0
    scaled = replace(sim_frame, points=points)
    other = Pipeline.load(tiny_checkpoint, backend="torch", frame_path="numpy")
    other.set_vocabulary(["road", "car", "building", "vegetation"], ["car"])
    np.testing.assert_array_equal(other(scaled).label, ref.label)
    assert other.intensity.source_for(scaled)[0] == (0.0, 255.0)


def test_infer_nuscenes_compressed_cameras_overlays_and_reuse_as_labels(
    bags, tiny_checkpoint, capsys
) -> None:
    n, root = bags["nusc"], bags["root"]
    images = ",".join(f"/CAM_{c}/image_raw/compressed" for c in NUSC_CAMERAS)
    out, pngs = root / "nusc_labelled", root / "overlays"
    code = main(["infer", "--bag", str(n["bag"]), "--model", str(tiny_checkpoint),
                 "--backend", "torch", "--out", str(out), "--quiet", "--images", images,
                 "--points", "/LIDAR_TOP", "--overlay", str(pngs)])  # fmt: skip
    assert code == 0
    summary = _json(capsys)
    stats = summary["frame_stats"]
    assert summary["frames"] == 2 and stats["frames_with_all_cameras"] == 2
    assert stats["intensity"]["input_range"] == [0.0, 255.0]
    assert stats["intensity"]["model_range"] == [0.0, 1.0]
    assert sorted(p.name for p in pngs.iterdir()) == sorted(
        f"CAM_{c}"
        for c in ("FRONT", "FRONT_LEFT", "FRONT_RIGHT", "BACK", "BACK_LEFT", "BACK_RIGHT")
    )
    assert stats["overlays"] == 12 and len(list(pngs.rglob("*.png"))) == 12
    # The labelled bag: discovery still finds the LiDAR, never /panoptic/points.
    assert main(["info", str(out), "--json", "--no-frames"]) == 0
    assert _json(capsys)["streams"]["points"] == "/LIDAR_TOP"
    # ws3d infer's output is a labels source: scoring it against itself is perfect.
    report = root / "self_eval"
    assert main(["eval", "--bag", str(out), "--labels", "/panoptic/points", "--pred", str(out),
                 "--out", str(report), "--quiet"]) == 0  # fmt: skip
    assert _json(capsys)["all"]["acc"] == pytest.approx(1.0)


def test_eval_kitti_sidecars_through_a_learning_map(bags, tiny_checkpoint, capsys) -> None:
    k, root = bags["kitti"], bags["root"]
    common = ["eval", "--bag", str(k["bag"]), "--model", str(tiny_checkpoint),
              "--calibration", str(k["calib"]), "--quiet"]  # fmt: skip
    # Without a labels source: one line saying which formats were looked for.
    assert main([*common, "--out", str(root / "e0")]) == 1
    err = _error(capsys, "eval")
    assert "no class list" in err or "no labelled sweep" in err
    assert main([*common, "--out", str(root / "e0"), "--label-map", str(SK_MAP)]) == 1
    err = _error(capsys, "eval")
    assert "a PointCloud2 with a 'label' field" in err and "--label-sidecars" in err
    out = root / "e1"
    assert main([*common, "--out", str(out), "--label-sidecars", str(k["labels"]),
                 "--label-map", str(SK_MAP)]) == 0  # fmt: skip
    assert _json(capsys)["frames"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert "car" in json.dumps(metrics) and "bicyclist" in json.dumps(metrics)


def test_train_kitti_sidecars_and_distill_without_classes(bags, capsys) -> None:
    k, n, root = bags["kitti"], bags["nusc"], bags["root"]
    full = root / "full.yaml"
    full.write_text(yaml.safe_dump(TINY))
    code = main(["train", "--config", str(full), "--bags", str(k["bag"]), "--out",
                 str(root / "run_kitti"), "--steps", "2", "--quiet",
                 "--points", "/kitti/velo/pointcloud", "--calibration", str(k["calib"]),
                 "--label-sidecars", str(k["labels"]), "--label-map", str(SK_MAP),
                 "--supervoxel-voxel", "0.3"])  # fmt: skip
    assert code == 0
    from ws3d_ros.models.checkpoint import load_model

    loaded = load_model(root / "run_kitti" / "model.pt")
    assert loaded.meta["classes"][:3] == ["car", "bicycle", "motorcycle"]
    data = loaded.meta["train_config"]["data"]
    assert data["label_map"] == str(SK_MAP) and data["supervoxel_voxel_size"] == 0.3
    cache = next((root / "run_kitti" / "cache").glob("*/index.json"))
    index = json.loads(cache.read_text())
    assert all(r["has_labels"] for r in index["frames"])
    sample = next((root / "run_kitti" / "cache").glob("*/shard_*/*.npz"))
    labels = np.load(sample)["labels"]
    known = set(SIM_TO_SK_CLASS) | {0}
    assert set(np.unique(labels).tolist()) <= known  # learning-map ids, not raw 10/40/252
    capsys.readouterr()

    distill = copy.deepcopy(TINY)
    distill["labels"] = {"mode": "none"}
    off = {"weight": 0.0}
    distill["losses"] = {"voxel_distill": {"weight": 1.0}, "object_distill": {"weight": 0.5},
                         "text_ce": off, "contrastive": off, "teacher_distill": off,
                         "offsets": off}  # fmt: skip
    cfg = root / "distill.yaml"
    cfg.write_text(yaml.safe_dump(distill))
    code = main(["train", "--config", str(cfg), "--bags", str(n["bag"]), "--out",
                 str(root / "run_distill"), "--steps", "2", "--quiet",
                 "--intensity-range", "0,255"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert (root / "run_distill" / "model.pt").is_file()
