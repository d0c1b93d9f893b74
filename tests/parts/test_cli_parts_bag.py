"""``ws3d parts`` end to end on a bag: part studio chairs written as sweeps with an
8-camera ring, the command run as a user types it with the rendered 2D models plugged in
through its ``--segmenter`` registry, and its labelled bag, PNGs and part mIoU checked.

The rendered models read the simulator's per-view segment maps of each sweep (a real bag
has none, so they are registered by the test, not shipped as a user option); everything
else (bag reading, multi-view frames, calibration from /tf_static + camera_info, the
object selection by class, the pipeline, the output bag) is the command's own path.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ws3d_ros.cli import parts as parts_cli
from ws3d_ros.cli.main import main
from ws3d_ros.data.bag import BagReader, BagWriter
from ws3d_ros.errors import Ws3dError
from ws3d_ros.msg.image import array_to_image
from ws3d_ros.msg.kit import rosbags_kit
from ws3d_ros.msg.pointcloud2 import array_to_cloud, cloud_to_array, structured
from ws3d_ros.output_dirs import MARKER
from ws3d_ros.parts.metrics import PartScores
from ws3d_ros.parts.pipeline import ZeroPS
from ws3d_ros.parts.rendered import RenderedDetector, RenderedSegmenter, noise_level
from ws3d_ros.sim.bagwrite import _transform_stamped
from ws3d_ros.sim.classes import INDOOR_CLASSES, write_classes
from ws3d_ros.sim.parts import PART_CLASSES, render_object

KIND = "chair"
SEEDS = (0, 1, 2)
STAMP0 = 1_000_000_000
PERIOD = 100_000_000
PARTS = ("back", "leg", "seat")  # not the studio's order: labels must follow the names
NO_PART = 65535
CLASS_ID = {c.name: c.id for c in INDOOR_CLASSES}


def _floor(rng: np.random.Generator, n: int = 400) -> np.ndarray:
    """Floor points on a ring around the object (class floor, no instance, no part)."""
    a = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(0.8, 2.5, n)
    return np.stack([r * np.cos(a), r * np.sin(a), np.zeros(n)], axis=1).astype(np.float32)


def _write_bag(path, objects) -> None:
    """One sweep per object (object frame = ``lidar``), its views as /camera/camK/*, and
    part ground truth as ``part`` / ``part_instance`` fields of /lidar/labels."""
    kit = rosbags_kit()
    views = objects[0].views  # the studio ring depends on the kind only
    cams = [dataclasses.replace(v.camera, frame_id=f"cam{k}_optical") for k, v in enumerate(views)]
    rng = np.random.default_rng(7)
    with BagWriter(path) as bag:
        bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", latched=True)
        bag.add_topic("/lidar/points", "sensor_msgs/msg/PointCloud2")
        bag.add_topic("/lidar/labels", "sensor_msgs/msg/PointCloud2")
        for k in range(len(cams)):
            bag.add_topic(f"/camera/cam{k}/image_raw", "sensor_msgs/msg/Image")
            bag.add_topic(f"/camera/cam{k}/camera_info", "sensor_msgs/msg/CameraInfo")
        statics = [
            _transform_stamped(kit, "lidar", cam.frame_id, v.T_cam_from_lidar.inverse(), STAMP0)
            for cam, v in zip(cams, views, strict=True)
        ]
        bag.write("/tf_static", STAMP0, kit.make("tf2_msgs/msg/TFMessage", transforms=statics))
        for i, obj in enumerate(objects):
            stamp = STAMP0 + i * PERIOD
            # The last sweep holds a second chair (a copy of the points: the studio renders
            # one object), so part instances must stay apart across objects of a sweep.
            copies = 2 if i == len(objects) - 1 else 1
            floor = _floor(rng)
            xyz = np.concatenate([obj.xyz] * copies + [floor])
            n_obj, n = len(obj.xyz), copies * len(obj.xyz) + len(floor)
            label = np.full(n, CLASS_ID["floor"], np.uint16)
            label[: copies * n_obj] = CLASS_ID["chair"]
            instance = np.zeros(n, np.uint32)
            part = np.full(n, NO_PART, np.uint16)
            part_instance = np.zeros(n, np.uint32)
            for c in range(copies):
                at = slice(c * n_obj, (c + 1) * n_obj)
                instance[at] = 3 + i + 10 * c
                part[at] = np.where(obj.part_class >= 0, obj.part_class, NO_PART)
                part_instance[at] = obj.part_instance
            points = structured(
                x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], intensity=np.full(n, 0.5, np.float32)
            )
            gt = structured(label=label, instance=instance, part=part, part_instance=part_instance)
            bag.write(
                "/lidar/points",
                stamp,
                array_to_cloud(points, frame_id="lidar", stamp_ns=stamp, kit=kit),
            )
            bag.write(
                "/lidar/labels",
                stamp,
                array_to_cloud(gt, frame_id="lidar", stamp_ns=stamp, kit=kit),
            )
            for k, (cam, v) in enumerate(zip(cams, obj.views, strict=True)):
                info = cam.to_camera_info(stamp_ns=stamp, kit=kit)
                bag.write(f"/camera/cam{k}/camera_info", stamp, info)
                image = array_to_image(
                    v.image, "rgb8", frame_id=cam.frame_id, stamp_ns=stamp, kit=kit
                )
                bag.write(f"/camera/cam{k}/image_raw", stamp, image)
    write_classes(path / "classes.yaml", INDOOR_CLASSES)


def _rendered_factory(by_stamp: dict, level: str, seen: list):
    """A ``--segmenter`` factory: the studio's rendered models for each sweep's views."""
    mask_noise, box_noise = noise_level(level)

    def factory(args):
        def for_frame(frame, views):
            obj = by_stamp[frame.stamp_ns]
            order = [int(v.name.removeprefix("cam")) for v in views]
            # The views the command read from the bag are the studio's, image for image.
            for k, v in zip(order, views, strict=True):
                assert np.array_equal(v.image, obj.views[k].image)
            seen.append((frame.index, len(views)))
            maps = [obj.segment_maps[k] for k in order]
            return (
                RenderedSegmenter(maps, mask_noise, seed=frame.index),
                RenderedDetector(maps, obj.segment_class, box_noise, seed=frame.index),
            )

        return for_frame

    return factory


def _read_clouds(bag, topic: str) -> list[np.ndarray]:
    with BagReader(bag) as reader:
        return [cloud_to_array(m).reshape(-1) for _, _, m in reader.messages([topic])]


def _run(*argv: str) -> int:
    return main(["parts", *argv])


@pytest.fixture(scope="module")
def objects():
    return [render_object(KIND, s) for s in SEEDS]


@pytest.mark.parametrize("level", ["0", "low"])
def test_parts_on_a_bag_end_to_end(tmp_path, monkeypatch, capsys, objects, level) -> None:
    bag, out = tmp_path / "chairs", tmp_path / "parts_out"
    _write_bag(bag, objects)
    by_stamp = {STAMP0 + i * PERIOD: obj for i, obj in enumerate(objects)}
    seen: list = []
    monkeypatch.setitem(parts_cli.SEGMENTERS, "rendered", _rendered_factory(by_stamp, level, seen))
    argv = ["--bag", str(bag), "--object-classes", "chair", "--parts", ",".join(PARTS)]
    argv += ["--out", str(out), "--segmenter", "rendered"]
    assert _run(*argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == len(SEEDS) and seen == [(i, 8) for i in range(len(SEEDS))]

    # The labelled bag: every input topic with its message count, plus /parts/points.
    with BagReader(bag) as r_in, BagReader(out / "bag") as r_out:
        counts_in = {t: i.count for t, i in r_in.topics.items()}
        counts_out = {t: i.count for t, i in r_out.topics.items()}
    assert counts_out == {**counts_in, parts_cli.POINTS_TOPIC: len(SEEDS)}
    sweeps = _read_clouds(bag, "/lidar/points")
    truth = _read_clouds(bag, "/lidar/labels")
    labelled = _read_clouds(out / "bag", parts_cli.POINTS_TOPIC)
    assert len(labelled) == len(sweeps) == len(SEEDS)
    names = list(PART_CLASSES[KIND])
    to_cli = np.array([PARTS.index(n) for n in names])  # studio part index -> --parts index
    scores = PartScores()
    for sweep, gt, got in zip(sweeps, truth, labelled, strict=True):
        assert got.dtype.names == ("x", "y", "z", "label", "instance")
        assert len(got) == len(sweep)
        assert np.array_equal(got["x"], sweep["x"]) and np.array_equal(got["z"], sweep["z"])
        on_chair = gt["label"] == CLASS_ID["chair"]
        first = gt["instance"] == gt["instance"][0]  # the studio object (not the copy)
        # Only the chosen objects get parts; an instance id is one part of one label.
        assert (got["label"][~on_chair] == NO_PART).all() and (
            got["instance"][~on_chair] == 0
        ).all()
        assert ((got["label"] == NO_PART) == (got["instance"] == 0)).all()
        for i in np.unique(got["instance"][got["instance"] > 0]):
            assert len(np.unique(got["label"][got["instance"] == i])) == 1
            assert len(np.unique(gt["instance"][got["instance"] == i])) == 1  # one object
        assert set(np.unique(got["label"][got["label"] != NO_PART])) <= set(range(len(PARTS)))
        assert (got["label"][on_chair] != NO_PART).mean() > 0.8
        true = np.full(len(gt), -1, np.int64)
        has = gt["part"] != NO_PART
        true[has] = to_cli[gt["part"][has]]
        pred = np.where(got["label"] == NO_PART, -1, got["label"].astype(np.int64))
        insts = [
            (got["instance"] == i, int(pred[got["instance"] == i][0]), 1.0)
            for i in np.unique(got["instance"][got["instance"] > 0])
        ]
        scores.add(
            KIND,
            true[first],
            gt["part_instance"][first],
            pred[first],
            [(m[first], c, s) for m, c, s in insts if m[first].any()],
        )
        copy = on_chair & ~first
        if level == "0" and copy.any():  # noise-free models: the copy gets the same parts
            assert np.array_equal(got["label"][copy], got["label"][first])
            assert not set(got["instance"][copy]) & set(got["instance"][first]) - {0}
    miou = scores.miou()
    # The same models on the studio's objects in memory (no bag): the bag path loses nothing.
    direct = PartScores()
    for i, obj in enumerate(objects):
        models = _rendered_factory(by_stamp, level, [])(None)
        frame = SimpleNamespace(stamp_ns=STAMP0 + i * PERIOD, index=i)
        res = ZeroPS(*models(frame, obj.views))(obj.xyz, obj.views, PARTS)
        true_obj = np.full(len(obj.xyz), -1, np.int64)
        true_obj[obj.part_class >= 0] = to_cli[obj.part_class[obj.part_class >= 0]]
        direct.add(KIND, true_obj, obj.part_instance, res.part_label, [])
    with capsys.disabled():  # the measured numbers, in the test log
        print(
            f"\nnoise {level}: part mIoU {100 * miou:.1f} (in memory {100 * direct.miou():.1f}),"
            f" AP@50 {100 * scores.ap50():.1f}"
        )
    assert miou == pytest.approx(direct.miou(), abs=0.02)
    assert miou > {"0": 0.85, "low": 0.5}[level]

    # PNGs: one per sweep and camera, the camera's size, parts painted.
    pngs = sorted((out / "png").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}_cam{k}.png" for i in range(3) for k in range(8)]
    img = cv2.imread(str(pngs[0]))
    assert img.shape == (120, 160, 3) and (img.max(axis=2) > 140).any()
    assert json.loads((out / "parts.json").read_text()) == {
        "parts": list(PARTS),
        "objects": ["chair"],
    }
    assert (out / MARKER).is_file()

    # --out rules (ws3d_ros/output_dirs.py): no silent replace, never a foreign folder,
    # never inside the input; a previous output of `ws3d parts` is replaced on request.
    capsys.readouterr()
    before = sorted(p.name for p in out.rglob("*"))
    assert _run(*argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("x")
    assert _run(*argv[:-4], "--out", str(mine), "--segmenter", "rendered", "--overwrite") == 1
    assert "not an output of `ws3d parts`" in capsys.readouterr().err
    assert (mine / "keep.txt").read_text() == "x"
    assert _run(*argv[:-4], "--out", str(bag / "x"), "--segmenter", "rendered") == 1
    assert "inside the input" in capsys.readouterr().err
    assert sorted(p.name for p in out.rglob("*")) == before
    if level == "0":  # the replacement run costs one more pass; once is enough
        assert _run(*argv, "--overwrite", "--max-frames", "1") == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["frames"] == 1
        assert len(_read_clouds(out / "bag", parts_cli.POINTS_TOPIC)) == 1


class _FakePredictor:
    """SamPredictor's surface that ``SamSegmenter.set_view`` touches; counts encodings."""

    def __init__(self) -> None:
        self.encoded: list[int] = []

    def set_image(self, image: np.ndarray, image_format: str) -> None:
        self.encoded.append(int(image[0, 0, 0]))
        self.features, self.original_size, self.input_size = image[0, 0, 0], None, None


def test_sam_factory_forgets_embeddings_at_each_sweep(monkeypatch) -> None:
    """View 0 of the next sweep is a new image: SAM must encode it, not reuse sweep 1's."""
    from ws3d_ros.parts import clip_boxes, sam

    predictor = _FakePredictor()
    real = sam.SamSegmenter

    def fake_sam(*args, **kwargs):  # the real class around a fake predictor (no weights)
        seg = real.__new__(real)
        seg.predictor, seg._image, seg._view, seg._embeddings = predictor, None, -1, {}
        return seg

    monkeypatch.setattr(sam, "SamSegmenter", fake_sam)
    monkeypatch.setattr(clip_boxes, "ClipBoxScorer", lambda proposals, **kw: "scorer")
    ns = SimpleNamespace(
        segmenter="sam",
        sam_checkpoint=None,
        sam_model="vit_b",
        clip_model="m",
        clip_pretrained="p",
        device="cpu",
    )
    for_frame = parts_cli.build_models(ns)
    images = [np.full((4, 4, 3), v, np.uint8) for v in (10, 20)]
    for image in images:  # two sweeps, one camera each
        seg, det = for_frame(None, [])
        assert det == "scorer"
        seg.set_view(0, image)
        seg.set_view(0, image)  # same sweep: kept
    assert predictor.encoded == [10, 20]
    # Without the reset the second sweep's view 0 would have reused sweep 1's embedding.
    seg.set_view(0, images[0])
    assert predictor.encoded == [10, 20]
    seg.forget_views()
    seg.set_view(0, images[0])
    assert predictor.encoded == [10, 20, 10]
    ns.segmenter = "nope"
    with pytest.raises(Ws3dError, match=r"--segmenter must be one of \['sam'\]"):
        parts_cli.build_models(ns)
