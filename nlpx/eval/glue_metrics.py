"""Official GLUE metrics, computed offline with scikit-learn and scipy (no metric downloads).

The formulas and argument orders are those of the GLUE leaderboard as reproduced by the
Hugging Face ``glue`` metric: accuracy, binary F1 of class 1, Matthews correlation, Pearson and
Spearman of (predictions, labels). Values are on the [0, 1] scale; tables multiply by 100.

Task names are the reader's short names, except that MNLI is evaluated per dev split as
"mnli_m" (dev_matched) and "mnli_mm" (dev_mismatched); ``mnli_metrics`` joins their accuracies
into the metrics {"acc_m", "acc_mm"} of the one task "mnli", which the GLUE score counts once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from nlpx.errors import UserError
from nlpx.eval.glue_tasks import TASKS

PROTOCOL = ("task score = mean of the task's metrics; MNLI = mean of matched and mismatched accuracy, "
            "counted once; GLUE score = mean over the tasks present (listed); AX excluded")

MNLI_SPLITS = {"mnli_m": "dev_matched", "mnli_mm": "dev_mismatched"}

# metric names per evaluated task, from the task table (MNLI expanded to its two dev splits)
METRICS: dict[str, tuple[str, ...]] = {
    name: t.metrics for t in TASKS.values() for name in (MNLI_SPLITS if t.name == "mnli" else (t.name,))}

# the metrics a task score averages
SCORE_METRICS: dict[str, tuple[str, ...]] = {
    t.name: (("acc_m", "acc_mm") if t.name == "mnli" else t.metrics) for t in TASKS.values()}

GLUE_TASKS = tuple(t.name for t in TASKS.values() if t.in_glue_score)

_FUNCS = {
    "acc": lambda p, y: accuracy_score(y, p),
    "f1": lambda p, y: f1_score(y, p),  # binary, positive class 1 (the "paraphrase"/"duplicate" class)
    "mcc": lambda p, y: matthews_corrcoef(y, p),
    # a constant prediction gives nan (with scipy's warning): the correlation is undefined and a
    # made-up number would hide that the model collapsed
    "pearson": lambda p, y: pearsonr(p, y)[0],
    "spearmanr": lambda p, y: spearmanr(p, y)[0],
}


def task_metrics(task: str, predictions: Sequence, labels: Sequence) -> dict[str, float]:
    """The official metrics of one evaluated task: class ids (or STS-B scores) against gold labels."""
    names = _metric_names(task)
    preds, gold = np.asarray(predictions), np.asarray(labels)
    if preds.shape != gold.shape or preds.ndim != 1 or len(preds) == 0:
        raise ValueError(f"{task}: need two equally long, non-empty 1-D sequences, "
                         f"got shapes {preds.shape} and {gold.shape}")
    spec = TASKS["mnli" if task in MNLI_SPLITS else task]
    if spec.is_regression:
        if not (np.isfinite(preds.astype(float)).all() and np.isfinite(gold.astype(float)).all()):
            raise ValueError(f"{task}: predictions and labels must be finite numbers")
    else:
        # out-of-range ids would be scored as extra classes without any complaint from sklearn
        n = len(spec.labels)
        for what, arr in (("predictions", preds), ("labels", gold)):
            if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= n:
                raise ValueError(f"{task}: {what} must be class ids 0..{n - 1} ({', '.join(spec.labels)})")
    return {name: float(_FUNCS[name](preds, gold)) for name in names}


def mnli_metrics(matched: dict[str, float], mismatched: dict[str, float]) -> dict[str, float]:
    """The metrics of task "mnli" from task_metrics("mnli_m", ...) and task_metrics("mnli_mm", ...)."""
    return {"acc_m": matched["acc"], "acc_mm": mismatched["acc"]}


def task_score(task: str, metrics: dict[str, float]) -> float:
    """Mean of the task's metrics; exactly those metrics must be given (a partial mean would mislead)."""
    if task in MNLI_SPLITS:
        raise UserError(f"GLUE task score: '{task}' is half of MNLI; score task 'mnli' with "
                        "metrics acc_m and acc_mm (mean of matched and mismatched accuracy)")
    if task not in SCORE_METRICS:
        raise UserError(f"unknown GLUE task '{task}' (valid: {', '.join(SCORE_METRICS)})")
    expected = SCORE_METRICS[task]
    if set(metrics) != set(expected):
        raise ValueError(f"{task}: task score needs exactly the metrics {', '.join(expected)}, "
                         f"got {', '.join(sorted(metrics)) or 'none'}")
    return sum(metrics[name] for name in expected) / len(expected)


def glue_score(task_scores: dict[str, float]) -> tuple[float, list[str]]:
    """Mean of the task scores present, and the tasks it covers in GLUE order; AX is ignored."""
    for task in task_scores:
        if task in MNLI_SPLITS:
            raise UserError(f"GLUE score: got '{task}'; give MNLI once as 'mnli' "
                            "(mean of matched and mismatched accuracy)")
        if task not in TASKS:
            raise UserError(f"unknown GLUE task '{task}' (valid: {', '.join(TASKS)})")
    covered = [t for t in GLUE_TASKS if t in task_scores]
    if not covered:
        raise ValueError("GLUE score: no GLUE task scores given (AX does not count)")
    return sum(task_scores[t] for t in covered) / len(covered), covered


def majority_score(task: str, train_labels: Sequence, dev: dict[str, Sequence]) -> dict:
    """The majority-class score of GLUE task `task` (nlpx.eval.benchmarks.majority_score). dev:
    {score_as: gold labels} of the task's dev splits (mnli_m and mnli_mm for MNLI)."""
    from nlpx.eval.benchmarks import majority_score as score

    return score(TASKS[task], train_labels, dev)


def aggregate(values: Sequence[float]) -> dict:
    """mean, std, median and n over seeds. std is the sample std (ddof=1) and 0.0 for a single
    value, where it is undefined: a table shows "± 0.0" for one seed rather than nan."""
    if len(values) == 0:
        raise ValueError("aggregate: no values")
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "median": float(np.median(arr)),
            "n": len(arr)}


def _metric_names(task: str) -> tuple[str, ...]:
    if task == "mnli":
        raise UserError("GLUE metrics: evaluate MNLI per dev split as 'mnli_m' (dev_matched) "
                        "and 'mnli_mm' (dev_mismatched)")
    try:
        return METRICS[task]
    except KeyError:
        raise UserError(f"unknown GLUE task '{task}' for metrics (valid: {', '.join(METRICS)})") from None
