"""Label-efficiency experiments (issue 7): one click per object with One Thing One Click
self-training (rounds 0-3) vs full supervision vs clicks without propagation, and the
WS3D++ region-aware losses on top; pseudo-label quality per round; mIoU and PQ on a
held-out simulated bag. Writes its table into ``docs/experiments.md`` between the
markers ``<!-- otoc:start -->`` / ``<!-- otoc:end -->`` (the rest of the file is kept).

Papers: Liu et al., "One Thing One Click" (CVPR 2021); Liu et al., WS3D (ECCV 2022) /
WS3D++.

Small enough for a 2-core CPU (about 15-30 min with the defaults):

    .venv/bin/python scripts/experiments_label_efficiency.py --work /tmp/otoc_exp

On two cores the chains can run side by side (``--no-ws3dpp`` and ``--only-ws3dpp`` on
the same ``--work``), then ``--resume`` keeps their rounds and writes the whole table.
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


def sim(out: Path, frames: int, seed: int) -> Path:
    from ws3d_ros.cli.main import main as cli_main

    if not (out / "metadata.yaml").is_file():
        args = ["sim", "--out", str(out), "--frames", str(frames), "--seed", str(seed),
                "--lidar-beams", "32", "--quiet", "--overwrite"]  # fmt: skip
        if cli_main(args) != 0:
            raise SystemExit(f"ws3d sim failed for {out}")
    return out


def evaluate(model: Path, bag: Path, out: Path) -> dict[str, Any]:
    """mIoU / PQ of ``model`` on ``bag`` through ``ws3d eval``."""
    import contextlib
    import io

    from ws3d_ros.cli.main import main as cli_main

    with contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["eval", "--bag", str(bag), "--model", str(model), "--out", str(out),
                         "--quiet"])  # fmt: skip
    if code != 0:
        raise SystemExit(f"ws3d eval failed for {model}")
    res = json.loads((out / "metrics.json").read_text())
    allr = res.get("all") or {}
    return {"miou": allr.get("miou"), "pq": allr.get("pq"),
            "miou_in_fov": (res.get("in_fov") or {}).get("miou"),
            "miou_out_fov": (res.get("out_fov") or {}).get("miou")}  # fmt: skip


def floats(text: str) -> list[float]:
    """``"0.3,0.5,0.7"`` -> ``[0.3, 0.5, 0.7]`` (a per-round list; the last repeats)."""
    return [float(v) for v in text.split(",") if v.strip()]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/ws3d_otoc_exp"))
    parser.add_argument("--train-frames", type=int, default=8)
    parser.add_argument("--val-frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=450, help="round-0 / base steps")
    parser.add_argument("--round-steps", type=int, default=50, help="steps of rounds 1..R")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--seed", type=int, default=0,
        help="training and click-draw seed (train.seed, labels.seed) of every run",
    )  # fmt: skip
    parser.add_argument("--method", choices=("crf", "attention"), default="crf")
    parser.add_argument(
        "--keep-fraction", type=floats, default=[0.3, 0.5, 0.7],
        help="per-class pseudo-label share, one value or per round 1..R (comma list)",
    )  # fmt: skip
    parser.add_argument(
        "--unary-weight", type=floats, default=[0.0, 0.5, 0.5],
        help="network unary weight per round 1..R (comma list, the last repeats)",
    )  # fmt: skip
    parser.add_argument(
        "--no-expand", dest="expand", action="store_false",
        help="train round 0 on the clicked points only (default: a click labels its "
        "whole supervoxel, as OTOC does)",
    )  # fmt: skip
    parser.add_argument(
        "--no-baseline", action="store_true",
        help="skip the clicked-points-only baseline (no propagation, full step budget)",
    )  # fmt: skip
    parser.add_argument(
        "--thing-radius", type=float, default=0.0,
        help="otoc.thing_radius: thing labels only within this many metres of a click of "
        "their class (0: off)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-lr-scale", type=float, default=1.0,
        help="otoc.finetune_lr_scale: peak lr of rounds >= 1 relative to round 0's",
    )  # fmt: skip
    parser.add_argument("--no-ws3dpp", action="store_true", help="skip the WS3D++ chain")
    parser.add_argument(
        "--only-ws3dpp", action="store_true",
        help="train only the WS3D++ chain (run it beside a --no-ws3dpp run, then --resume)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true", help="keep the finished rounds under --work"
    )
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "experiments.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from training.config import TrainConfig
    from training.otoc.self_training import run_self_training
    from training.trainer import train
    from ws3d_ros.sim.classes import STREET_CLASSES

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bags = [sim(work / f"train{k}", args.train_frames, 10 + k) for k in range(2)]
    held = sim(work / "heldout", args.val_frames, 99)
    total = args.steps + args.rounds * args.round_steps
    cache = str(work / "cache")
    rows: list[dict[str, Any]] = []

    def base(extra: dict[str, Any]) -> TrainConfig:
        cfg = TrainConfig.from_dict(BASE)
        seeds = {"train.seed": args.seed, "labels.seed": args.seed}
        return cfg.with_overrides({"data.cache_dir": cache, **seeds, **extra})

    # Full supervision, the same network and the same total steps as OTOC's last round.
    full_dir = work / "full"
    if not (full_dir / "model.pt").is_file():
        train(base({"labels.mode": "full", "train.steps": total}), bags, full_dir)
    full = evaluate(full_dir / "model.pt", held, work / "eval_full")
    rows.append({"name": "full supervision", "steps": total, **full})
    # Clicks without any propagation: the clicked points alone, the same total steps.
    if not args.no_baseline:
        bare_dir = work / "clicks_only"
        if not (bare_dir / "model.pt").is_file():
            train(base({"labels.mode": "clicks", "labels.clicks_per_object": 1,
                        "losses.text_ce.class_balance": 1.0, "train.steps": total}),
                  bags, bare_dir)  # fmt: skip
        bare = evaluate(bare_dir / "model.pt", held, work / "eval_clicks_only")
        rows.append({"name": "1 click/object, clicked points only (no propagation)",
                     "steps": total, **bare})  # fmt: skip

    otoc_over = {
        "labels.mode": "clicks",
        "labels.clicks_per_object": 1,
        "labels.expand_to_segments": args.expand,
        "train.steps": args.steps,
        "losses.relation": {"weight": 0.5},
        "losses.text_ce.class_balance": 1.0,
        "otoc.method": args.method,
        "otoc.unary_weight": args.unary_weight,
        "otoc.keep_fraction": args.keep_fraction,
        "otoc.confidence": 0.5,
        "otoc.rounds": args.rounds,
        "otoc.steps_per_round": args.round_steps,
        "otoc.thing_radius": args.thing_radius,
        "otoc.finetune_lr_scale": args.finetune_lr_scale,
    }
    chains = [] if args.only_ws3dpp else [("OTOC", otoc_over)]
    if not args.no_ws3dpp:
        chains.append(("OTOC + WS3D++", {
            **otoc_over,
            "losses.boundary": {"weight": 0.3},
            "losses.region_energy": {"weight": 0.5},
            "losses.region_contrast": {"weight": 0.2},
        }))  # fmt: skip
    pseudo: dict[str, list[dict[str, Any]]] = {}
    for name, over in chains:
        tag = "otoc" if name == "OTOC" else "otoc_ws3dpp"
        # Round 0 trains `steps`; rounds 1..R fine-tune `round_steps` each.
        history = run_self_training(
            base(over), bags, work / tag, rounds=args.rounds, resume=args.resume,
            things=[c.name for c in STREET_CLASSES if c.thing],
        )  # fmt: skip
        picture = work / tag / "rounds.png"
        if tag == "otoc" and picture.is_file():
            shutil.copyfile(picture, args.doc.parent / "otoc_rounds.png")
        pseudo[name] = history
        for h in history:
            r = h["round"]
            m = evaluate(work / tag / f"round{r}" / "model.pt", held, work / f"eval_{tag}_{r}")
            label = (
                "OTOC round 0 (each click labels its supervoxel)"
                if r == 0 and name == "OTOC" and args.expand
                else "1 click/object, clicked points only" if r == 0 and name == "OTOC"
                else f"{name} round {r}"
            )  # fmt: skip
            rows.append({"name": label, "steps": args.steps + r * args.round_steps, **m,
                         "pseudo_miou": h.get("pseudo_miou"),
                         "pseudo_scene_miou": h.get("pseudo_scene_miou"),
                         "pseudo_coverage": h.get("pseudo_coverage"),
                         "pseudo_accuracy": h.get("pseudo_accuracy"),
                         "dense_miou": h.get("dense_miou")})  # fmt: skip
    minutes = (time.perf_counter() - t0) / 60

    full_miou = full["miou"] or 0.0
    lines = [
        "## Label efficiency: One Thing One Click + WS3D++ (issue 7)",
        "",
        f"Generated by `scripts/experiments_label_efficiency.py` ({minutes:.0f} min on this "
        f"CPU). Simulated street bags: 2 training bags x {args.train_frames} sweeps "
        f"(seeds 10, 11), held-out bag of {args.val_frames} sweeps (seed 99), 32-beam LiDAR, "
        "one camera, random-init tiny CLIP (no downloads). Network: demo MinkUNet "
        "(16-32-64 / 32-24-24), fusion 32; AdamW, batch 1, at most 12k points per step. "
        f"Labels: one click per object (thing instance, or connected stuff region: 1 m "
        f"voxel components of a stuff class per sweep, >= 20 points) drawn from ground "
        f"truth (`ws3d clicks --from-labels`' draw, seed {args.seed}, also the training "
        f"seed); round 0 trains {args.steps} steps on the clicks"
        + (", each spread over its supervoxel (OTOC's initial labels)" if args.expand else "")
        + f", with class-balanced CE (inverse label frequency), rounds "
        f"1-{args.rounds} propagate ({args.method}) over the supervoxel graph with the "
        f"relation network's affinities and the network's unaries weighted "
        f"{ramp(args.unary_weight)} (rounds 1, 2, 3..), clicked supervoxels fixed, keep per "
        f"class the {ramp(args.keep_fraction, pct=True)} (per round) most confident "
        f"supervoxels predicted as it (supervoxel-granular pseudo labels), and "
        f"fine-tune {args.round_steps} steps each (CE balanced by (1/freq)^0.5). Full "
        f"supervision trains {total} steps (the total of OTOC's last round), plain CE. "
        "The clicked-points-only baseline trains the same total steps on the clicked "
        "points alone (no supervoxel spread, no propagation). Pseudo-label columns, over "
        "the training sweeps against their ground truth: *scene* mIoU counts every "
        "unlabelled point as a miss of its class (how much of the dense truth the pseudo "
        "labels recover), *covered* mIoU and accuracy score only the labelled points, "
        "coverage = labelled share of the points, and the *propagated field* is every "
        "supervoxel's argmax before the confidence selection (all points covered).",
        "",
        "Model: 0.2 m voxels, 0.53 M parameters in the 3D network (with fusion and head); "
        "steps are optimiser steps of one sweep (cumulative over rounds; full supervision "
        "gets the same total). The pseudo-label columns of round r describe the labels "
        "round r trained on (propagated from round r-1's model).",
        "",
        "| run | steps | mIoU | % of full | PQ | mIoU in FOV | mIoU out FOV "
        "| pseudo mIoU (scene) | pseudo mIoU (covered) | pseudo acc. | pseudo coverage "
        "| propagated field mIoU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        rel = "-" if not full_miou or r["miou"] is None else f"{100 * r['miou'] / full_miou:.0f}"
        lines.append(
            f"| {r['name']} | {r['steps']} | {fmt(r['miou'])} | {rel} | {fmt(r['pq'])} | "
            f"{fmt(r['miou_in_fov'])} | {fmt(r['miou_out_fov'])} | "
            f"{fmt(r.get('pseudo_scene_miou'))} | {fmt(r.get('pseudo_miou'))} | "
            f"{fmt(r.get('pseudo_accuracy'))} | "
            f"{fmt(r.get('pseudo_coverage'))} | {fmt(r.get('dense_miou'))} |"
        )
    if (args.doc.parent / "otoc_rounds.png").is_file() and not args.only_ws3dpp:
        lines += ["", "One training sweep of the OTOC chain, labels round by round "
                  "(`RUN/rounds.png`, written by every `ws3d train --config otoc` run; grey = "
                  "unlabelled):", "", "![OTOC labels round by round](otoc_rounds.png)"]  # fmt: skip
    (work / "results.json").write_text(json.dumps({"rows": rows, "pseudo": pseudo}, indent=1,
                                                  default=str))  # fmt: skip
    write_section(args.doc, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
