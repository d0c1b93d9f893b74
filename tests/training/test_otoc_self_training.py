"""OTOC self-training end to end on a tiny sim bag (rounds logged, pseudo labels used),
the WS3D++ + relation losses inside the trainer, a clicks file as training labels, and
the pseudo-label helpers on a trained network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.training.conftest import TINY
from training.config import TrainConfig
from training.otoc.self_training import (
    CANDIDATES_SUFFIX,
    FramePseudo,
    dense_labels,
    otoc_instances,
    point_candidates,
    pseudo_label_stats,
    release_ground_things,
    resolve_thing_radius,
    round_value,
    run_self_training,
    thing_click_mask,
)
from ws3d_ros.models.config import ConfigError


def test_round_value_per_round_lists() -> None:
    """otoc.keep_fraction / otoc.unary_weight: a number for every round, or a list
    indexed by round 1..R whose last entry repeats."""
    assert round_value(0.6, 1) == round_value(0.6, 3) == 0.6
    ramp = [0.3, 0.5, 0.7]
    assert [round_value(ramp, r) for r in (1, 2, 3, 4)] == [0.3, 0.5, 0.7, 0.7]
    assert [round_value([0.0, 0.5], r) for r in (1, 2, 3)] == [0.0, 0.5, 0.5]


def test_pseudo_label_stats() -> None:
    gt = np.array([0, 0, 1, 1, 65535], np.uint16)
    pseudo = np.array([0, 65535, 1, 0, 1], np.uint16)
    s = pseudo_label_stats(pseudo, gt, 2)
    assert s["coverage"] == 0.75 and abs(s["accuracy"] - 2 / 3) < 1e-9
    assert abs(s["miou"] - (0.5 + 0.5) / 2) < 1e-9
    # Scene mIoU: the unlabelled class-0 point is a miss: IoU 0 = 1/3, IoU 1 = 1/2.
    assert abs(s["scene_miou"] - (1 / 3 + 1 / 2) / 2) < 1e-9


def test_dense_labels_are_the_argmax_field_before_selection() -> None:
    """Every supervoxel's argmax on all its points, whatever its confidence; clicks win."""
    from types import SimpleNamespace

    graph = SimpleNamespace(point_to_sv=np.array([0, 0, 1, 1, -1]))
    probs = np.array([[0.4, 0.6], [0.9, 0.1]], np.float32)
    fp = FramePseudo(np.full(5, 65535, np.uint16), graph, probs, np.zeros((5, 3)))
    clicks = np.array([0, 65535, 65535, 65535, 65535])
    assert dense_labels(fp, clicks).tolist() == [0, 1, 0, 0, 65535]
    # A supervoxel left without a label (an all-zero row: otoc.click_regions) stays
    # unlabelled in the field.
    fp.probs = np.array([[0.4, 0.6], [0.0, 0.0]], np.float32)
    assert dense_labels(fp, clicks).tolist() == [0, 1, 65535, 65535, 65535]


def test_thing_click_mask_keeps_things_near_their_clicks() -> None:
    """One click per object: a thing class is allowed only within the radius of one of
    its clicks in the sweep (none clicked: nowhere); stuff classes everywhere."""
    centroids = np.array([[0.0, 0, 0], [3.0, 0, 0], [20.0, 0, 0]])
    xyz = np.array([[0.5, 0, 0], [19.0, 0, 0], [50.0, 0, 0]])
    clicks = np.array([2, 0, 65535])  # class 2 (thing) clicked near sv 0, stuff 0 at sv 2
    m = thing_click_mask(centroids, xyz, clicks, [1, 2], 3, radius=4.0)
    assert m[:, 0].all()  # stuff
    assert not m[:, 1].any()  # a thing class without clicks in this sweep
    assert m[:, 2].tolist() == [True, True, False]
    m = thing_click_mask(centroids, xyz, clicks, [2], 3, radius=1.0)
    assert m[:, 2].tolist() == [True, False, False]


