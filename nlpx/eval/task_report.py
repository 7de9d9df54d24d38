"""One task's results over seeds (`nlpx eval ner | qa`) -> results.json / .csv / .md and the terminal table.

Each metric as mean ± sample std and median over seeds (x100), on the reported split: the labelled
test split when the task has one (each seed's epoch kept on dev, whose score is given beside it),
else dev. The main metrics (eval.metrics) make the table; the others (NER's per-type F1) a second one.
"""

from __future__ import annotations

import csv
import io
import math

from nlpx.eval.glue_metrics import aggregate
from nlpx.eval.glue_report import plus_minus

TITLES = {"ner": "NER", "qa": "QA"}


def build_report(command: str, cfg, model_path, run_dir, data, results: list[dict]) -> dict:
    labelled_test = [s.name for s in data.test if s.score_as is not None]
    split = labelled_test[0] if labelled_test else "dev"
    per_seed = [r["test_metrics"][split] if labelled_test else r["metrics"] for r in results]
    names = list(per_seed[0])
    t = cfg.task
    return {
        "command": command, "task": str(t.name), "model": str(model_path), "run_dir": str(run_dir),
        "split": split, "kept_on": "dev",
        "metrics": {m: aggregate([p[m] for p in per_seed]) for m in names},
        "main": [m for m in cfg.eval.metrics if m in names],
        "score": aggregate([data.spec.score(p) for p in per_seed]),
        "dev_score": aggregate([r["score"] for r in results]),
        "per_seed": [{"seed": r["seed"], "metrics": p, "dev_score": r["score"], "epoch": r["epoch"],
                      "train_examples_per_s": r.get("train_examples_per_s")} for r, p in zip(results, per_seed)],
        "settings": {"seeds": [r["seed"] for r in results], "objective": _objective(cfg),
                     "tricks": results[0]["tricks"]["applied"],
                     "trick_settings": results[0]["tricks"].get("settings", {}), "lr": cfg.optim.lr,
                     "epochs": int(cfg.budget.max_epochs), "max_steps": cfg.budget.max_steps,
                     "batch_size": int(t.batch_size), "bucket_window": int(t.bucket_window),
                     "max_length": int(t.max_length), "select": str(t.select),
                     "train_examples": results[0]["train_examples"],
                     "truncated": {s.name: int(getattr(s.encoded, "truncated", 0))
                                   for s in [data.train, *data.dev, *data.test]}},
        "protocol": _protocol(command, split, cfg),
    }


def _tricks(settings: dict) -> str:
    """rdrop (alpha 1.0, reduction token): each trick with the keys it read."""
    keys = settings.get("trick_settings", {})
    return ", ".join(f"{n} ({', '.join(f'{k} {v}' for k, v in keys[n].items())})" if keys.get(n) else n
                     for n in settings["tricks"])


def _objective(cfg) -> str:
    o = cfg.objective
    return f"{o.name} ({o.head} head)" if "head" in o else str(o.name)


def _protocol(command: str, split: str, cfg) -> list[str]:
    kept = "the epoch with the best dev score" if cfg.task.select == "best" else "the last epoch"
    what = {"ner": "entity-level micro precision / recall / F1 by the CoNLL rule (an entity counts when its "
                   "type and both ends are right; scored against every gold entity, cut-off words included)",
            "qa": "exact match and F1 by the task's official rules (max over the gold answers)"}[command]
    return [f"Reported split: {split}; each seed keeps {kept}; mean ± sample std (ddof=1) and median over seeds "
            f"{', '.join(str(s) for s in cfg.eval.seeds)}; scores x100.", f"Metrics: {what}."]


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    main = report["main"]
    header = ["Task", "Split"] + [m for m in main] + ["Median " + main[-1], "Dev score", "Seeds", "Kept epoch"]
    row = [report["task"], report["split"]] + [plus_minus(report["metrics"][m]) for m in main]
    row += [f"{100 * report['metrics'][main[-1]]['median']:.1f}", plus_minus(report["dev_score"]),
            str(len(report["per_seed"])), ", ".join(f"{p['epoch']:g}" for p in report["per_seed"])]
    return header, [row]


def other_rows(report: dict) -> list[list[str]]:
    return [[m, plus_minus(a)] for m, a in report["metrics"].items() if m not in report["main"]]


def to_markdown(report: dict) -> str:
    header, rows = table_rows(report)
    out = [f"# {TITLES[report['command']]} {report['task']} ({report['settings']['objective']}): {report['model']}", "",
           "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    others = other_rows(report)
    if others:
        out += ["", "| Metric | mean ± std |", "|---|---|"] + [f"| {m} | {v} |" for m, v in others]
    s = report["settings"]
    out += ["", *report["protocol"],
            f"Settings: lr {s['lr']}, {s['epochs']} epochs, batch {s['batch_size']} (bucket window "
            f"{s['bucket_window']}), max length {s['max_length']}, tricks [{_tricks(s)}], "
            f"{s['train_examples']} training examples."]
    return "\n".join(out) + "\n"


def to_csv(report: dict) -> str:
    """One row per metric: mean, std, median (x100)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["task", "split", "metric", "mean", "std", "median", "seeds"])
    for m, a in report["metrics"].items():
        writer.writerow([report["task"], report["split"], m] + [f"{100 * a[k]:.4f}" if math.isfinite(a[k]) else ""
                                                                 for k in ("mean", "std", "median")]
                        + [" ".join(str(p["seed"]) for p in report["per_seed"])])
    return buf.getvalue()


def print_table(report: dict) -> None:
    from nlpx.eval.console import print_table as show

    header, rows = table_rows(report)
    others = other_rows(report)
    lines = [*report["protocol"]]
    if others:
        lines.insert(0, "Also: " + "; ".join(f"{m} {v}" for m, v in others))
    show(f"{TITLES[report['command']]} {report['task']}: {report['model']}", header, rows,
         [*lines, f"run directory: {report['run_dir']}"], left=2)
