"""The ablation report (runs/ablate/<name>/): results.{json,csv,md,tex}, plots, a terminal table.

Built only from what is on disk (plan.json, each cell's cell.json and its stages' run
directories), so `nlpx ablate NAME --report` rebuilds it at any time without running anything.

Per arm and metric: mean, sample std (ddof=1) and n over the seeds whose cell is done. Against
the baseline arm, over the seeds both have (the unit is a seed: arms share seeds, hence
initialisation and data order): the mean paired difference Δ, the paired t-test's p-value
(scipy's ttest_rel), Holm-corrected across the arms compared with the baseline (* p_Holm < 0.05,
** < 0.01), and the minimum detectable effect (nlpx.ablate.stats): a |Δ| below it is "below the
detectable effect", no finding either way. GLUE metrics carry the majority-class score; † marks
an arm whose mean does not beat it. Compute columns, means over the arm's cells: parameters,
tokens seen in pretraining, estimated training FLOPs (6 × parameters × tokens, the usual
dense-transformer estimate: forward + backward; it ignores attention's sequence-length term and
counts the vocabulary projection at every position, so it overestimates MLM, which projects only
the masked positions), fine-tunings run (every configuration of a recipe search counts) and wall
time of all stages.

Metric names: `val/...` (or any key of the pretraining summary's `final`) from the `train`
stage; `glue/score` and `glue/<task>` (the task score: the median over the cell's fine-tuning
seeds of the winning configuration) from an `eval glue` stage; `sts/<data>` (Spearman x100, e.g.
`sts/stsb-dev`) and `sts/<data>/pearson` from an `eval sts` stage; `mlm/L<length>/loss`, `/acc` and
`/entropy` (the mean over layers of the mean attention entropy) from an `eval mlm` stage.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

from nlpx.ablate import stats
from nlpx.errors import UserError
from nlpx.rundir import atomic_write_bytes, atomic_write_json, atomic_write_text

# finetune_examples_per_s: fine-tuning training speed, mean over the GLUE tasks (a trick's cost);
# train_examples_per_s: the train stage's examples/s where it counts examples (embedding runs);
# train_tokens_per_s: pretraining tokens / training seconds; flops_per_token: the model FLOPs per
# token the run counted (torch's FLOP counter over one step: attention and the vocabulary
# projection included where they are computed, unlike the 6 x parameters estimate)
COMPUTE = ("parameters", "tokens_seen", "train_flops", "flops_per_token", "wall_seconds", "train_tokens_per_s",
           "finetune_examples_per_s", "train_examples_per_s", "fine_tunings")
MAJORITY = "majority:"  # a cell value's prefix: the majority-class score of metric glue/...


# -- reading ----------------------------------------------------------------------------------
def load_plan(root: Path) -> dict:
    path = Path(root) / "plan.json"
    if not path.is_file():
        raise UserError(f"{root}: no plan.json (nothing has run yet: nlpx ablate NAME runs it)")
    return json.loads(path.read_text())


def _stage_dirs(plan: dict, cell: dict) -> dict[str, tuple[str, Path]]:
    return {s["name"]: (s["command"], Path(cell["run_dirs"][s["name"]])) for s in plan["stages"]}


def cell_values(plan: dict, cell: dict) -> dict:
    """{metric: value} and compute numbers of one finished cell, read from its stages."""
    out: dict = {"wall_seconds": 0.0}
    for command, run_dir in _stage_dirs(plan, cell).values():
        if command == "train":
            summary = json.loads((run_dir / "summary.json").read_text())
            out.update({k: float(v) for k, v in summary["final"].items()})
            params, tokens = summary.get("parameters"), summary.get("tokens_seen")
            out.update(parameters=params, tokens_seen=tokens,
                       train_flops=6.0 * params * tokens if params and tokens else None)
            out["wall_seconds"] += float(summary.get("wall_seconds", 0.0))
            out["train_examples_per_s"] = summary.get("train_examples_per_s")
            seconds = summary.get("train_seconds")
            out["train_tokens_per_s"] = tokens / seconds if tokens and seconds else None
            out["flops_per_token"] = (summary.get("flops") or {}).get("per_token")
        elif command == "eval mlm":
            results = json.loads((run_dir / "results.json").read_text())
            for row in results["lengths"]:
                out[f"mlm/L{row['length']}/loss"] = row["mlm_loss"]
                out[f"mlm/L{row['length']}/acc"] = row["mlm_acc"]
                if row.get("attention_entropy"):
                    out[f"mlm/L{row['length']}/entropy"] = sum(row["attention_entropy"]) / len(row["attention_entropy"])
        elif command == "eval sts":
            results = json.loads((run_dir / "results.json").read_text())
            for row in results["datasets"]:
                out[f"sts/{row['name']}"] = row["spearman"]
                out[f"sts/{row['name']}/pearson"] = row["pearson"]
        else:
            results = json.loads((run_dir / "results.json").read_text())
            glue = results.get("glue")
            if glue:
                out["glue/score"] = glue["score"]["mean"]
                if glue.get("majority"):
                    out[f"{MAJORITY}glue/score"] = glue["majority"]["score"]
            speeds = []
            for row in results["tasks"]:
                if row.get("status") == "ok":
                    out[f"glue/{row['task']}"] = row["score"]["median"]
                    if row.get("majority"):
                        out[f"{MAJORITY}glue/{row['task']}"] = row["majority"]["score"]
                    if row.get("train_examples_per_s", {}).get("n"):
                        speeds.append(row["train_examples_per_s"]["mean"])
            out["fine_tunings"] = (out.get("fine_tunings") or 0) + results["settings"].get(
                "fine_tunings", sum(len(r["seeds"]) for r in results["tasks"] if r.get("status") == "ok"))
            out["finetune_examples_per_s"] = sum(speeds) / len(speeds) if speeds else None
            summary = run_dir / "summary.json"
            if summary.is_file():
                out["wall_seconds"] += float(json.loads(summary.read_text()).get("wall_seconds", 0.0))
    return out


def curves(plan: dict, cell: dict, metric: str) -> list[tuple[int, float]]:
    """(step, value) of `metric` over pretraining, from the train stage's metrics.jsonl."""
    for command, run_dir in _stage_dirs(plan, cell).values():
        path = run_dir / "metrics.jsonl"
        if command == "train" and path.is_file():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line]
            return [(int(r["step"]), float(r[metric])) for r in rows if metric in r]
    return []


