"""Human- and machine-readable reports of a panoptic evaluation result.

Contract: :func:`write_report` takes the dict of
:meth:`PanopticEvaluator.result() <ws3d_ros.eval.metrics.PanopticEvaluator.result>`
and writes into ``out_dir`` (created if needed):

* ``metrics.json`` — the result dict as it is (indented, stable key order);
* ``metrics.md`` — a summary table (rows all / in-FOV / out-of-FOV; columns
  frames, points, mIoU, accuracy, PQ, SQ, RQ, PQ_th, PQ_st, PQ†) and a
  per-class table (IoU and PQ per split, SQ / RQ / TP / FP / FN of all
  points). Scores are percentages with one decimal; ``n/a`` marks an
  undefined value or a split without FOV masks;
* ``confusion.png`` — the row-normalised confusion matrix of all points
  (rows ground truth, columns prediction plus "unknown"), class names on
  both axes, optional class colour swatches, percentages in the cells when
  there are at most 25 classes.

It returns ``{"json": path, "markdown": path, "confusion": path}``. Plotting
uses matplotlib's Agg canvas directly, so no GUI backend or global
``matplotlib.use`` is involved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ws3d_ros.errors import Ws3dError

_SPLIT_TITLES = (("all", "all"), ("in_fov", "in-FOV"), ("out_fov", "out-of-FOV"))
_MAX_ANNOTATED = 25  # beyond this many classes, cell numbers are unreadable


def fmt_score(x: float | None) -> str:
    """A score in [0, 1] as a percentage with one decimal, ``n/a`` when undefined."""
    return "n/a" if x is None else f"{100.0 * x:.1f}"


def write_report(
    result: dict[str, Any],
    out_dir: str | Path,
    class_names: Sequence[str],
    colors: np.ndarray | Sequence[Sequence[int]] | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.md`` and ``confusion.png``; return their paths."""
    if not isinstance(result, dict) or result.get("all") is None:
        raise Ws3dError("write_report needs PanopticEvaluator.result() (no 'all' entry found)")
    names = [str(n) for n in class_names]
    n_rows = len(result["all"]["confusion"])
    if n_rows != len(names):
        raise Ws3dError(f"{len(names)} class names for a result over {n_rows} classes")
    if colors is not None:
        colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
        if len(colors) != len(names):
            raise Ws3dError(f"{len(colors)} colours for {len(names)} classes")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "metrics.json",
        "markdown": out / "metrics.md",
        "confusion": out / "confusion.png",
    }
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    paths["markdown"].write_text(_markdown(result, names))
    _confusion_png(result["all"], names, colors, paths["confusion"])
    return paths


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(" --- " if a == "l" else " ---: " for a in align) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _markdown(result: dict[str, Any], names: list[str]) -> str:
    lines = ["# Evaluation", ""]
    lines.append("Scores in %. mIoU over classes present in ground truth or predictions;")
    lines.append("PQ after Kirillov et al. (IoU > 0.5 matching), PQ† after Porzi et al.")
    lines.append("")
    rows = []
    for key, title in _SPLIT_TITLES:
        r = result.get(key)
        if r is None:
            rows.append([title, "n/a", "n/a", *["n/a"] * 9])
            continue
        pts = r["points"]["evaluated"]
        scores = ("miou", "acc", "pq", "sq", "rq", "pq_things", "pq_stuff", "pq_dagger")
        rows.append([title, str(r["frames"]), str(pts), *(fmt_score(r[s]) for s in scores)])
    header = ["split", "frames", "points", "mIoU", "acc", "PQ", "SQ", "RQ", "PQ_th", "PQ_st"]
    lines += _table([*header, "PQ†"], rows, "lrr" + "r" * 8)
    if result.get("in_fov") is None:
        lines += ["", "No camera field-of-view masks were given: in/out-of-FOV not evaluated."]

    splits = [(k, t) for k, t in _SPLIT_TITLES if result.get(k) is not None]
    header = ["id", "class", "type", "GT points"]
    header += [f"IoU {t}" for _, t in splits] + [f"PQ {t}" for _, t in splits]
    header += ["SQ", "RQ", "TP", "FP", "FN"]
    rows = []
    for k, name in enumerate(names):
        pc = result["all"]["per_class"].get(name)
        if pc is None:
            raise Ws3dError(f"class {name!r} is not in the result's per-class entries")
        row = [str(k), name, "thing" if pc["thing"] else "stuff", str(pc["gt_points"])]
        row += [fmt_score(result[s]["per_class"][name]["iou"]) for s, _ in splits]
        row += [fmt_score(result[s]["per_class"][name]["pq"]) for s, _ in splits]
        row += [fmt_score(pc["sq"]), fmt_score(pc["rq"]), str(pc["tp"]), str(pc["fp"])]
        row.append(str(pc["fn"]))
        rows.append(row)
    lines += ["", "## Per class", ""]
    lines += _table(header, rows, "rllr" + "r" * (len(header) - 4))
    return "\n".join(lines) + "\n"


def _confusion_png(
    r: dict[str, Any], names: list[str], colors: np.ndarray | None, path: Path
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    cm = np.asarray(r["confusion"], dtype=np.float64)
    n = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    # Rows without ground truth stay 0 rather than NaN (and are labelled "no GT").
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)

    side = float(np.clip(0.45 * (n + 1) + 3.0, 6.0, 24.0))
    fig = Figure(figsize=(side + 1.5, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    # Colour strips and colour bar share the matrix's rows/columns through one divider.
    divider = make_axes_locatable(ax)
    fig.colorbar(im, cax=divider.append_axes("right", size=0.2, pad=0.15), label="share of GT row")

    col_names = [*names, "unknown"]
    row_names = [f"{name} (no GT)" if rows[k, 0] == 0 else name for k, name in enumerate(names)]
    font = 9 if n <= _MAX_ANNOTATED else 7
    ax_rows, ax_cols = ax, ax
    if colors is not None:
        rgb = np.clip(colors / 255.0, 0.0, 1.0)
        ax_rows = divider.append_axes("left", size=0.18, pad=0.04)
        ax_rows.imshow(rgb[:, None, :], aspect="auto", interpolation="nearest")
        ax_cols = divider.append_axes("bottom", size=0.18, pad=0.04)
        grey = np.full((1, 3), 0.6)  # the unknown column has no class colour
        ax_cols.imshow(np.vstack([rgb, grey])[None], aspect="auto", interpolation="nearest")
        ax.set_xticks(range(n + 1), [])
        ax.set_yticks(range(n), [])
        ax_rows.set_xticks([])
        ax_cols.set_yticks([])
    ax_cols.set_xticks(range(n + 1), col_names, rotation=60, ha="right", fontsize=font)
    ax_rows.set_yticks(range(n), row_names, fontsize=font)
    ax_cols.set_xlabel("prediction")
    ax_rows.set_ylabel("ground truth")
    ax.set_title(f"Confusion (row-normalised, all points) — mIoU {fmt_score(r.get('miou'))} %")
    # Separate the unknown column: it is not a class, only a way to be wrong.
    ax.axvline(n - 0.5, color="0.3", linewidth=1.0)

    if n <= _MAX_ANNOTATED:
        for i, j in zip(*np.nonzero(cm), strict=True):
            v = norm[i, j]
            ax.text(
                j,
                i,
                f"{100.0 * v:.0f}" if v >= 0.005 else "<1",
                ha="center",
                va="center",
                fontsize=font - 1,
                color="white" if v > 0.55 else "black",
            )
    fig.savefig(path, bbox_inches="tight", pad_inches=0.15)
