"""Label-efficiency experiments (issue 7): one click per object with One Thing One Click
self-training (rounds 0-3) vs full supervision (plain and class-balanced CE) vs clicks
without propagation, and the WS3D++ region-aware losses on top; pseudo-label quality per
round; mIoU, PQ and per-class IoU on a held-out simulated bag; a per-seed summary with
``--also``. Writes its tables into ``docs/experiments.md`` between the markers
``<!-- otoc:start -->`` / ``<!-- otoc:end -->`` (the rest of the file is kept).

Papers: Liu et al., "One Thing One Click" (CVPR 2021); Liu et al., WS3D (ECCV 2022) /
WS3D++.

One seed on a 2-core CPU, about 80 core-minutes (three 600-step baselines, two chains of
four 600-step rounds, the propagation):

    .venv/bin/python scripts/experiments_label_efficiency.py --work /tmp/otoc_exp

Runs whose model exists are kept, so two ``--threads 1`` processes can train disjoint
``--runs`` on the same ``--work`` side by side (start the second once the first has
built the frame cache); ``--runs=`` then only evaluates and writes the tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START, END = "<!-- otoc:start -->", "<!-- otoc:end -->"

#: The network and recipe shared by every run (demo_quick's model, fewer points).
BASE: dict[str, Any] = {
    "model": {
        "voxel_size": 0.2,
        "point_range": [-40.0, -40.0, -4.0, 40.0, 40.0, 6.0],
        "lidar_encoder": {
            "stem_channels": 16,
            "encoder_channels": [16, 32, 64],
            "decoder_channels": [32, 24, 24],
            "blocks_per_stage": 1,
        },
        "clip": {"model": "ws3d-tiny", "pretrained": "random", "image_size": [128, 416]},
        "fusion": {"type": "concat_mlp", "channels": 32},
    },
    "data": {"val_fraction": 0.0, "num_shards": 2, "supervoxel_size": 1.0},
    "augment": {
        "fovmix_prob": 0.0,
        "modality_dropout": 0.3,
        "row_dropout": 0.1,
        "max_points": 12000,
    },
    "losses": {
        "voxel_distill": {"weight": 0.5},
        "object_distill": {"weight": 0.25, "segments": "supervoxels"},
        "text_ce": {"weight": 1.0},
        "contrastive": {"weight": 0.0},
        "teacher_distill": {"weight": 0.0},
        "offsets": {"weight": 0.0},
    },
    "optim": {"lr": 0.004, "warmup_steps": 20, "batch_frames": 1},
    "train": {"checkpoint_every": 1000, "log_every": 20, "eval_every": 0, "device": "cpu"},
}


def sim(out: Path, frames: int, seed: int, rate: float) -> Path:
    from ws3d_ros.cli.main import main as cli_main

    if not (out / "metadata.yaml").is_file():
        args = ["sim", "--out", str(out), "--frames", str(frames), "--seed", str(seed),
                "--rate", f"{rate:g}", "--lidar-beams", "32", "--quiet", "--overwrite"]  # fmt: skip
        if cli_main(args) != 0:
            raise SystemExit(f"ws3d sim failed for {out}")
    return out


def evaluate(model: Path, bag: Path, out: Path) -> dict[str, Any]:
    """mIoU / PQ of ``model`` on ``bag`` through ``ws3d eval`` (a report newer than the
    model is reused)."""
    import contextlib
    import io

    from ws3d_ros.cli.main import main as cli_main

    report = out / "metrics.json"
    if not report.is_file() or report.stat().st_mtime < model.stat().st_mtime:
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["eval", "--bag", str(bag), "--model", str(model), "--out",
                             str(out), "--quiet"])  # fmt: skip
        if code != 0:
            raise SystemExit(f"ws3d eval failed for {model}")
    res = json.loads(report.read_text())
    allr = res.get("all") or {}
    return {"miou": allr.get("miou"), "pq": allr.get("pq"),
            "miou_in_fov": (res.get("in_fov") or {}).get("miou"),
            "miou_out_fov": (res.get("out_fov") or {}).get("miou")}  # fmt: skip


def floats(text: str) -> list[float]:
    """``"0.3,0.5,0.7"`` -> ``[0.3, 0.5, 0.7]`` (a per-round list; the last repeats)."""
    return [float(v) for v in text.split(",") if v.strip()]


#: About the widest object of each simulated thing class, plus a margin for the supervoxel
#: centroid (the simulator's cars are up to 5.2 m long, trucks 10, cyclists 1.8).
DEFAULT_THING_RADIUS = "car=6,truck=10.5,pedestrian=1,cyclist=2,traffic cone=0.75"


def thing_radius(text: str) -> float | dict[str, float]:
    """``"1.5"`` -> 1.5 (every thing class); ``"car=5.5,pedestrian=1"`` -> per class."""
    if "=" not in text:
        return float(text)
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {name.strip(): float(metres) for name, metres in pairs}


def radius_text(radius: float | dict[str, float]) -> str:
    if isinstance(radius, dict):
        return ", ".join(f"{m:g} m ({name})" for name, m in radius.items())
    return f"{radius:g} m"


def ramp(values: list[float], pct: bool = False) -> str:
    return " / ".join(f"{v:.0%}" if pct else f"{v:g}" for v in values)


def fmt(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}"


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.is_file() else "# Experiments\n"
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + block + rest.split(END, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


def model_steps(args: argparse.Namespace, r: int) -> int:
    """Training steps of round ``r``'s model from its initialisation: cumulative when the
    rounds fine-tune, the round's own steps when each round trains from scratch."""
    if args.finetune:
        return args.steps + r * args.round_steps
    return args.steps if r == 0 else args.round_steps


