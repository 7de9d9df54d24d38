"""The ablation report from hand-made cell directories: statistics against hand-computed values
(the paired t-test, Holm, the minimum detectable effect through the noncentral t), the majority
mark, well-formed CSV / LaTeX / markdown, the plots, and failed cells kept out of the numbers."""

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
                 "train_seconds": 4.0, "flops": {"per_token": 7000.0}, "train_examples_per_s": 40.0}))
            (dirs["pretrain"] / "metrics.jsonl").write_text("".join(
                json.dumps({"step": s, "val/mlm_loss": v[0] + 10 - s}) + "\n" for s in (0, 5, 10)))
            dirs["glue"].mkdir()
            (dirs["glue"] / "results.json").write_text(json.dumps(
                {"tasks": [{"task": "mrpc", "status": "ok", "score": {"mean": v[1] - 0.5, "median": v[1]},
                            "majority": {"score": 0.75}, "seeds": [seed],
                            "train_examples_per_s": {"mean": 100.0 + seed, "n": 1}},
                           {"task": "rte", "status": "ok", "score": {"mean": 0.5, "median": 0.5}, "seeds": [seed],
                            "train_examples_per_s": {"mean": 50.0, "n": 1}}],
                 "glue": {"score": {"mean": v[1]}, "majority": {"score": 0.6}},
                 "settings": {"fine_tunings": 6}}))
            (home / "cell.json").write_text(json.dumps({"status": "done"}))
    (root / "plan.json").write_text(json.dumps({
        "experiment": "demo", "size": "smoke", "description": "a | test", "overrides": [], "baseline": "base",
        "arms": list(VALUES), "seeds": [0, 1, 2, 3], "metrics": ["val/mlm_loss", "glue/mrpc"],
        "stages": [{"name": "pretrain", "command": "train"}, {"name": "glue", "command": "eval glue"}],
        "cells": cells}))


def paired_p_by_hand(diffs):
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    return 2 * stats.t.sf(abs(mean / (sd / math.sqrt(n))), n - 1), sd


def mde_by_hand(sd, n, alpha=0.05, power=0.8):
    """The d at which a two-sided one-sample t-test on n differences has the power: P(|T'| > t_crit)
    under the noncentral t with noncentrality d * sqrt(n)."""
    from scipy.optimize import brentq

    crit = stats.t.ppf(1 - alpha / 2, n - 1)

    def gap(d):
        nc = d * math.sqrt(n)
        lower = stats.nct.cdf(-crit, n - 1, nc)  # the far tail: ~0, and nan where scipy underflows
        return stats.nct.sf(crit, n - 1, nc) + (lower if math.isfinite(lower) else 0.0) - power

    return brentq(gap, 0.1, 20) * sd


def test_mde_and_holm_against_hand_and_statsmodels():
    from nlpx.ablate.stats import effect_size, holm, mde, seeds_needed

    assert effect_size(3) == pytest.approx(3.264, abs=1e-3)  # "about 3.3 standard deviations at n = 3"
    for n in (2, 3, 5, 10):
        assert mde(0.7, n) == pytest.approx(mde_by_hand(0.7, n), rel=1e-4)
    assert math.isnan(mde(0.7, 1))
    # Holm by hand: sorted p 0.01, 0.03, 0.04 times 3, 2, 1, kept monotone; nan is left out
    assert holm([0.01, 0.04, math.nan, 0.03]) == pytest.approx([0.03, 0.06, math.nan, 0.06], nan_ok=True)
    # seeds for Δ = sd / 2: the smallest n whose MDE is at most Δ
    n = seeds_needed(0.5, 1.0)
    assert mde(1.0, int(n)) <= 0.5 < mde(1.0, int(n) - 1)