def test_thing_click_mask_per_class_radius_is_horizontal() -> None:
    """A radius per class (inf: no limit), measured in x-y: a supervoxel 1.5 m above a
    pedestrian's click (its head) is within the pedestrian's 1 m; one 1.5 m beside it
    is not, while the car's 5 m reaches it."""
    centroids = np.array([[0.0, 0, 1.5], [1.5, 0, 0], [40.0, 0, 0]])
    xyz = np.array([[0.0, 0, 0], [0.2, 0, 0], [0.0, 30, 0]])
    clicks = np.array([1, 2, 3])  # pedestrian (1) and car (2) near the origin, truck (3)
    radius = np.array([np.inf, 1.0, 5.0, np.inf])
    m = thing_click_mask(centroids, xyz, clicks, [1, 2, 3], 4, radius=radius)
    assert m[:, 0].all()
    assert m[:, 1].tolist() == [True, False, False]
    assert m[:, 2].tolist() == [True, True, False]
    assert m[:, 3].all()  # no limit, but clicked in this sweep


def test_thing_click_mask_limits_a_stuff_class_given_a_radius() -> None:
    """A stuff class is free unless it has a finite radius (a pole: every pole region
    carries a click); then it behaves as a thing class, absent without clicks."""
    centroids = np.array([[0.0, 0, 0], [3.0, 0, 0]])
    xyz = np.array([[0.0, 0, 0], [0.1, 0, 0]])
    clicks = np.array([0, 1])  # a pole (0) and a car (1) clicked at the origin
    radius = np.array([2.5, 6.0, np.inf])  # pole, car, building (stuff, unlimited)
    m = thing_click_mask(centroids, xyz, clicks, [1], 3, radius=radius)
    assert m[:, 0].tolist() == [True, False]
    assert m[:, 1].all() and m[:, 2].all()
    m = thing_click_mask(centroids, xyz, np.array([1, 1]), [1], 3, radius=radius)
    assert not m[:, 0].any()  # no pole clicked in this sweep: no pole anywhere
    assert m[:, 2].all()
    # one number bounds the thing classes only: the pole stays free
    m = thing_click_mask(centroids, xyz, np.array([1, 1]), [1], 3, radius=2.5)
    assert m[:, 0].all() and m[:, 2].all()


def test_resolve_thing_radius() -> None:
    classes = ["road", "car", "pedestrian"]
    assert resolve_thing_radius(0.0, classes, [1, 2]) is None
    assert resolve_thing_radius({}, classes, [1, 2]) is None
    assert resolve_thing_radius(3.0, classes, [1, 2]).tolist() == [np.inf, 3.0, 3.0]
    got = resolve_thing_radius({"pedestrian": 1.0}, classes, [1, 2])
    assert got.tolist() == [np.inf, np.inf, 1.0]
    with pytest.raises(ConfigError, match="bicycle"):
        resolve_thing_radius({"bicycle": 1.0}, classes, [1, 2])
    # a compact stuff class (every region clicked) may take one too
    assert resolve_thing_radius({"road": 1.0}, classes, [1, 2]).tolist() == [1.0, np.inf, np.inf]
    with pytest.raises(ConfigError, match="> 0"):
        resolve_thing_radius({"car": 0}, classes, [1, 2])


def test_point_candidates_broadcast_the_thing_mask() -> None:
    from types import SimpleNamespace

    graph = SimpleNamespace(point_to_sv=np.array([0, 1, 1, -1]))
    allowed = np.array([[True, False, True], [True, True, False]])
    fp = FramePseudo(np.full(4, 65535, np.uint16), graph, np.zeros((2, 3)), np.zeros((4, 3)))
    assert point_candidates(fp) is None
    fp.allowed = allowed
    cand = point_candidates(fp)
    assert cand.tolist() == [[True, False, True], [True, True, False], [True, True, False],
                             [True, True, True]]  # fmt: skip


