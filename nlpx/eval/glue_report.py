"""Benchmark results over seeds (GLUE, CLUE, FewCLUE: nlpx.eval.benchmarks) -> results.json / .csv
/ .md and the terminal table, leaderboard style.

One row per task: each official metric as mean ± std over seeds (x100, as the leaderboard), the
task score (mean of the task's metrics) with its mean ± std and median, the majority-class score
(a score that does not beat it is marked †), the seeds, and the kept epoch of each seed (with a
recipe search: the winning configuration's); then the benchmark score row (the GLUE score, ...),
and the protocol under the table.
"""

from __future__ import annotations

import csv
import io
import math

from nlpx.eval.glue_metrics import aggregate

DISPLAY = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
           "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
METRIC_NAMES = {"mcc": "MCC", "acc": "Acc", "f1": "F1", "pearson": "Pearson", "spearmanr": "Spearman",
                "acc_m": "Acc-m", "acc_mm": "Acc-mm"}

# why a task has no numbers
STATUS_TEXT = {"ok": "", "no data": "no data", "no train data": "dev present, no train split",
               "no dev data": "train present, no dev split"}


def task_row(task: str, results: list[dict]) -> dict:
    """Aggregate one task's per-seed results (each with metrics, score, epoch, seed)."""
    metrics = {name: aggregate([r["metrics"][name] for r in results]) for name in results[0]["metrics"]}
    return {"task": task, "status": "ok", "seeds": [r["seed"] for r in results],
            "metrics": metrics, "score": aggregate([r["score"] for r in results]),
            "epochs": [r["epoch"] for r in results],
            # the cost of the run's tricks shows here (nlpx.tricks): training speed, passes per step
            "train_examples_per_s": _speeds([r.get("train_examples_per_s") for r in results]),
            "tricks": results[0].get("tricks", {}).get("applied", []),
            "trick_settings": results[0].get("tricks", {}).get("settings", {}),
            "per_seed": [{"seed": r["seed"], "metrics": r["metrics"], "score": r["score"], "epoch": r["epoch"]}
                         for r in results]}


def _speeds(values: list) -> dict:
    values = [v for v in values if v]
    return aggregate(values) if values else {"mean": math.nan, "std": math.nan, "median": math.nan, "n": 0}


def at_most_majority(score: dict, majority: dict | None) -> bool:
    """A task (or GLUE) score whose mean does not beat the majority-class score: nothing learned."""
    return bool(majority) and math.isfinite(score["mean"]) and score["mean"] <= majority["score"] + 1e-12


def _bench(name: str = "glue"):
    from nlpx.eval.benchmarks import get_benchmark

    return get_benchmark(name)


def glue_row(rows: list[dict]) -> dict | None:
    return benchmark_row(_bench(), rows)


def benchmark_row(bench, rows: list[dict]) -> dict | None:
    """The benchmark score (the GLUE score, ...): the mean of the task scores' means over the tasks
    with numbers; its spread is that of the per-seed benchmark scores (seed k's mean over tasks),
    when all tasks share the seeds."""
    scored = {r["task"]: r["score"]["mean"] for r in rows if r["status"] == "ok" and r["task"] in bench.scored}
    if not scored:
        return None
    covered = [t for t in bench.scored if t in scored]
    mean = sum(scored[t] for t in covered) / len(covered)
    ok = [r for r in rows if r["task"] in covered]
    seeds = ok[0]["seeds"]
    per_seed = None
    if all(r["seeds"] == seeds for r in ok):
        per_seed = [sum(r["per_seed"][i]["score"] for r in ok) / len(ok) for i in range(len(seeds))]
    spread = aggregate(per_seed) if per_seed else {"std": math.nan, "median": math.nan, "n": len(seeds)}
    majority = None
    if all(r.get("majority") for r in ok):
        majority = {"score": sum(r["majority"]["score"] for r in ok) / len(ok)}
    return {"score": {**spread, "mean": mean}, "covered": covered,
            "missing": [t for t in bench.scored if t not in covered], "per_seed": per_seed, "majority": majority}


def protocol_lines(settings: dict, bench=None) -> list[str]:
    """settings: seeds, select, split, epochs {task: n}, from_mnli, submission_seed."""
    bench = bench or _bench()
    epochs = ", ".join(f"{bench.display(t)} {n}" for t, n in settings["epochs"].items())
    kept = "the epoch with the best dev task score" if settings["select"] == "best" else "the last epoch"
    lines = [f"Protocol: {settings['split']} split; seeds {', '.join(map(str, settings['seeds']))}; "
             f"mean ± sample std (ddof=1) and median over seeds; each seed keeps {kept} "
             f"({settings['select']} epoch); epochs: {epochs}.",
             f"Scores x100. {bench.protocol[0].upper()}{bench.protocol[1:]}."]
    if settings.get("from_mnli"):
        lines.append("RTE, MRPC and STS-B start from the MNLI-fine-tuned weights of the same seed "
                     "(eval.from_mnli=true).")
    lines.append(f"Majority: the score of predicting the training set's most frequent class for every "
                 f"{'dev' if bench.reported == 'dev' else 'test_public'} example"
                 + f" ({bench.majority_note})" + "; † marks a score that does not beat it.")
    search = settings.get("search")
    if search:
        space = "; ".join(f"{k} in {v}" for k, v in search["space"].items())
        lines.append(f"Recipe search ({search['from']}): {space}; every configuration x every seed; per task "
                     f"the configuration with the best median dev score is reported (Config); "
                     f"{settings['fine_tunings']} fine-tunings in all.")
    return lines