def collect(root: Path) -> tuple[dict, list[dict]]:
    """The plan and, per planned cell, its status record with its values when done."""
    plan = load_plan(root)
    cells = []
    for cell in plan["cells"]:
        home = Path(next(iter(cell["run_dirs"].values()))).parent
        record_path = home / "cell.json"
        record = json.loads(record_path.read_text()) if record_path.is_file() else {"status": "not run"}
        entry = {"arm": cell["arm"], "seed": cell["seed"], "key": cell["key"], "status": record["status"],
                 "error": record.get("error")}
        if record["status"] == "done":
            entry["values"] = cell_values(plan, cell)
        cells.append(entry)
    return plan, cells


# -- statistics -------------------------------------------------------------------------------
def summarise(values: list[float]) -> dict:
    n = len(values)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return {"mean": mean, "std": std, "n": n}


def mark(p: float) -> str:
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def aggregate(plan: dict, cells: list[dict]) -> list[dict]:
    """One row per arm (plan order): per metric mean/std/n; against the baseline the paired
    statistics (nlpx.ablate.stats.paired) with Holm's p across the arms; the majority score."""
    baseline = plan["baseline"]
    by_arm = {arm: [c for c in cells if c["arm"] == arm and c["status"] == "done"] for arm in plan["arms"]}

    def values(arm: str, metric: str) -> dict[int, float]:
        return {c["seed"]: c["values"][metric] for c in by_arm[arm]
                if c["values"].get(metric) is not None and math.isfinite(c["values"][metric])}

    rows = [{"arm": arm, "baseline": arm == baseline, "cells_done": len(by_arm[arm]),
             "cells_failed": sum(1 for c in cells if c["arm"] == arm and c["status"] == "failed"),
             "metrics": {}, "compute": {key: summarise(list(values(arm, key).values()))["mean"] for key in COMPUTE}}
            for arm in plan["arms"]]
    for metric in plan["metrics"]:
        base = values(baseline, metric)
        for row in rows:
            mine = values(row["arm"], metric)
            compared = stats.paired(mine, base) if not row["baseline"] else {
                "delta": math.nan, "sd_diff": math.nan, "n_pairs": 0, "p": math.nan, "mde": math.nan}
            majority = list(values(row["arm"], MAJORITY + metric).values())
            row["metrics"][metric] = {**summarise(list(mine.values())), **compared,
                                      "majority": statistics.fmean(majority) if majority else None}
        adjusted = stats.holm([r["metrics"][metric]["p"] for r in rows])
        for row, p_holm in zip(rows, adjusted):
            m = row["metrics"][metric]
            m["p_holm"] = p_holm
            m["detectable"] = stats.detectable(m["delta"], m["mde"])
    return rows


