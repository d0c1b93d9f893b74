"""The tables of scripts/experiments_label_efficiency.py: the per-seed table's shares and
mean, and the generated section replacing only its own block of the document."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "experiments_label_efficiency", ROOT / "scripts" / "experiments_label_efficiency.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _work(tmp: Path, seed: int, full: float, otoc: float | None) -> Path:
    work = tmp / f"s{seed}"
    work.mkdir()
    rows = [{"name": "full supervision, class-balanced CE", "miou": full},
            {"name": "OTOC round 3", "miou": otoc}]  # fmt: skip
    (work / "results98.json").write_text(json.dumps({"seed": seed, "rows": rows}))
    return work


def test_seed_table_shares_and_mean(script, tmp_path: Path) -> None:
    works = [_work(tmp_path, 0, 0.688, 0.612), _work(tmp_path, 1, 0.731, 0.649)]
    lines = script.seed_table(works, "results98.json")
    row = next(line for line in lines if line.startswith("| OTOC round 3 |"))
    # 61.2 / 68.8 = 88.95 %, 64.9 / 73.1 = 88.78 %: the mean keeps one decimal
    assert row == "| OTOC round 3 | 61.2 (89 %) | 64.9 (89 %) | 88.9 |"
    assert "| seed 0 | seed 1 |" in lines[2]
    # A seed without a result shows "-" and stays out of the mean.
    works.append(_work(tmp_path, 2, 0.727, None))
    row = next(x for x in script.seed_table(works, "results98.json") if "OTOC" in x)
    assert row.endswith("| - | 88.9 |")


def test_write_section_replaces_only_its_block(script, tmp_path: Path) -> None:
    doc = tmp_path / "experiments.md"
    doc.write_text(f"# Experiments\n\nbefore\n\n{script.START}\nold\n{script.END}\n\nafter\n")
    script.write_section(doc, "new table\n")
    text = doc.read_text()
    assert "before" in text and "after" in text and "old" not in text
    assert f"{script.START}\nnew table\n{script.END}" in text
    fresh = tmp_path / "fresh.md"
    script.write_section(fresh, "t")
    assert fresh.read_text().startswith("# Experiments") and script.END in fresh.read_text()
