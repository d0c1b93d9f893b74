"""Tests of ws3d_ros.eval.metrics: IoU / PQ by hand, invariances, streaming, FOV splits."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ws3d_ros.eval.metrics import (
    UNKNOWN_LABEL,
    EvalError,
    PanopticEvaluator,
    majority_class_baseline,
)
from ws3d_ros.sim.classes import STREET_CLASSES

U = UNKNOWN_LABEL
NAMES = ["road", "sidewalk", "car"]
THING = [False, False, True]


def arr(values, dtype=np.uint16) -> np.ndarray:
    return np.asarray(values, dtype=dtype)


def hand_example() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """50 road points (30 predicted sidewalk); cars A(10), B(10), C(30).

    Prediction: A split into 6 + 4 points, B and C merged into one 40-point instance.
    """
    gl = arr([0] * 50 + [2] * 50)
    gi = arr([0] * 50 + [1] * 10 + [2] * 10 + [3] * 30, np.uint32)
    pl = arr([0] * 20 + [1] * 30 + [2] * 50)
    pi = arr([0] * 50 + [7] * 6 + [8] * 4 + [9] * 40, np.uint32)
    return gl, gi, pl, pi


def random_frame(rng: np.random.Generator, n: int = 3000, noise: float = 0.2):
    classes = STREET_CLASSES
    thing = np.array([c.thing for c in classes])
    gl = rng.integers(0, len(classes), n).astype(np.uint16)
    gl[rng.random(n) < 0.05] = U
    is_thing = thing[np.minimum(gl, len(classes) - 1)] & (gl != U)
    gi = np.where(is_thing, rng.integers(1, 6, n), 0).astype(np.uint32)
    pl = gl.copy()
    flip = rng.random(n) < noise
    pl[flip] = rng.integers(0, len(classes), int(flip.sum()))
    pl[gl == U] = rng.integers(0, len(classes), int((gl == U).sum()))
    return gl, gi, pl, gi.copy()


def street_evaluator(**kw) -> PanopticEvaluator:
    return PanopticEvaluator(
        [c.name for c in STREET_CLASSES], [c.thing for c in STREET_CLASSES], **kw
    )


# ---------------------------------------------------------------- semantic + panoptic


def test_perfect_prediction_scores_one() -> None:
    rng = np.random.default_rng(0)
    ev = street_evaluator()
    for _ in range(3):
        gl, gi, _, _ = random_frame(rng)
        # Predicted instance ids are an arbitrary relabelling of the true ones.
        pi = np.where(gi > 0, gi * 7 + 100, 0).astype(np.uint32)
        ev.add(gl, gi, gl, pi)
    r = ev.result()["all"]
    assert r["miou"] == pytest.approx(1.0)
    assert r["acc"] == pytest.approx(1.0)
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff", "pq_dagger"):
        assert r[key] == pytest.approx(1.0), key
    assert r["frames"] == 3
    assert r["points"]["ignored"] > 0 and r["points"]["predicted_unknown"] == 0
    assert all(c["fp"] == 0 and c["fn"] == 0 for c in r["per_class"].values())


def test_hand_computed_iou_and_pq() -> None:
    ev = PanopticEvaluator(NAMES, THING, min_points=1)
    ev.add(*hand_example())
    r = ev.result()
    assert r["in_fov"] is None and r["out_fov"] is None
    a = r["all"]
    assert a["confusion"] == [[20, 30, 0, 0], [0, 0, 0, 0], [0, 0, 50, 0]]
    pc = a["per_class"]
    # IoU: road 20 / (20 + 30); sidewalk only predicted -> 0; car perfect.
    assert pc["road"]["iou"] == pytest.approx(0.4)
    assert pc["sidewalk"]["iou"] == pytest.approx(0.0)
    assert pc["car"]["iou"] == pytest.approx(1.0)
    assert a["miou"] == pytest.approx(1.4 / 3)
    assert a["acc"] == pytest.approx(0.7)
    # Car: A matched by its 6-point piece (IoU 0.6), its 4-point piece is an FP;
    # the merged instance matches C (30/40) and leaves B unmatched (10/40) -> FN.
    car = pc["car"]
    assert (car["tp"], car["fp"], car["fn"]) == (2, 1, 1)
    assert car["pq"] == pytest.approx(1.35 / 3)
    assert car["sq"] == pytest.approx(0.675)
    assert car["rq"] == pytest.approx(2 / 3)
    # Road: one segment each side, IoU 0.4 <= 0.5 -> FP + FN; sidewalk: FP.
    assert (pc["road"]["tp"], pc["road"]["fp"], pc["road"]["fn"]) == (0, 1, 1)
    assert (pc["sidewalk"]["tp"], pc["sidewalk"]["fp"], pc["sidewalk"]["fn"]) == (0, 1, 0)
    assert a["pq"] == pytest.approx(0.45 / 3)
    assert a["pq_things"] == pytest.approx(0.45)
    assert a["pq_stuff"] == pytest.approx(0.0)
    assert a["sq"] == pytest.approx(0.675 / 3)
    assert a["rq"] == pytest.approx((2 / 3) / 3)
    # PQ† takes the semantic IoU for stuff: (0.4 + 0 + 0.45) / 3.
    assert a["pq_dagger"] == pytest.approx(0.85 / 3)
    json.dumps(r)  # JSON-ready, no numpy scalars or NaN


def test_min_points_ignores_small_unmatched_segments() -> None:
    gl, gi, pl, pi = hand_example()
    ev = PanopticEvaluator(NAMES, THING, min_points=5)
    ev.add(gl, gi, pl, pi)
    car = ev.result()["all"]["per_class"]["car"]
    # The 4-point piece of A is below min_points: no FP; B (10 points) is still an FN.
    assert (car["tp"], car["fp"], car["fn"]) == (2, 0, 1)
    ev = PanopticEvaluator(NAMES, THING, min_points=15)
    ev.add(gl, gi, pl, pi)
    car = ev.result()["all"]["per_class"]["car"]
    # Matches count whatever the size; B (10 points) is now too small to be an FN.
    assert (car["tp"], car["fp"], car["fn"]) == (2, 0, 0)
    assert car["pq"] == pytest.approx(1.35 / 2)


def test_unknown_predictions_reduce_iou() -> None:
    gl = arr([0] * 10 + [1] * 10)
    inst = arr([0] * 20, np.uint32)
    pl = gl.copy()
    pl[:4] = U
    ev = PanopticEvaluator(["a", "b"], [False, False], min_points=1)
    ev.add(gl, inst, pl, inst)
    r = ev.result()["all"]
    assert r["confusion"][0] == [6, 0, 4]
    assert r["per_class"]["a"]["iou"] == pytest.approx(0.6)
    # Unknown is a false negative of "a" but a false positive of no class.
    assert r["per_class"]["b"]["iou"] == pytest.approx(1.0)
    assert r["points"]["predicted_unknown"] == 4
    assert r["acc"] == pytest.approx(16 / 20)
    assert r["per_class"]["a"]["pq"] == pytest.approx(0.6)  # 6/10 > 0.5: still a match


def test_ignore_label_points_change_nothing() -> None:
    rng = np.random.default_rng(1)
    gl, gi, pl, pi = random_frame(rng)
    keep = gl != U
    ev_full = street_evaluator()
    ev_full.add(gl, gi, pl, pi)
    ev_kept = street_evaluator()
    ev_kept.add(gl[keep], gi[keep], pl[keep], pi[keep])
    full, kept = ev_full.result()["all"], ev_kept.result()["all"]
    assert full["points"]["ignored"] == int((~keep).sum())
    for key in ("miou", "acc", "pq", "sq", "rq", "pq_dagger", "confusion", "per_class"):
        assert full[key] == kept[key], key


def test_stuff_is_one_segment_and_unlabelled_things_are_void() -> None:
    gl = arr([0] * 20 + [2] * 20)
    gi = arr([0] * 20 + [0] * 5 + [1] * 15, np.uint32)  # 5 car points without instance
    pl = gl.copy()
    pi = arr([3] * 10 + [4] * 10 + [9] * 20, np.uint32)  # stuff instance ids are noise
    ev = PanopticEvaluator(NAMES, THING, min_points=1)
    ev.add(gl, gi, pl, pi)
    pc = ev.result()["all"]["per_class"]
    assert pc["road"]["pq"] == pytest.approx(1.0)
    # The 5 void car points leave both segments: GT 15 vs predicted 15 -> IoU 1.
    assert pc["car"]["pq"] == pytest.approx(1.0)
    # Predicted thing points without an instance belong to no segment.
    pi2 = pi.copy()
    pi2[25:29] = 0
    ev = PanopticEvaluator(NAMES, THING, min_points=1)
    ev.add(gl, gi, pl, pi2)
    car = ev.result()["all"]["per_class"]["car"]
    assert (car["tp"], car["fp"], car["fn"]) == (1, 0, 0)
    assert car["sq"] == pytest.approx(11 / 15)
    assert car["iou"] == pytest.approx(1.0)  # semantics are untouched by instance ids


def test_ignore_label_as_class_id_is_left_out_of_averages() -> None:
    # SemanticKITTI style: class 0 "unlabeled" is the ignore label.
    names = ["unlabeled", "road", "car"]
    ev = PanopticEvaluator(names, [False, False, True], ignore_label=0, min_points=1)
    gl = arr([0] * 5 + [1] * 10 + [2] * 10)
    gi = arr([0] * 15 + [1] * 10, np.uint32)
    pl = arr([1] * 5 + [1] * 8 + [0] * 2 + [2] * 10)
    ev.add(gl, gi, pl, gi)
    r = ev.result()["all"]
    assert r["per_class"]["unlabeled"]["iou"] is None
    assert r["per_class"]["unlabeled"]["pq"] is None
    assert r["per_class"]["road"]["iou"] == pytest.approx(0.8)
    assert r["miou"] == pytest.approx(0.9)
    assert r["points"]["ignored"] == 5


def test_fov_split_confusions_sum() -> None:
    rng = np.random.default_rng(2)
    ev = street_evaluator()
    for _ in range(3):
        gl, gi, pl, pi = random_frame(rng)
        ev.add(gl, gi, pl, pi, in_fov=rng.random(len(gl)) < 0.4)
    r = ev.result()
    total = np.array(r["all"]["confusion"])
    assert np.array_equal(total, np.array(r["in_fov"]["confusion"]) + r["out_fov"]["confusion"])
    assert np.array_equal(ev.confusion("in_fov") + ev.confusion("out_fov"), total)
    pts = [r[s]["points"]["total"] for s in ("all", "in_fov", "out_fov")]
    assert pts[0] == pts[1] + pts[2]
    assert r["in_fov"]["frames"] == 3


def test_bad_inputs_raise() -> None:
    ev = PanopticEvaluator(NAMES, THING)
    gl, gi, pl, pi = hand_example()
    with pytest.raises(EvalError, match="entries"):
        ev.add(gl, gi[:-1], pl, pi)
    with pytest.raises(EvalError, match="pred_labels"):
        ev.add(gl, gi, np.full_like(pl, 7), pi)
    with pytest.raises(EvalError, match="gt_labels"):
        ev.add(np.full_like(gl, 3), gi, pl, pi)
    with pytest.raises(EvalError, match="in_fov"):
        ev.add(gl, gi, pl, pi, in_fov=np.ones(len(gl), np.uint8))
    ev.add(gl, gi, pl, pi, in_fov=np.ones(len(gl), bool))
    with pytest.raises(EvalError, match="every frame"):
        ev.add(gl, gi, pl, pi)
    with pytest.raises(EvalError, match="unique"):
        PanopticEvaluator(["a", "a"], [False, False])
    with pytest.raises(EvalError, match="thing flags"):
        PanopticEvaluator(["a", "b"], [False])


def test_empty_evaluator_and_empty_frame() -> None:
    ev = PanopticEvaluator(NAMES, THING)
    r = ev.result()["all"]
    assert r["miou"] is None and r["pq"] is None and r["acc"] is None
    ev.add(arr([]), arr([], np.uint32), arr([]), arr([], np.uint32))
    assert ev.frames == 1 and ev.result()["all"]["miou"] is None


def test_merge_equals_sequential() -> None:
    rng = np.random.default_rng(3)
    frames = [random_frame(rng, 500) for _ in range(4)]
    seq, a, b = street_evaluator(), street_evaluator(), street_evaluator()
    for k, f in enumerate(frames):
        seq.add(*f)
        (a if k % 2 else b).add(*f)
    a.merge(b)
    ra, rs = a.result()["all"], seq.result()["all"]
    assert ra["confusion"] == rs["confusion"] and ra["frames"] == 4
    for name, pc in ra["per_class"].items():
        ref = rs["per_class"][name]
        assert (pc["tp"], pc["fp"], pc["fn"]) == (ref["tp"], ref["fp"], ref["fn"])
    # IoU sums are added in another order: equal up to rounding.
    assert ra["pq"] == pytest.approx(rs["pq"]) and ra["miou"] == pytest.approx(rs["miou"])
    a.reset()
    assert a.frames == 0 and not np.any(a.confusion())


def test_majority_class_baseline() -> None:
    labels = [arr([1, 1, U, U, U]), arr([2, 2, 1, 0])]
    assert majority_class_baseline(labels) == 1
    assert majority_class_baseline([arr([3, 2, 2, 3])]) == 2  # ties -> smaller id
    with pytest.raises(EvalError):
        majority_class_baseline([arr([U, U])])
    # As a prediction it scores the majority share as accuracy.
    gl = arr([0, 0, 0, 1])
    ev = PanopticEvaluator(["a", "b"], [False, False], min_points=1)
    base = majority_class_baseline([gl])
    ev.add(gl, arr([0] * 4, np.uint32), np.full_like(gl, base), arr([0] * 4, np.uint32))
    assert ev.result()["all"]["acc"] == pytest.approx(0.75)


# -------------------------------------------------------------------- properties

N_CLS = 4
P_THING = [False, True, False, True]


@st.composite
def frames(draw, max_n: int = 60):
    n = draw(st.integers(0, max_n))
    label = st.sampled_from([0, 1, 2, 3, U])
    inst = st.integers(0, 3)
    gl = arr(draw(st.lists(label, min_size=n, max_size=n)))
    gi = arr(draw(st.lists(inst, min_size=n, max_size=n)), np.uint32)
    pl = arr(draw(st.lists(label, min_size=n, max_size=n)))
    pi = arr(draw(st.lists(inst, min_size=n, max_size=n)), np.uint32)
    fov = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    return gl, gi, pl, pi, fov


def reference_panoptic(frames_, min_points: int):
    """Slow per-segment PQ statistics with Python sets (the definition, spelled out)."""
    tp, fp, fn = defaultdict(int), defaultdict(int), defaultdict(int)
    iou_sum = defaultdict(float)
    for gl, gi, pl, pi in frames_:
        for cl in range(N_CLS):
            gsegs, psegs = defaultdict(set), defaultdict(set)
            for k in range(len(gl)):
                g = int(gl[k])
                if g == U or (P_THING[g] and gi[k] == 0):
                    continue  # void
                if g == cl:
                    gsegs[int(gi[k]) if P_THING[cl] else 1].add(k)
                if int(pl[k]) == cl and (not P_THING[cl] or pi[k] > 0):
                    psegs[int(pi[k]) if P_THING[cl] else 1].add(k)
            gm, pm = set(), set()
            for gk, gs in gsegs.items():
                for pk, ps in psegs.items():
                    iou = len(gs & ps) / len(gs | ps)
                    if iou > 0.5:
                        tp[cl] += 1
                        iou_sum[cl] += iou
                        gm.add(gk)
                        pm.add(pk)
            fn[cl] += sum(1 for k, s in gsegs.items() if k not in gm and len(s) >= min_points)
            fp[cl] += sum(1 for k, s in psegs.items() if k not in pm and len(s) >= min_points)
    return tp, fp, fn, iou_sum


@settings(max_examples=60, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=4), st.integers(0, 4))
def test_streaming_equals_concatenation_and_reference(fr, min_points) -> None:
    names = [f"c{k}" for k in range(N_CLS)]
    ev = PanopticEvaluator(names, P_THING, min_points=min_points)
    for gl, gi, pl, pi, fov in fr:
        ev.add(gl, gi, pl, pi, in_fov=fov)
    r = ev.result()
    # Semantic metrics of the stream equal those of one concatenated frame.
    cat = PanopticEvaluator(names, P_THING, min_points=min_points)
    cat.add(*(np.concatenate([f[k] for f in fr]) for k in range(4)))
    rc = cat.result()["all"]
    a = r["all"]
    assert a["confusion"] == rc["confusion"]
    assert a["miou"] == rc["miou"] and a["acc"] == rc["acc"]
    for s in ("all", "in_fov", "out_fov"):
        assert r[s]["miou"] is None or 0.0 <= r[s]["miou"] <= 1.0
        for key in ("pq", "sq", "rq", "pq_dagger"):
            assert r[s][key] is None or 0.0 <= r[s][key] <= 1.0 + 1e-12
    split = np.array(r["in_fov"]["confusion"]) + np.array(r["out_fov"]["confusion"])
    assert np.array_equal(np.array(a["confusion"]), split)
    # Panoptic statistics agree with the set-based definition.
    tp, fp, fn, iou_sum = reference_panoptic([f[:4] for f in fr], min_points)
    for cl, name in enumerate(names):
        pc = a["per_class"][name]
        assert (pc["tp"], pc["fp"], pc["fn"]) == (tp[cl], fp[cl], fn[cl]), name
        if pc["pq"] is not None:
            denom = tp[cl] + 0.5 * fp[cl] + 0.5 * fn[cl]
            assert pc["pq"] == pytest.approx(iou_sum[cl] / denom)


@settings(max_examples=40, deadline=None)
@given(frames(), st.permutations(list(range(4))), st.integers(0, 3))
def test_pred_instance_relabelling_keeps_pq(frame, perm, min_points) -> None:
    gl, gi, pl, pi, _ = frame
    names = [f"c{k}" for k in range(N_CLS)]
    # A bijective relabelling that may also move ids far up (uint32 range).
    table = np.array([0, 1000 + 7919 * perm[0], 1000 + 7919 * perm[1], 2**32 - 1 - perm[2]])
    pi2 = table[pi].astype(np.uint32)
    results = []
    for inst in (pi, pi2):
        ev = PanopticEvaluator(names, P_THING, min_points=min_points)
        ev.add(gl, gi, pl, inst)
        results.append(ev.result()["all"])
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff", "pq_dagger", "per_class"):
        assert results[0][key] == results[1][key], key