def describe(args: argparse.Namespace, minutes: float) -> list[str]:
    """The setting of the table, in words."""
    total = model_steps(args, args.rounds)
    chain = args.steps + args.rounds * args.round_steps
    return [
        "## Label efficiency: One Thing One Click + WS3D++ (issue 7)",
        "",
        "Generated by `scripts/experiments_label_efficiency.py` ("
        + (f"{minutes:.0f} min on this CPU; " if minutes >= 1 else "")
        + f"seed {args.seed}; the commands are below the tables). Simulated street bags at "
        f"{args.rate:g} Hz (sweeps 5-10 m apart, so each is a distinct view): "
        f"{args.train_bags} training bags x {args.train_frames} sweeps (seeds "
        f"{', '.join(str(10 + k) for k in range(args.train_bags))}), a held-out bag of "
        f"{args.val_frames} sweeps (seed {args.heldout_seed}), 32-beam LiDAR, one camera, "
        "random-init tiny CLIP (no downloads). Network: demo MinkUNet (16-32-64 / "
        "32-24-24), fusion 32, 0.2 m voxels, 0.53 M parameters; AdamW, batch 1, at most "
        "12k points per step. "
        "Labels: one click per object (thing instance, or connected stuff region: 1 m "
        "voxel components of a stuff class per sweep, >= 20 points) drawn from ground "
        f"truth (`ws3d clicks --from-labels`' draw, seed {args.seed}, also the training "
        f"seed). Round 0 trains {args.steps} steps on the clicks"
        + (", each spread over its supervoxel (OTOC's initial labels)" if args.expand else "")
        + f", with text CE weighted (1/label frequency)^{args.click_class_balance:g} and the "
        "relation network; "
        f"rounds 1-{args.rounds} propagate ({args.method}) over the supervoxel graph with "
        f"the network's unaries (weight {ramp(args.unary_weight)}) and the relation "
        "network's affinities, clicked supervoxels fixed"
        + (
            f", a thing class only within {radius_text(args.thing_radius)} (horizontally) "
            "of a click of its class"
            + (
                ", the points the pseudo labels leave out trained to rule out the thing "
                f"classes so excluded (candidate-set loss, weight {args.partial_label_weight:g})"
                if args.partial_label_weight > 0
                else ""
            )
            if args.thing_radius
            else ""
        )
        + (
            ", and that their class is among the most probable propagated classes holding "
            f"{ramp(args.candidate_mass, pct=True)} (per round) of their supervoxel's mass"
            if min(args.candidate_mass) < 1 and args.partial_label_weight > 0
            else ""
        )
        + (
            ", every labelled region ("
            + (
                "1 m connected, as the stuff regions of the clicks"
                if args.click_region_cell == 1
                else f"{args.click_region_cell:g} m connected; the clicked stuff regions are "
                "1 m connected"
            )
            + ") holding a click of its class (else the next-best class, else no label; a "
            "stuff region continues through thing-labelled points)"
            if args.click_regions
            else ""
        )
        + (
            f", supervoxels at ground level (90% of their points within 0.1 m of the lowest "
            f"point around) restricted to {args.ground_classes.replace(',', ' / ')}"
            if args.ground_classes.strip()
            else ""
        )
        + (
            f", thing-labelled points within {args.thing_ground_height:g} m of the ground "
            "(spread clicks and pseudo labels; the clicked point excepted) left unlabelled, "
            "learning 'the thing or a ground class'"
            if args.thing_ground_height > 0
            else ""
        )
        + f", keep per class the {ramp(args.keep_fraction, pct=True)} (per round) most "
        "confident supervoxels predicted as it (supervoxel-granular pseudo labels), and "
        + (
            f"fine-tune {args.round_steps} steps each"
            if args.finetune
            else f"train a fresh network {args.round_steps} steps each (OTOC's protocol: "
            "every round's network is trained like the fully supervised one; the earlier "
            f"rounds only make labels, {chain} steps over the whole chain"
        )
        + f"; text CE class balance {args.pseudo_class_balance:g}"
        + (")" if not args.finetune else "")
        + ". Full supervision "
        f"trains {total} steps (as many as the last round's model) on every label, once "
        "with plain CE and once with round 0's "
        "class-balanced CE; *% of best full* is the share of the better of the two. The "
        "clicked-points-only baseline trains the same steps on the clicked points "
        "alone (no supervoxel spread, no propagation; CE weighted by inverse frequency). "
        "Pseudo-label columns, over the training sweeps against their ground truth: "
        "*scene* mIoU is the standard mIoU of the pseudo labelling, an unlabelled point "
        "counting as a miss of its class (how much of the dense truth the labels "
        "recover); *covered* mIoU and accuracy score only the labelled points; coverage = "
        "labelled share of the points; the *propagated field* is every supervoxel's argmax "
        "before the confidence selection (all points covered). The pseudo-label columns "
        "of round r describe the labels round r trained on (propagated from round r-1's "
        "model); *steps* are those that trained the row's model from its initialisation"
        + (" (cumulative over the fine-tuned rounds)." if args.finetune else "."),
        "",
    ]