def seeds_needed(plan: dict, rows: list[dict]) -> list[dict]:
    """Per metric: the smallest |Δ| observed against the baseline and the seeds a paired test
    would need to detect it at that arm's sd of differences (α = 0.05, power 0.8)."""
    out = []
    for metric in plan["metrics"]:
        compared = [(r["arm"], r["metrics"][metric]) for r in rows
                    if not r["baseline"] and math.isfinite(r["metrics"][metric]["delta"])]
        if not compared:
            continue
        arm, m = min(compared, key=lambda x: abs(x[1]["delta"]))
        out.append({"metric": metric, "arm": arm, "delta": m["delta"], "sd_diff": m["sd_diff"],
                    "seeds": stats.seeds_needed(m["delta"], m["sd_diff"])})
    return out


# -- writing ----------------------------------------------------------------------------------
def _num(x: float, digits: int = 4) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _big(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def cell_text(m: dict, digits: int = 4) -> str:
    if m["n"] == 0:
        return "–"
    std = f" ± {_num(m['std'], digits)}" if math.isfinite(m["std"]) else ""
    below = " †" if m.get("majority") is not None and m["mean"] <= m["majority"] + 1e-12 else ""
    return f"{_num(m['mean'], digits)}{std} (n={m['n']}){below}"


def delta_text(m: dict, digits: int = 4) -> str:
    if not math.isfinite(m["delta"]):
        return "baseline" if m["n"] else "–"
    delta = f"{m['delta']:+.{digits}f}"
    if not math.isfinite(m["mde"]):
        return delta  # fewer than 2 shared seeds: no test, no MDE
    p = f"p={m['p']:.3f}, Holm {m['p_holm']:.3f}" if math.isfinite(m["p"]) else "p=nan"
    if not m["detectable"]:
        return f"{delta}, below the detectable effect (MDE {m['mde']:.{digits}f}; {p})"
    return f"{delta}{mark(m['p_holm'])} ({p}; MDE {m['mde']:.{digits}f})"


def to_csv(plan: dict, rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["arm", "baseline", "cells_done", "cells_failed"]
    fields = ("mean", "std", "n", "delta", "sd_diff", "n_pairs", "p", "p_holm", "mde", "detectable", "majority")
    for metric in plan["metrics"]:
        header += [f"{metric} {f}" for f in fields]
    header += list(COMPUTE)
    w.writerow(header)
    for r in rows:
        line = [r["arm"], r["baseline"], r["cells_done"], r["cells_failed"]]
        for metric in plan["metrics"]:
            line += [r["metrics"][metric][f] for f in fields]
        line += [r["compute"][k] for k in COMPUTE]
        w.writerow(line)
    return buf.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(plan: dict, rows: list[dict], cells: list[dict], plots: list[str], needed: list[dict]) -> str:
    lines = [f"# {plan['experiment']} (size {plan['size']})", "", plan.get("description", ""), ""]
    header = ["arm", *plan["metrics"], "parameters", "tokens", "train FLOPs (est.)", "FLOPs/token", "fine-tunings",
              "wall s", "train tokens/s", "fine-tune ex/s", "train ex/s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        name = f"**{r['arm']}** (baseline)" if r["baseline"] else r["arm"]
        metrics = [f"{cell_text(r['metrics'][m])}<br>{delta_text(r['metrics'][m])}" for m in plan["metrics"]]
        c = r["compute"]
        lines.append("| " + " | ".join([_md_escape(name), *metrics, _big(c["parameters"]), _big(c["tokens_seen"]),
                                         _big(c["train_flops"]), _big(c["flops_per_token"]),
                                         _num(c["fine_tunings"], 0), _num(c["wall_seconds"], 0),
                                         _num(c["train_tokens_per_s"], 0),
                                         _num(c["finetune_examples_per_s"], 1),
                                         _num(c["train_examples_per_s"], 1)]) + " |")
    lines += ["", "Mean ± sample std (ddof=1) over seeds (n = finished cells). Second line: Δ, the mean "
              f"difference to the baseline arm ({plan['baseline']}) over the seeds both have (a seed is the "
              "unit: arms share seeds, initialisation and data order); the paired t-test's p (scipy ttest_rel) "
              "and its Holm correction across the arms compared with the baseline (* p_Holm < 0.05, "
              "** < 0.01); MDE, the minimum detectable effect: the |Δ| a two-sided paired t-test at "
              "α = 0.05 detects with power 0.8 given the standard deviation of the paired differences "
              "and n (statsmodels TTestPower). A |Δ| below it is reported as below the detectable effect, "
              "not as a finding. † the mean does not beat the majority-class score. "
              "Train FLOPs: 6 × parameters × pretraining tokens; FLOPs/token: counted by the run (attention "
              "and the vocabulary projection where computed). "
              f"Seeds: {', '.join(map(str, plan['seeds']))}.", ""]
    majority = {m: next((r["metrics"][m]["majority"] for r in rows if r["metrics"][m].get("majority") is not None),
                        None) for m in plan["metrics"]}
    if any(v is not None for v in majority.values()):
        lines += ["Majority-class scores (predicting the training set's most frequent class; STS-B 0): "
                  + ", ".join(f"{m} {v:.4f}" for m, v in majority.items() if v is not None) + ".", ""]
    failed = [c for c in cells if c["status"] != "done"]
    if failed:
        lines += ["Cells not in the table:", ""]
        lines += [f"- {c['arm']} seed {c['seed']} ({c['key']}): {c['status']}"
                  + (f" — {c['error']}" if c.get("error") else "") for c in failed]
        lines.append("")
    lines += [f"![{Path(p).stem}]({p})" for p in plots]
    if needed:
        lines += ["", "Seeds needed to detect the smallest Δ observed (paired t-test, α = 0.05, power 0.8, "
                  "at that arm's standard deviation of the differences):", ""]
        lines += [f"- {n['metric']}: Δ = {n['delta']:+.4f} ({_md_escape(n['arm'])}): "
                  + (f"{n['seeds']:.0f} seeds" if math.isfinite(n["seeds"]) else
                     "not estimable (no spread of the differences, or Δ = 0)") for n in needed]
    overrides = " ".join(plan.get("overrides") or [])
    lines += ["", f"Command: `nlpx ablate {plan['experiment']} --size {plan['size']}"
              + (f" {overrides}" if overrides else "") + "`", ""]
    return "\n".join(lines)


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("^", r"\^{}"), ("~", r"\~{}")):
        text = text.replace(a, b)
    return text


def to_latex(plan: dict, rows: list[dict]) -> str:
    cols = "l" + "r" * (len(plan["metrics"]) + 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(["Arm", *(_tex_escape(m) for m in plan["metrics"]), "FLOPs"]) + r" \\", r"\midrule"]
    for r in rows:
        cells = []
        for metric in plan["metrics"]:
            m = r["metrics"][metric]
            if m["n"] == 0:
                cells.append("--")
                continue
            std = rf" $\pm$ {_num(m['std'], 3)}" if math.isfinite(m["std"]) else ""
            sig = rf"$^{{{mark(m['p_holm'])}}}$" if mark(m["p_holm"]) else ""
            cells.append(f"{_num(m['mean'], 3)}{std}{sig}")
        name = _tex_escape(r["arm"]) + (" (base)" if r["baseline"] else "")
        lines.append(" & ".join([name, *cells, _big(r["compute"]["train_flops"])]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{_tex_escape(plan['experiment'])}: mean $\pm$ std over seeds; "
              r"$^{*}$ $p<0.05$, $^{**}$ $p<0.01$ (paired t-test over seeds against the baseline, "
              r"Holm-corrected across arms).}", r"\end{table}", ""]
    return "\n".join(lines)


def plot(plan: dict, cells: list[dict], rows: list[dict], root: Path) -> list[str]:
    """curve_<metric>.png (mean over seeds, min-max band, per arm) for the headline pretraining
    metric; bars_<metric>.png (mean ± std) for every metric. Returns the files, relative to root."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    headline = next((m for m in plan["metrics"] if m.startswith("val/")), None)
    by_cell = {(c["arm"], c["seed"]): c for c in cells}
    if headline:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for arm in plan["arms"]:
            series = [dict(curves(plan, pc, headline)) for pc in plan["cells"]
                      if pc["arm"] == arm and by_cell[(arm, pc["seed"])]["status"] == "done"]
            steps = sorted(set().union(*series)) if series else []
            steps = [s for s in steps if all(s in c for c in series)]
            if not steps:
                continue
            ys = [[c[s] for c in series] for s in steps]
            mean = [sum(v) / len(v) for v in ys]
            line, = ax.plot(steps, mean, label=arm)
            ax.fill_between(steps, [min(v) for v in ys], [max(v) for v in ys], alpha=0.2, color=line.get_color())
        ax.set_xlabel("step")
        ax.set_ylabel(headline)
        ax.set_title(f"{plan['experiment']}: {headline} (mean over seeds, min–max band)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        files.append(_save(fig, root, f"curve_{_slug(headline)}.png"))
        plt.close(fig)
    for metric in plan["metrics"]:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        arms = [r["arm"] for r in rows]
        means = [r["metrics"][metric]["mean"] for r in rows]
        stds = [r["metrics"][metric]["std"] if math.isfinite(r["metrics"][metric]["std"]) else 0.0 for r in rows]
        ax.bar(range(len(arms)), [m if math.isfinite(m) else 0.0 for m in means], yerr=stds, capsize=4,
               color=["tab:gray" if r["baseline"] else "tab:blue" for r in rows])
        ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(metric)
        ax.set_title(f"{plan['experiment']}: {metric} (mean ± std over seeds; gray: baseline)")
        fig.tight_layout()
        files.append(_save(fig, root, f"bars_{_slug(metric)}.png"))
        plt.close(fig)
    return files


def _slug(metric: str) -> str:
    return metric.replace("/", "_")


def _save(fig, root: Path, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(root / name, buf.getvalue())
    return name


def build(root: Path) -> dict:
    """Write every report file from what exists under root; returns results.json's content."""
    root = Path(root)
    plan, cells = collect(root)
    rows = aggregate(plan, cells)
    needed = seeds_needed(plan, rows)
    plots = plot(plan, cells, rows, root)
    report = {"experiment": plan["experiment"], "size": plan["size"], "baseline": plan["baseline"],
              "metrics": plan["metrics"], "seeds": plan["seeds"], "test": "paired t-test over shared seeds "
              "(two-sided, scipy ttest_rel) against the baseline arm, Holm-corrected across arms; MDE at "
              "alpha 0.05, power 0.8 (statsmodels TTestPower)", "flops": "6 x parameters x pretraining tokens",
              "rows": rows, "seeds_needed": needed, "cells": cells, "plots": plots}
    atomic_write_json(root / "results.json", report)
    atomic_write_text(root / "results.csv", to_csv(plan, rows))
    atomic_write_text(root / "results.md", to_markdown(plan, rows, cells, plots, needed))
    atomic_write_text(root / "results.tex", to_latex(plan, rows))
    return report


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['experiment']} ({report['size']})")
    table.add_column("arm")
    for metric in report["metrics"]:
        table.add_column(metric, justify="right")
    for r in report["rows"]:
        table.add_row(r["arm"] + (" (baseline)" if r["baseline"] else ""),
                      *(f"{cell_text(r['metrics'][m])}\n{delta_text(r['metrics'][m])}" for m in report["metrics"]))
    Console().print(table)
