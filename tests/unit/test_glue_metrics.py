"""GLUE metrics equal scikit-learn/scipy exactly; scores follow the documented protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from nlpx.errors import UserError
from nlpx.eval.glue_metrics import (GLUE_TASKS, PROTOCOL, aggregate, glue_score, mnli_metrics, task_metrics,
                                    task_score)

N = 300


def random_classes(seed: int, n_classes: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, N)
    # agree on about 70%, so the metrics are far from 0 and from chance
    preds = np.where(rng.random(N) < 0.7, labels, rng.integers(0, n_classes, N))
    return preds.tolist(), labels.tolist()


@pytest.mark.parametrize("task", ["sst2", "qnli", "rte", "wnli"])
def test_accuracy_tasks_equal_sklearn(task):
    preds, labels = random_classes(1, 2)
    assert task_metrics(task, preds, labels) == {"acc": float(accuracy_score(labels, preds))}


@pytest.mark.parametrize("task", ["mnli_m", "mnli_mm"])
def test_mnli_splits_are_three_class_accuracy(task):
    preds, labels = random_classes(2, 3)
    assert set(preds) == {0, 1, 2}
    assert task_metrics(task, preds, labels) == {"acc": float(accuracy_score(labels, preds))}


def test_cola_and_ax_mcc_equal_sklearn():
    preds, labels = random_classes(3, 2)
    assert task_metrics("cola", preds, labels) == {"mcc": float(matthews_corrcoef(labels, preds))}
    preds, labels = random_classes(4, 3)
    assert task_metrics("ax", preds, labels) == {"mcc": float(matthews_corrcoef(labels, preds))}


@pytest.mark.parametrize("task", ["mrpc", "qqp"])
def test_f1_tasks_equal_sklearn(task):
    preds, labels = random_classes(5, 2)
    assert task_metrics(task, preds, labels) == {"f1": float(f1_score(labels, preds)),
                                                 "acc": float(accuracy_score(labels, preds))}


def test_stsb_correlations_equal_scipy():
    rng = np.random.default_rng(6)
    labels = rng.uniform(0, 5, N)
    preds = labels + rng.normal(0, 1, N)
    assert task_metrics("stsb", preds.tolist(), labels.tolist()) == {
        "pearson": float(pearsonr(preds, labels)[0]), "spearmanr": float(spearmanr(preds, labels)[0])}


def test_hand_computed_values_pin_positive_class_and_argument_order():
    # preds [1,1,1,0] vs gold [1,0,1,1]: tp=2 fp=1 fn=1 -> f1 = 4/6, acc = 2/4
    assert task_metrics("mrpc", [1, 1, 1, 0], [1, 0, 1, 1]) == pytest.approx({"f1": 2 / 3, "acc": 0.5}, abs=1e-15)
    # tp=1 fp=1 tn=2 fn=0 -> mcc = (1*2 - 1*0) / sqrt(2*1*3*2)
    assert task_metrics("cola", [1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx({"mcc": 2 / math.sqrt(12)}, abs=1e-15)
    # ranks agree, values not linear: spearman 1, pearson below 1
    out = task_metrics("stsb", [1.0, 2.0, 10.0], [1.0, 2.0, 3.0])
    assert out["spearmanr"] == pytest.approx(1.0, abs=1e-15) and out["pearson"] < 0.95


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="class ids 0..1"):
        task_metrics("sst2", [0, 2], [0, 1])
    with pytest.raises(ValueError, match="class ids 0..2"):
        task_metrics("mnli_m", [0, 1], [0, -1])
    with pytest.raises(ValueError, match="class ids"):
        task_metrics("sst2", [0.0, 1.0], [0, 1])
    with pytest.raises(ValueError, match="equally long"):
        task_metrics("sst2", [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="equally long"):
        task_metrics("sst2", [], [])
    with pytest.raises(ValueError, match="finite"):
        task_metrics("stsb", [1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(UserError, match="'mnli_m' \\(dev_matched\\) and 'mnli_mm'"):
        task_metrics("mnli", [0], [0])
    with pytest.raises(UserError, match="unknown GLUE task 'sts-b'"):
        task_metrics("sts-b", [0.0], [0.0])


def test_task_scores_are_means_of_the_task_metrics():
    assert task_score("cola", {"mcc": 0.5}) == 0.5
    assert task_score("mrpc", {"f1": 0.8, "acc": 0.7}) == pytest.approx(0.75, abs=1e-15)
    assert task_score("stsb", {"pearson": 0.8, "spearmanr": 0.9}) == pytest.approx(0.85, abs=1e-15)
    mnli = mnli_metrics({"acc": 0.8}, {"acc": 0.82})
    assert mnli == {"acc_m": 0.8, "acc_mm": 0.82}
    assert task_score("mnli", mnli) == pytest.approx(0.81, abs=1e-15)


def test_task_score_needs_exactly_the_task_metrics():
    with pytest.raises(ValueError, match="exactly the metrics f1, acc, got acc"):
        task_score("mrpc", {"acc": 0.7})
    with pytest.raises(ValueError, match="got acc, f1, mcc"):
        task_score("mrpc", {"f1": 0.8, "acc": 0.7, "mcc": 0.1})
    with pytest.raises(UserError, match="half of MNLI"):
        task_score("mnli_m", {"acc": 0.8})


def test_glue_score_hand_example_with_mnli_once_and_a_missing_task():
    scores = {"cola": task_score("cola", {"mcc": 0.5}),
              "sst2": task_score("sst2", {"acc": 0.9}),
              "mrpc": task_score("mrpc", {"f1": 0.8, "acc": 0.7}),
              "stsb": task_score("stsb", {"pearson": 0.8, "spearmanr": 0.9}),
              "mnli": task_score("mnli", mnli_metrics({"acc": 0.8}, {"acc": 0.82})),
              "ax": 0.3}  # AX is excluded
    score, covered = glue_score(scores)
    assert score == pytest.approx((0.5 + 0.9 + 0.75 + 0.85 + 0.81) / 5, abs=1e-15)
    assert score == pytest.approx(0.762, abs=1e-12)
    assert covered == ["cola", "sst2", "mrpc", "stsb", "mnli"]  # GLUE order; qqp, qnli, rte, wnli missing


def test_glue_score_rejects_mnli_halves_unknown_tasks_and_nothing():
    with pytest.raises(UserError, match="give MNLI once as 'mnli'"):
        glue_score({"mnli_m": 0.8, "mnli_mm": 0.82})
    with pytest.raises(UserError, match="unknown GLUE task 'squad'"):
        glue_score({"squad": 0.8})
    with pytest.raises(ValueError, match="AX does not count"):
        glue_score({"ax": 0.3})
    assert GLUE_TASKS == ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


def test_aggregate_hand_computed():
    out = aggregate([1.0, 2.0, 4.0])
    # mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9 over n-1 = 2 -> variance 7/3
    assert out == pytest.approx({"mean": 7 / 3, "std": math.sqrt(7 / 3), "median": 2.0, "n": 3}, abs=1e-15)
    assert aggregate([1.0, 2.0, 3.0, 10.0])["median"] == 2.5
    assert aggregate([0.7]) == {"mean": 0.7, "std": 0.0, "median": 0.7, "n": 1}
    with pytest.raises(ValueError, match="no values"):
        aggregate([])


def test_protocol_text():
    assert PROTOCOL == ("task score = mean of the task's metrics; MNLI = mean of matched and mismatched "
                        "accuracy, counted once; GLUE score = mean over the tasks present (listed); AX excluded")


def test_majority_class_scores_by_hand():
    from nlpx.eval.glue_metrics import majority_score

    # MRPC: the training set's majority is class 1; on dev [1, 0, 1, 1] that is acc 3/4 and
    # F1 = 2 * (3/4 precision) * (1 recall) / (3/4 + 1) = 6/7
    m = majority_score("mrpc", [0, 1, 1], {"mrpc": [1, 0, 1, 1]})
    assert m["prediction"] == "1" and m["metrics"] == pytest.approx({"acc": 0.75, "f1": 6 / 7})
    assert m["score"] == pytest.approx((0.75 + 6 / 7) / 2)
    # a tie takes the lowest id; CoLA's MCC of a constant prediction is 0
    assert majority_score("sst2", [0, 1], {"sst2": [0, 0, 1]})["score"] == pytest.approx(2 / 3)
    assert majority_score("cola", [1, 1, 0], {"cola": [1, 0, 1]})["score"] == 0.0
    # MNLI: one class for both dev splits, scored once as the mean of the two accuracies
    mnli = majority_score("mnli", [2, 2, 0], {"mnli_m": [2, 0, 1, 2], "mnli_mm": [0, 1]})
    assert mnli["metrics"] == {"acc_m": 0.5, "acc_mm": 0.0} and mnli["score"] == 0.25
    # STS-B: a constant has no correlation; the baseline is 0 by definition
    assert majority_score("stsb", [0.5, 3.0], {"stsb": [1.0, 2.0]}) == \
        {"score": 0.0, "metrics": {"pearson": 0.0, "spearmanr": 0.0}, "prediction": None}