def test_statistics_equal_hand_computed_values(tmp_path):
    make(tmp_path)
    out = report.build(tmp_path)
    rows = {r["arm"]: r for r in out["rows"]}
    base, new = rows["base"]["metrics"]["val/mlm_loss"], rows["new"]["metrics"]["val/mlm_loss"]
    assert base["mean"] == pytest.approx(7 / 3) and base["std"] == pytest.approx(math.sqrt(7 / 3)) and base["n"] == 3
    assert new["mean"] == pytest.approx(5.5) and new["std"] == pytest.approx(math.sqrt(13 / 3)) and new["n"] == 4
    # paired over the seeds both arms have (0, 1, 2): differences 2, 3, 2
    p, sd = paired_p_by_hand([2, 3, 2])
    assert new["n_pairs"] == 3 and new["delta"] == pytest.approx(7 / 3) and new["sd_diff"] == pytest.approx(sd)
    assert new["p"] == pytest.approx(p, rel=1e-9)
    assert new["p"] == pytest.approx(stats.ttest_rel([3, 5, 6], [1, 2, 4]).pvalue, rel=1e-12)
    assert new["p_holm"] == pytest.approx(p)  # the only arm with a test: Holm changes nothing
    assert new["mde"] == pytest.approx(mde_by_hand(sd, 3), rel=1e-4) and new["detectable"]
    assert math.isnan(base["p"]) and math.isnan(base["delta"])
    # the failed cell is left out: one finished seed, no std and no test
    broken = rows["broken"]
    assert (broken["cells_done"], broken["cells_failed"]) == (1, 1)
    assert broken["metrics"]["val/mlm_loss"]["n"] == 1 and math.isnan(broken["metrics"]["val/mlm_loss"]["p"])
    # fine-tuning speed: the mean over tasks (mrpc 100 + seed, rte 50), then over seeds 0-3
    assert rows["new"]["compute"] == {"parameters": 1000, "tokens_seen": 500, "train_flops": 6 * 1000 * 500,
                                      "flops_per_token": 7000.0, "wall_seconds": 10.0, "train_tokens_per_s": 125.0,
                                      "finetune_examples_per_s": pytest.approx(75.75),
                                      "train_examples_per_s": 40.0, "fine_tunings": 6}
    # a task's number is the median over its fine-tuning seeds; the majority score comes along
    mrpc = rows["new"]["metrics"]["glue/mrpc"]
    assert mrpc["mean"] == pytest.approx(0.795) and mrpc["majority"] == 0.75
    assert report.mark(mrpc["p_holm"]) in ("*", "**")
    assert report.cell_text(rows["base"]["metrics"]["glue/mrpc"]).endswith(" †")  # 0.71 <= 0.75
    assert not report.cell_text(mrpc).endswith("†")
    # the smallest observed delta per metric and the seeds to detect it
    needed = {n["metric"]: n for n in out["seeds_needed"]}
    # Δ = 7/3 at sd 0.577: the MDE is 1.88 at n = 3 but 6.67 at n = 2
    assert needed["val/mlm_loss"]["arm"] == "new" and needed["val/mlm_loss"]["seeds"] == 3


def test_a_delta_below_the_mde_is_not_a_finding():
    m = {"n": 3, "mean": 0.5, "std": 0.1, "delta": 0.01, "sd_diff": 0.05, "n_pairs": 3, "p": 0.76,
         "p_holm": 1.0, "mde": 0.163, "detectable": False, "majority": None}
    assert report.delta_text(m) == "+0.0100, below the detectable effect (MDE 0.1630; p=0.760, Holm 1.000)"
    m.update(delta=0.3, p=0.004, p_holm=0.008, detectable=True)
    assert report.delta_text(m) == "+0.3000** (p=0.004, Holm 0.008; MDE 0.1630)"


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
    assert "Majority-class scores (predicting the training set's most frequent class; STS-B 0): glue/mrpc 0.7500." in md
    assert "broken seed 0 (k0): failed — RuntimeError: boom" in md and "![curve_val_mlm_loss](curve_val_mlm_loss.png)" in md
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len({line.count(" | ") for line in table_lines if not line.startswith("|---")}) == 1


def test_report_without_a_run_is_a_user_error(tmp_path):
    from nlpx.errors import UserError

    with pytest.raises(UserError, match="no plan.json"):
        report.build(tmp_path)