def test_point_candidates_keep_the_most_probable_classes_up_to_a_mass() -> None:
    from types import SimpleNamespace

    graph = SimpleNamespace(point_to_sv=np.array([0, 1, 2, -1]))
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.0, 0.0, 0.0]])
    fp = FramePseudo(np.full(4, 65535, np.uint16), graph, probs, np.zeros((4, 3)))
    assert point_candidates(fp, 1.0) is None  # nothing restricts: no sets to write
    # 0.8 of the mass: the top two of supervoxel 0 (0.6 + 0.3); no mass: every class
    top = point_candidates(fp, 0.8)
    assert top.tolist() == [[True, True, False], [True, True, False], [True, True, True],
                            [True, True, True]]  # fmt: skip
    # half the mass: the top class alone
    assert point_candidates(fp, 0.5)[:2].tolist() == [[True, False, False], [False, True, False]]
    # within the thing radius's classes, the mass renormalised over them
    fp.allowed = np.array([[True, True, True], [True, False, True], [False, True, True]])
    cand = point_candidates(fp, 0.7)
    # sv 1: class 1 ruled out; 0.2 / 0.3 of the rest on class 0 is < 0.7, so class 2 joins
    assert cand.tolist() == [[True, True, False], [True, False, True], [False, True, True],
                             [True, True, True]]  # fmt: skip
    assert point_candidates(fp, 0.6)[1].tolist() == [True, False, False]
    assert (point_candidates(fp, 1.0) == point_candidates(fp)).all()


def test_release_ground_things_moves_ground_level_thing_labels_to_candidates() -> None:
    """Thing-labelled points at ground level leave the pseudo labels and keep "their thing
    or a ground class" as candidates; clicked points, stuff and raised points stay."""
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    n = 300
    xyz = np.c_[rng.uniform(0, 4, (n, 2)), np.zeros(n)]
    xyz[200:, 2] = rng.uniform(0.5, 1.5, 100)  # raised: the body of the object
    labels = np.full(n, 0, np.uint16)  # class 0 road, 1 sidewalk, 2 building, 3 car
    labels[150:] = 3  # 150-199: car label on the ground, 200-299: car body
    labels[10] = 65535
    clicks = np.full(n, -1)
    clicks[160] = 3
    graph = SimpleNamespace(point_to_sv=np.zeros(n, np.int64))
    fp = FramePseudo(labels.copy(), graph, np.zeros((1, 4)), np.zeros((n, 3)))
    cand, moved = release_ground_things(fp, None, xyz, clicks, [3], [0, 1], 4, height=0.05)
    assert moved == 49
    gone = np.flatnonzero(fp.labels != labels)
    assert gone.tolist() == [k for k in range(150, 200) if k != 160]
    assert (fp.labels[gone] == 65535).all() and fp.labels[160] == 3
    assert cand[gone].tolist() == [[True, True, False, True]] * 49
    assert cand[np.setdiff1d(np.arange(n), gone)].all()  # created for them alone
    # Existing candidates: only the moved rows change. No ground classes: every non-thing.
    fp2 = FramePseudo(labels.copy(), graph, np.zeros((1, 4)), np.zeros((n, 3)))
    base = np.zeros((n, 4), bool)
    base[:, 2] = True
    cand2, moved2 = release_ground_things(fp2, base.copy(), xyz, clicks, [3], [], 4, height=0.05)
    assert moved2 == 49 and cand2[gone].tolist() == [[True, True, True, True]] * 49
    np.testing.assert_array_equal(np.delete(cand2, gone, 0), np.delete(base, gone, 0))
    # Off (height 0): nothing moves, the candidates pass through.
    fp3 = FramePseudo(labels.copy(), graph, np.zeros((1, 4)), np.zeros((n, 3)))
    assert release_ground_things(fp3, None, xyz, clicks, [3], [0, 1], 4, height=0.0) == (None, 0)
    np.testing.assert_array_equal(fp3.labels, labels)


