"""The ablation report from hand-made cell directories: statistics against hand-computed values,
well-formed CSV / LaTeX / markdown, the plots, and failed cells kept out of the numbers."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
from scipy import stats

from nlpx.ablate import report

# arm -> seed -> (val/mlm_loss, glue/mrpc task score); None: the cell failed
VALUES = {"base": {0: (1.0, 0.70), 1: (2.0, 0.72), 2: (4.0, 0.71)},
          "new": {0: (3.0, 0.80), 1: (5.0, 0.78), 2: (6.0, 0.79), 3: (8.0, 0.81)},
          "broken": {0: None, 1: (9.0, 0.5)}}


def make(root: Path) -> None:
    cells = []
    for arm, seeds in VALUES.items():
        for seed, v in seeds.items():
            home = root / "cells" / arm / f"seed{seed}-k{seed}"
            dirs = {"pretrain": home / "pretrain", "glue": home / "glue"}
            cells.append({"arm": arm, "seed": seed, "key": f"k{seed}", "stages": {},
                          "run_dirs": {k: str(d) for k, d in dirs.items()}})
            home.mkdir(parents=True)
            if v is None:
                (home / "cell.json").write_text(json.dumps({"status": "failed", "error": "RuntimeError: boom"}))
                continue
            dirs["pretrain"].mkdir()
            (dirs["pretrain"] / "summary.json").write_text(json.dumps(
                {"final": {"val/mlm_loss": v[0]}, "parameters": 1000, "tokens_seen": 500, "wall_seconds": 10.0,
                 "train_examples_per_s": 40.0}))
            (dirs["pretrain"] / "metrics.jsonl").write_text("".join(
                json.dumps({"step": s, "val/mlm_loss": v[0] + 10 - s}) + "\n" for s in (0, 5, 10)))
            dirs["glue"].mkdir()
            (dirs["glue"] / "results.json").write_text(json.dumps(
                {"tasks": [{"task": "mrpc", "status": "ok", "score": {"mean": v[1]},
                            "train_examples_per_s": {"mean": 100.0 + seed, "n": 1}},
                           {"task": "rte", "status": "ok", "score": {"mean": 0.5},
                            "train_examples_per_s": {"mean": 50.0, "n": 1}}],
                 "glue": {"score": {"mean": v[1]}}}))
            (home / "cell.json").write_text(json.dumps({"status": "done"}))
    (root / "plan.json").write_text(json.dumps({
        "experiment": "demo", "size": "smoke", "description": "a | test", "overrides": [], "baseline": "base",
        "arms": list(VALUES), "seeds": [0, 1, 2, 3], "metrics": ["val/mlm_loss", "glue/mrpc"],
        "stages": [{"name": "pretrain", "command": "train"}, {"name": "glue", "command": "eval glue"}],
        "cells": cells}))


def welch_by_hand(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se2 = va / len(a) + vb / len(b)
    t = (ma - mb) / math.sqrt(se2)
    df = se2 ** 2 / ((va / len(a)) ** 2 / (len(a) - 1) + (vb / len(b)) ** 2 / (len(b) - 1))
    return 2 * stats.t.sf(abs(t), df)


def test_statistics_equal_hand_computed_values(tmp_path):
    make(tmp_path)
    out = report.build(tmp_path)
    rows = {r["arm"]: r for r in out["rows"]}
    base, new = rows["base"]["metrics"]["val/mlm_loss"], rows["new"]["metrics"]["val/mlm_loss"]
    assert base["mean"] == pytest.approx(7 / 3) and base["std"] == pytest.approx(math.sqrt(7 / 3)) and base["n"] == 3
    assert new["mean"] == pytest.approx(5.5) and new["std"] == pytest.approx(math.sqrt(13 / 3)) and new["n"] == 4
    assert new["delta"] == pytest.approx(5.5 - 7 / 3)
    assert new["p"] == pytest.approx(welch_by_hand([3, 5, 6, 8], [1, 2, 4]), rel=1e-9)
    assert math.isnan(base["p"]) and math.isnan(base["delta"])
    # the failed cell is left out: one finished seed, no std and no test
    broken = rows["broken"]
    assert (broken["cells_done"], broken["cells_failed"]) == (1, 1)
    assert broken["metrics"]["val/mlm_loss"]["n"] == 1 and math.isnan(broken["metrics"]["val/mlm_loss"]["p"])
    # fine-tuning speed: the mean over tasks (mrpc 100 + seed, rte 50), then over seeds 0-3
    assert rows["new"]["compute"] == {"parameters": 1000, "tokens_seen": 500, "train_flops": 6 * 1000 * 500,
                                      "wall_seconds": 10.0, "finetune_examples_per_s": pytest.approx(75.75),
                                      "train_examples_per_s": 40.0}
    mrpc = rows["new"]["metrics"]["glue/mrpc"]
    assert mrpc["mean"] == pytest.approx(0.795) and report.mark(mrpc["p"]) in ("*", "**")


def test_report_files_are_well_formed(tmp_path):
    make(tmp_path)
    report.build(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"results.json", "results.csv", "results.md", "results.tex", "curve_val_mlm_loss.png",
            "bars_val_mlm_loss.png", "bars_glue_mrpc.png"} <= names
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["arm"] for r in rows] == ["base", "new", "broken"]
    assert float(rows[1]["val/mlm_loss mean"]) == pytest.approx(5.5) and rows[1]["val/mlm_loss n"] == "4"
    tex = (tmp_path / "results.tex").read_text()
    assert re.findall(r"\\begin\{(\w+)\}", tex) == list(reversed(re.findall(r"\\end\{(\w+)\}", tex)))
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1 and tex.count("{") == tex.count("}")
    md = (tmp_path / "results.md").read_text()
    assert "a | test" in md and "| **base** (baseline) |" in md
    assert "broken seed 0 (k0): failed — RuntimeError: boom" in md and "![curve_val_mlm_loss](curve_val_mlm_loss.png)" in md
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len({line.count(" | ") for line in table_lines if not line.startswith("|---")}) == 1


def test_report_without_a_run_is_a_user_error(tmp_path):
    from nlpx.errors import UserError

    with pytest.raises(UserError, match="no plan.json"):
        report.build(tmp_path)