def plus_minus(agg: dict) -> str:
    """mean ± std x100, one decimal (nan where the mean is not finite)."""
    if not math.isfinite(agg["mean"]):
        return "nan"
    std = f" ± {100 * agg['std']:.1f}" if math.isfinite(agg.get("std", math.nan)) else ""
    return f"{100 * agg['mean']:.1f}{std}"


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the human table (markdown and terminal share them)."""
    bench = _bench(report.get("benchmark", "glue"))
    searched = bool(report["settings"].get("search"))
    header = ["Task", "Metrics (mean ± std)", "Score", "Median", "Majority", "Seeds", "Kept epoch"]
    header += ["Config"] if searched else []
    rows = []
    for r in report["tasks"]:
        name = bench.display(r["task"])
        if r["status"] != "ok":
            rows.append([name, STATUS_TEXT[r["status"]], "", "", "", "", ""] + [""] * searched)
            continue
        metrics = " / ".join(f"{METRIC_NAMES[m]} {plus_minus(a)}" for m, a in r["metrics"].items())
        majority = r.get("majority")
        mark = " †" if at_most_majority(r["score"], majority) else ""
        rows.append([name, metrics, plus_minus(r["score"]) + mark, f"{100 * r['score']['median']:.1f}",
                     f"{100 * majority['score']:.1f}" if majority else "",
                     str(len(r["seeds"])), ", ".join(f"{e:g}" for e in r["epochs"])]
                    + ([r["search"]["winner"]] if searched else []))
    g = report[bench.name]
    if g is not None:
        covers = (f"all {len(bench.scored)} tasks" if not g["missing"]
                  else ", ".join(bench.display(t) for t in g["covered"]))
        median = g["score"]["median"]
        majority = g.get("majority")
        mark = " †" if at_most_majority(g["score"], majority) else ""
        rows.append([f"{bench.title} score ({covers})", "", plus_minus(g["score"]) + mark,
                     f"{100 * median:.1f}" if math.isfinite(median) else "",
                     f"{100 * majority['score']:.1f}" if majority else "", "", ""] + [""] * searched)
    return header, rows


def to_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    bench = _bench(report.get("benchmark", "glue"))
    out = [f"# {bench.title} {_split(bench)} results: {report['model']}", "",
           "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    out += [""] + protocol_lines(report["settings"], bench)
    return "\n".join(out) + "\n"


def to_csv(report: dict) -> str:
    """One row per task (the benchmark score last): status, score and every metric as
    mean/std/median x100."""
    bench = _bench(report.get("benchmark", "glue"))
    metric_names = list(dict.fromkeys(m for t in bench.scored for m in bench.spec(t).score_metrics))
    fields = ["task", "status", "seeds", "score_mean", "score_std", "score_median", "majority_score", "config"]
    fields += [f"{m}_{s}" for m in metric_names for s in ("mean", "std", "median")]
    fields += ["kept_epochs"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()

    def scaled(agg, key):
        value = agg.get(key, math.nan)
        return "" if not math.isfinite(value) else f"{100 * value:.4f}"

    for r in report["tasks"]:
        row = {"task": r["task"], "status": r["status"]}
        if r["status"] == "ok":
            row.update(seeds=" ".join(map(str, r["seeds"])), kept_epochs=" ".join(f"{e:g}" for e in r["epochs"]),
                       majority_score=scaled(r["majority"], "score") if r.get("majority") else "",
                       config=r["search"]["winner"] if r.get("search") else "")
            for s in ("mean", "std", "median"):
                row[f"score_{s}"] = scaled(r["score"], s)
                for m, agg in r["metrics"].items():
                    row[f"{m}_{s}"] = scaled(agg, s)
        writer.writerow(row)
    g = report[bench.name]
    if g is not None:
        writer.writerow({"task": bench.name, "status": "covers " + " ".join(g["covered"]),
                         **{f"score_{s}": scaled(g["score"], s) for s in ("mean", "std", "median")},
                         "majority_score": scaled(g["majority"], "score") if g.get("majority") else ""})
    return buf.getvalue()


def print_table(report: dict) -> None:
    from nlpx.eval.console import print_table as show

    if "mode" in report:  # a zero-shot evaluation's report (nlpx.recipes.eval_zeroshot)
        from nlpx.eval.zeroshot_report import print_table as zeroshot

        return zeroshot(report)

    header, rows = table_rows(report)
    bench = _bench(report.get("benchmark", "glue"))
    show(f"{bench.title} {_split(bench)}: {report['model']}", header, rows,
         [*protocol_lines(report["settings"], bench), f"run directory: {report['run_dir']}"], left=2)


def _split(bench) -> str:
    return "dev" if bench.reported == "dev" else "test_public"