def test_otoc_instances_dual_set() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.2, (30, 3))
    xyz = np.concatenate([a, a + np.array([5.0, 0, 0])])
    ids = otoc_instances(xyz, np.zeros_like(xyz), np.full(60, 3), [3], min_points=5)
    assert len(set(ids[:30].tolist())) == 1 and ids[0] != ids[30] and ids.min() > 0


@pytest.mark.parametrize("method", ["crf", "attention"])
def test_self_training_rounds(tiny_bag: Path, cache_root: Path, tmp_path: Path,
                              method: str) -> None:  # fmt: skip
    cfg = TrainConfig.from_dict(TINY).with_overrides({
        "data.cache_dir": str(cache_root),
        "labels.mode": "clicks",
        "train.steps": 4,
        "losses.relation": {"weight": 0.5, "dim": 8, "hidden": 16},
        "losses.boundary": {"weight": 0.3},
        "losses.region_energy": {"weight": 0.5},
        "losses.region_contrast": {"weight": 0.2},
        "losses.text_align": {"weight": 0.1},
        "otoc.method": method,
        "otoc.steps_per_round": 2,
        "otoc.confidence": 0.3,
        "otoc.thing_radius": {"car": 6.0, "pedestrian": 1.0} if method == "crf" else 5.0,
        "losses.partial_label": {"weight": 1.0},
        "otoc.click_regions": method == "crf",
        "otoc.ground_classes": ["road", "sidewalk", "terrain"] if method == "crf" else [],
        "otoc.finetune_lr_scale": 0.5,
        "otoc.last_round_relation": method == "crf",
        "otoc.candidate_mass": 1.0 if method == "crf" else [0.9, 1.0],
        "otoc.thing_ground_height": 0.05 if method == "crf" else 0.0,
    })  # fmt: skip
    hist = run_self_training(cfg, [tiny_bag], tmp_path / "run", rounds=1)
    assert [h["round"] for h in hist] == [0, 1]
    assert hist[1]["pseudo_coverage"] is not None and 0 < hist[1]["pseudo_coverage"] <= 1
    assert 0 <= hist[1]["pseudo_miou"] <= 1
    assert 0 <= hist[1]["dense_miou"] <= 1 and 0 <= hist[1]["dense_accuracy"] <= 1
    assert hist[1]["pseudo_scene_miou"] <= hist[1]["pseudo_miou"] + 1e-9
    assert (tmp_path / "run" / "rounds.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "run" / "rounds.json").read_text())
    assert saved[1]["round"] == 1
    pseudo = sorted((tmp_path / "run" / "round1" / "pseudo").glob("*.npy"))
    assert pseudo
    # The thing radius leaves candidate sets for the trainer's partial-label loss.
    labels = [p for p in pseudo if not p.name.endswith(CANDIDATES_SUFFIX)]
    for p in labels:
        cand = np.load(p.with_name(p.stem + CANDIDATES_SUFFIX))
        assert cand.dtype == np.uint8 and cand.shape == (len(np.load(p)), 2)
    assert hist[1]["candidate_points"] > 0
    assert 0.5 < hist[1]["candidate_accuracy"] <= 1
    assert hist[1]["candidate_mass"] == (1.0 if method == "crf" else 0.9)
    assert hist[1]["ground_thing_points"] >= 0
    if method != "crf":
        assert hist[1]["ground_thing_points"] == 0  # off
    h1 = json.loads((tmp_path / "run" / "round1" / "history.json").read_text())
    assert any(h.get("loss_partial_label", 0) > 0 for h in h1)
    # otoc.last_round_relation: false leaves the relation loss out of the last round only.
    assert any("loss_relation" in h for h in h1) == (method == "crf")
    h0 = json.loads((tmp_path / "run" / "round0" / "history.json").read_text())
    keys = {k for h in h0 for k in h}
    for name in ("relation", "boundary", "region_energy", "region_contrast", "text_align",
                 "partial_label"):  # fmt: skip
        assert f"loss_{name}" in keys, name
    # Round 1 trained on the pseudo labels and started from round 0's weights.
    conf1 = (tmp_path / "run" / "round1" / "config.yaml").read_text()
    assert "pseudo_dir" in conf1 and "round0/model.pt" in conf1
    import yaml

    lr0 = yaml.safe_load((tmp_path / "run" / "round0" / "config.yaml").read_text())["optim"]["lr"]
    assert yaml.safe_load(conf1)["optim"]["lr"] == pytest.approx(0.5 * lr0)


def test_clicks_file_labels_the_training_frames(tiny_bag: Path, cache_root: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    from training.cache import FrameCache
    from training.labels import apply_label_config
    from ws3d_ros.cli.clicks import class_names_of, derive_from_labels
    from ws3d_ros.data.clicks import write_clicks

    clicks = derive_from_labels(tiny_bag, 1)
    path = write_clicks(tmp_path / "c.jsonl", clicks)
    index = sorted(cache_root.glob("*/index.json"))[0]
    cache = FrameCache.open(index.parent)
    f = cache.load(cache.records[0])
    apply_label_config(f, {"clicks_file": str(path)}, class_names_of(tiny_bag))
    mine = [c for c in clicks if c.stamp_ns == cache.records[0].stamp_ns]
    got = np.flatnonzero(f.train_labels != 65535)
    # Every click inside the model's point range labels its point with its class.
    assert 0 < len(got) <= len(mine)
    assert np.all(f.train_labels[got] == f.labels[got])


def test_ws3d_train_runs_otoc_rounds(
    tiny_bag: Path, cache_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ws3d train` with otoc.rounds > 0 runs the rounds, logs each round's pseudo-label
    quality and leaves RUN/model.pt; --resume keeps the finished rounds."""
    import yaml

    from ws3d_ros.cli.main import main as cli_main

    cfg = TrainConfig.from_dict(TINY).with_overrides({
        "labels.mode": "clicks",
        "losses.text_ce.class_balance": 1.0,
        "losses.relation": {"weight": 0.5, "dim": 8, "hidden": 16},
        "otoc.rounds": 1,
        "otoc.steps_per_round": 2,
    })  # fmt: skip
    path = tmp_path / "otoc_tiny.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    run = tmp_path / "run"
    args = ["train", "--config", str(path), "--bags", str(tiny_bag), "--out", str(run),
            "--cache-dir", str(cache_root), "--steps", "3", "--quiet"]  # fmt: skip
    assert cli_main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    assert 0 < summary["rounds"][1]["pseudo_coverage"] <= 1
    assert (run / "model.pt").is_file() and (run / "round1" / "model.pt").is_file()
    rounds = json.loads((run / "rounds.json").read_text())
    assert rounds[1]["unary_weight"] == 0.5 and len(rounds[1]["thresholds"]) > 0
    stamp = (run / "round1" / "model.pt").stat().st_mtime_ns
    assert cli_main([*args, "--resume"]) == 0
    assert (run / "round1" / "model.pt").stat().st_mtime_ns == stamp  # nothing retrained


def test_pseudo_candidates_load_into_the_training_frame(tmp_path: Path) -> None:
    """labels.pseudo_dir's <frame>.candidates.npy becomes frame.train_candidates; a file
    that does not fit the frame and vocabulary is a clear error."""
    from training.cache import CachedFrame
    from training.labels import apply_label_config
    from training.otoc.self_training import safe_key
    from ws3d_ros.errors import Ws3dError

    rng = np.random.default_rng(0)
    n = 500
    pts = np.zeros(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4")])
    pts["x"], pts["y"] = rng.uniform(-10, 10, n), rng.uniform(-10, 10, n)
    f = CachedFrame(
        key="bag:1700000000000000000", points=pts, clip_feats=np.zeros((0, 4), np.float32),
        clip_index=np.zeros(n, np.int64), view_of=np.full(n, -1, np.int8),
        segments=np.arange(n, dtype=np.int32),
    )  # fmt: skip
    classes = [f"c{k}" for k in range(13)]
    np.save(tmp_path / f"{safe_key(f.key)}.npy", np.full(len(f), 65535, np.uint16))
    cand = np.packbits(np.eye(13, dtype=bool)[np.arange(len(f)) % 13], axis=1)
    np.save(tmp_path / f"{safe_key(f.key)}{CANDIDATES_SUFFIX}", cand)
    # Round 0: candidates from the clicks themselves, per point (thing radius).
    clicks = np.full(len(f), 65535, np.uint16)
    clicks[0] = 8
    f.train_labels = clicks.copy()
    radius = np.full(13, np.inf)
    radius[8] = 2.0
    apply_label_config(f, {}, classes, thing_ids=[8, 10], thing_radius=radius)
    allowed = np.unpackbits(f.train_candidates, axis=1, count=13).astype(bool)
    near = np.hypot(*(f.xyz[:, :2] - f.xyz[0, :2]).T) <= 2.0
    np.testing.assert_array_equal(allowed[:, 8], near)
    assert not allowed[:, 10].any() and allowed[:, [0, 9, 11, 12]].all()
    # otoc.thing_ground_height: a thing click spread over its supervoxel leaves the
    # supervoxel's ground-level points unlabelled (not the clicked point itself).
    f.segments = np.zeros(len(f), np.int32)
    f.points["z"][:] = 0.0
    f.points["z"][250:] = 1.0
    f.train_labels = clicks.copy()
    apply_label_config(f, {"expand_to_segments": True}, classes, thing_ids=[8, 10],
                            thing_ground_height=0.05)  # fmt: skip
    assert f.train_labels[0] == 8 and (f.train_labels[250:] == 8).all()
    assert (f.train_labels[1:250] == 65535).all()
    f.train_labels = clicks.copy()
    apply_label_config(f, {"expand_to_segments": True}, classes, thing_ids=[8, 10])
    assert (f.train_labels == 8).all()  # off by default: the whole supervoxel
    f.segments = np.arange(n, dtype=np.int32)
    f.points["z"][:] = 0.0
    # A pseudo-label directory's candidate file replaces them.
    f.train_labels = clicks.copy()
    apply_label_config(f, {"pseudo_dir": str(tmp_path)}, classes, thing_ids=[8, 10],
                            thing_radius=radius)  # fmt: skip
    np.testing.assert_array_equal(f.train_candidates, cand)
    np.save(tmp_path / f"{safe_key(f.key)}{CANDIDATES_SUFFIX}", cand[:, :1])
    with pytest.raises(Ws3dError, match="candidate"):
        apply_label_config(f, {"pseudo_dir": str(tmp_path)}, classes)


def test_bad_otoc_class_names_fail_before_round_0(tmp_path: Path) -> None:
    """A thing radius or ground class naming no class of the vocabulary is a ConfigError
    before any training or caching starts."""
    classes = ["road", "sidewalk", "terrain", "car", "pedestrian"]
    things = ["car", "pedestrian"]
    for over, match in (
        ({"otoc.thing_radius": {"bicycle": 1.0}}, "bicycle"),
        ({"otoc.ground_classes": ["asphalt"]}, "asphalt"),
    ):
        cfg = TrainConfig.from_dict(TINY).with_overrides({"labels.mode": "clicks", **over})
        with pytest.raises(ConfigError, match=match):
            run_self_training(cfg, [tmp_path / "no_bag"], tmp_path / "run", rounds=1,
                              classes=classes, things=things)  # fmt: skip
        assert not (tmp_path / "run" / "round0").exists()