FULL_ROWS = ("full supervision", "full supervision, class-balanced CE")


def best_full(rows: list[dict[str, Any]]) -> float:
    """mIoU of the better full-supervision run: the reference every share is taken of."""
    return max((r["miou"] or 0.0 for r in rows if r["name"] in FULL_ROWS), default=0.0)


def table(rows: list[dict[str, Any]]) -> list[str]:
    full = best_full(rows)
    lines = [
        "| run | steps | mIoU | % of best full | PQ | mIoU in FOV | mIoU out FOV "
        "| pseudo mIoU (scene) | pseudo mIoU (covered) | pseudo acc. | pseudo coverage "
        "| propagated field mIoU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        rel = "-" if not full or r["miou"] is None else f"{100 * r['miou'] / full:.0f}"
        lines.append(
            f"| {r['name']} | {r['steps']} | {fmt(r['miou'])} | {rel} | {fmt(r['pq'])} | "
            f"{fmt(r['miou_in_fov'])} | {fmt(r['miou_out_fov'])} | "
            f"{fmt(r.get('pseudo_scene_miou'))} | {fmt(r.get('pseudo_miou'))} | "
            f"{fmt(r.get('pseudo_accuracy'))} | "
            f"{fmt(r.get('pseudo_coverage'))} | {fmt(r.get('dense_miou'))} |"
        )
    return lines


def results_name(heldout_seed: int) -> str:
    return "results.json" if heldout_seed == 99 else f"results{heldout_seed}.json"


def per_class_table(reports: list[tuple[str, Path]]) -> list[str]:
    """Per-class IoU of a few runs (their ``ws3d eval`` reports) side by side."""
    got = [(name, json.loads((d / "metrics.json").read_text())["all"]["per_class"])
           for name, d in reports if (d / "metrics.json").is_file()]  # fmt: skip
    if not got:
        return []
    classes = list(got[0][1])
    lines = [
        "Per-class IoU on the held-out bag (`*` = thing class):",
        "",
        "| run | " + " | ".join(c + ("*" if got[0][1][c]["thing"] else "") for c in classes) + " |",
        "| --- | " + " | ".join("---:" for _ in classes) + " |",
    ]
    for name, pc in got:
        cells = [fmt(pc[c]["iou"]) if c in pc else "-" for c in classes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def seed_table(works: list[Path], name: str = "results.json") -> list[str]:
    """mIoU and share of full supervision per seed (each work dir's results file) and
    their mean, for the runs every seed has."""
    results = [json.loads((w / name).read_text()) for w in works]
    seeds = [r["seed"] for r in results]
    by_seed = [{row["name"]: row for row in r["rows"]} for r in results]
    names = [n for n in by_seed[0] if all(n in b for b in by_seed)]
    lines = [
        f"Across seeds {', '.join(map(str, seeds))} (training init and click draw; same "
        "bags): mIoU (share of that seed's better full-supervision run) and the mean share.",
        "",
        "| run | " + " | ".join(f"seed {s}" for s in seeds) + " | mean % of best full |",
        "| --- | " + " | ".join("---:" for _ in seeds) + " | ---: |",
    ]
    for n in names:
        cells, shares = [], []
        for b in by_seed:
            m, f = b[n]["miou"], best_full(list(b.values()))
            share = 100 * m / f if m is not None and f else None
            shares.append(share)
            cells.append(f"{fmt(m)} ({share:.0f} %)" if share is not None else fmt(m))
        ok = [v for v in shares if v is not None]
        mean = f"{sum(ok) / len(ok):.1f}" if ok else "-"
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {mean} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ws3d_otoc_exp"))
    parser.add_argument("--train-bags", type=int, default=2, help="training bags (scenes)")
    parser.add_argument("--train-frames", type=int, default=8, help="sweeps per training bag")
    parser.add_argument("--val-frames", type=int, default=12, help="sweeps of the held-out bag")
    parser.add_argument(
        "--rate", type=float, default=1.0,
        help="sweep rate of the simulated bags in Hz (1: sweeps 5-10 m apart along the "
        "street, so a bag holds distinct views rather than near-copies)",
    )  # fmt: skip
    parser.add_argument(
        "--runs", default="full,fullbal,clicks,otoc,ws3dpp",
        help="which runs to train (comma list of full, fullbal, clicks, otoc, ws3dpp: "
        "fullbal = full labels with round 0's class-balanced CE); runs whose "
        "model exists under --work are kept and every finished run goes in the table, so "
        "two processes can train disjoint runs side by side",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--steps", type=int, default=600, help="round-0 steps")
    parser.add_argument("--round-steps", type=int, default=600, help="steps of rounds 1..R")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--seed", type=int, default=0,
        help="training and click-draw seed (train.seed, labels.seed) of every run",
    )  # fmt: skip
    parser.add_argument("--method", choices=("crf", "attention"), default="crf")
    parser.add_argument(
        "--keep-fraction", type=floats, default=[0.5, 0.7, 0.9],
        help="per-class pseudo-label share, one value or per round 1..R (comma list)",
    )  # fmt: skip
    parser.add_argument(
        "--unary-weight", type=floats, default=[0.5],
        help="network unary weight per round 1..R (comma list, the last repeats)",
    )  # fmt: skip
    parser.add_argument(
        "--no-expand", dest="expand", action="store_false",
        help="train round 0 on the clicked points only (default: a click labels its "
        "whole supervoxel, as OTOC does)",
    )  # fmt: skip
    parser.add_argument(
        "--click-regions", action=argparse.BooleanOptionalAction, default=True,
        help="otoc.click_regions: a propagated region holding no click of its class falls "
        "back to its next-best class or stays unlabelled",
    )  # fmt: skip
    parser.add_argument(
        "--click-region-cell", type=float, default=1.0,
        help="otoc.click_region_cell: connectivity of the click-region check in metres "
        "(the clicked stuff regions are 1 m connected; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--ground-classes", default="road,sidewalk,terrain",
        help="otoc.ground_classes: supervoxels at ground level take only these classes "
        "(comma list; empty: no ground prior)",
    )  # fmt: skip
    parser.add_argument(
        "--thing-radius", type=thing_radius, default=DEFAULT_THING_RADIUS,
        help="otoc.thing_radius: thing labels only within this many metres (horizontally) "
        "of a click of their class: one number for every thing class (0: off), or "
        "'class=metres,...', which may name a compact stuff class too (pole, traffic "
        "sign) (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--thing-ground-height", type=float, default=0.05,
        help="otoc.thing_ground_height: thing labels (spread clicks, pseudo labels) within "
        "this many metres of the local ground become 'the thing or a ground class' "
        "(0: off; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--partial-label-weight", type=float, default=1.0,
        help="losses.partial_label.weight of the OTOC chains: the points the pseudo labels "
        "leave out learn the thing classes the thing radius rules out (0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--candidate-mass", type=floats, default=[0.95, 0.95, 1.0],
        help="otoc.candidate_mass: rounds >= 1, the points the pseudo labels leave out "
        "learn that their class is among the most probable propagated classes holding "
        "this much mass, one value or per round 1..R (comma list; 1: only the thing "
        "radius's negatives; default: 0.95,0.95,1)",
    )  # fmt: skip
    parser.add_argument(
        "--relation-detach", action=argparse.BooleanOptionalAction, default=False,
        help="losses.relation.detach_backbone: the relation network learns on the "
        "segmentation features without training the 3D network",
    )  # fmt: skip
    parser.add_argument(
        "--last-round-relation", action=argparse.BooleanOptionalAction, default=True,
        help="otoc.last_round_relation: the last round trains the relation loss too "
        "(its relation network makes no labels)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune", action=argparse.BooleanOptionalAction, default=False,
        help="otoc.finetune: rounds >= 1 start from the previous round's weights (else "
        "each round trains from scratch, --round-steps steps)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-lr-scale", type=float, default=1.0,
        help="otoc.finetune_lr_scale: peak lr of rounds >= 1 relative to round 0's",
    )  # fmt: skip
    parser.add_argument(
        "--pseudo-class-balance", type=float, default=0.5,
        help="otoc.pseudo_class_balance: text_ce class balance of rounds >= 1 (0: plain CE)",
    )  # fmt: skip
    parser.add_argument(
        "--click-class-balance", type=float, default=0.5,
        help="losses.text_ce.class_balance of round 0 (1: inverse label frequency, 0.5: "
        "its square root)",
    )  # fmt: skip
    parser.add_argument(
        "--heldout-seed", type=int, default=99,
        help="scene seed of the held-out bag (99: the bag the recipe was tuned on)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true", help="keep the finished rounds under --work"
    )
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "experiments.md")
    parser.add_argument(
        "--also", type=Path, action="append", default=[],
        help="finished --work dirs of other seeds (their results.json): adds a per-seed "
        "table with the mean share of full supervision",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from training.config import TrainConfig
    from training.otoc.self_training import run_self_training
    from training.trainer import train
    from ws3d_ros.sim.classes import STREET_CLASSES

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    runs = {r.strip() for r in args.runs.split(",") if r.strip()}
    unknown = runs - {"full", "fullbal", "clicks", "otoc", "ws3dpp"}
    if unknown:
        parser.error(f"--runs: unknown {sorted(unknown)} (full, fullbal, clicks, otoc, ws3dpp)")
    bags = [
        sim(work / f"train{k}", args.train_frames, 10 + k, args.rate)
        for k in range(args.train_bags)
    ]
    held_name = "heldout" if args.heldout_seed == 99 else f"heldout{args.heldout_seed}"
    held = sim(work / held_name, args.val_frames, args.heldout_seed, args.rate)
    ev = "eval" if args.heldout_seed == 99 else f"eval{args.heldout_seed}"
    total = model_steps(args, args.rounds)  # the full-supervision budget
    cache = str(work / "cache")
    rows: list[dict[str, Any]] = []

    def base(extra: dict[str, Any]) -> TrainConfig:
        cfg = TrainConfig.from_dict(BASE)
        seeds = {"train.seed": args.seed, "labels.seed": args.seed}
        return cfg.with_overrides({"data.cache_dir": cache, **seeds, **extra})

    # Full supervision, the same network and as many steps as OTOC's last-round model.
    full_dir = work / "full"
    if "full" in runs and not (full_dir / "model.pt").is_file():
        train(base({"labels.mode": "full", "train.steps": total}), bags, full_dir)
    full: dict[str, Any] = {"miou": None}
    if (full_dir / "model.pt").is_file():
        full = evaluate(full_dir / "model.pt", held, work / f"{ev}_full")
        rows.append({"name": "full supervision", "steps": total, **full})
    # The same with round 0's class-balanced CE: full labels, but rare classes weighted up
    # as the click runs weight them (a stronger reference on the rare classes).
    bal_dir = work / "full_balanced"
    bal_over = {"labels.mode": "full", "train.steps": total,
                "losses.text_ce.class_balance": args.click_class_balance}  # fmt: skip
    if "fullbal" in runs and not (bal_dir / "model.pt").is_file():
        train(base(bal_over), bags, bal_dir)
    if (bal_dir / "model.pt").is_file():
        bal = evaluate(bal_dir / "model.pt", held, work / f"{ev}_full_balanced")
        rows.append({"name": FULL_ROWS[1], "steps": total, **bal})
    # Clicks without any propagation: the clicked points alone, the same total steps.
    bare_dir = work / "clicks_only"
    if "clicks" in runs and not (bare_dir / "model.pt").is_file():
        train(base({"labels.mode": "clicks", "labels.clicks_per_object": 1,
                    "losses.text_ce.class_balance": 1.0, "train.steps": total}),
              bags, bare_dir)  # fmt: skip
    if (bare_dir / "model.pt").is_file():
        bare = evaluate(bare_dir / "model.pt", held, work / f"{ev}_clicks_only")
        rows.append({"name": "1 click/object, clicked points only (no propagation)",
                     "steps": total, **bare})  # fmt: skip

    otoc_over = {
        "labels.mode": "clicks",
        "labels.clicks_per_object": 1,
        "labels.expand_to_segments": args.expand,
        "train.steps": args.steps,
        "losses.relation": {"weight": 0.5, "detach_backbone": args.relation_detach},
        "losses.text_ce.class_balance": args.click_class_balance,
        "otoc.method": args.method,
        "otoc.unary_weight": args.unary_weight,
        "otoc.keep_fraction": args.keep_fraction,
        "otoc.confidence": 0.5,
        "otoc.rounds": args.rounds,
        "otoc.steps_per_round": args.round_steps,
        "otoc.thing_radius": args.thing_radius,
        "otoc.candidate_mass": args.candidate_mass,
        "otoc.thing_ground_height": args.thing_ground_height,
        "losses.partial_label": {"weight": args.partial_label_weight},
        "otoc.click_regions": args.click_regions,
        "otoc.click_region_cell": args.click_region_cell,
        "otoc.ground_classes": [n.strip() for n in args.ground_classes.split(",") if n.strip()],
        "otoc.finetune": args.finetune,
        "otoc.finetune_lr_scale": args.finetune_lr_scale,
        "otoc.pseudo_class_balance": args.pseudo_class_balance,
        "otoc.last_round_relation": args.last_round_relation,
    }
    chains = [
        ("OTOC", "otoc", "otoc", otoc_over),
        ("OTOC + WS3D++", "ws3dpp", "otoc_ws3dpp", {
            **otoc_over,
            "losses.boundary": {"weight": 0.3},
            "losses.region_energy": {"weight": 0.5},
            "losses.region_contrast": {"weight": 0.2},
        }),
    ]  # fmt: skip
    pseudo: dict[str, list[dict[str, Any]]] = {}
    for name, run, tag, over in chains:
        done_file = work / tag / "rounds.json"
        if run in runs:
            # Round 0 trains `steps`; rounds 1..R fine-tune `round_steps` each.
            history = run_self_training(
                base(over), bags, work / tag, rounds=args.rounds, resume=args.resume,
                things=[c.name for c in STREET_CLASSES if c.thing],
            )  # fmt: skip
        elif done_file.is_file():
            history = json.loads(done_file.read_text())
        else:
            continue
        picture = work / tag / "rounds.png"
        if tag == "otoc" and picture.is_file():
            shutil.copyfile(picture, args.doc.parent / "otoc_rounds.png")
        pseudo[name] = history
        for h in history:
            r = h["round"]
            m = evaluate(work / tag / f"round{r}" / "model.pt", held, work / f"{ev}_{tag}_{r}")
            label = (
                "OTOC round 0 (each click labels its supervoxel)"
                if r == 0 and name == "OTOC" and args.expand
                else "1 click/object, clicked points only" if r == 0 and name == "OTOC"
                else f"{name} round {r}"
            )  # fmt: skip
            rows.append({"name": label, "steps": model_steps(args, r), **m,
                         "pseudo_miou": h.get("pseudo_miou"),
                         "pseudo_scene_miou": h.get("pseudo_scene_miou"),
                         "pseudo_coverage": h.get("pseudo_coverage"),
                         "pseudo_accuracy": h.get("pseudo_accuracy"),
                         "dense_miou": h.get("dense_miou")})  # fmt: skip
    minutes = (time.perf_counter() - t0) / 60
    (work / results_name(args.heldout_seed)).write_text(
        json.dumps({"seed": args.seed, "rows": rows, "pseudo": pseudo}, indent=1, default=str)
    )
    lines = describe(args, minutes) + table(rows)
    if (work / "otoc" / "rounds.png").is_file():
        lines += ["", "One training sweep of the OTOC chain, labels round by round "
                  "(`RUN/rounds.png`, written by every `ws3d train --config otoc` run; grey = "
                  "unlabelled):", "", "![OTOC labels round by round](otoc_rounds.png)"]  # fmt: skip
    last = args.rounds
    lines += ["", *per_class_table([
        ("full supervision", work / f"{ev}_full"),
        ("full supervision, class-balanced CE", work / f"{ev}_full_balanced"),
        ("clicked points only", work / f"{ev}_clicks_only"),
        ("OTOC round 0", work / f"{ev}_otoc_0"),
        (f"OTOC round {last}", work / f"{ev}_otoc_{last}"),
        (f"OTOC + WS3D++ round {last}", work / f"{ev}_otoc_ws3dpp_{last}"),
    ])]  # fmt: skip
    if args.also:
        lines += ["", *seed_table([work, *args.also], results_name(args.heldout_seed))]
    write_section(args.doc, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
