"""Multi-label classification tasks (task=multilabel/jsonl, task=multilabel/synthetic): each
example has a set of labels; the model has one sigmoid output per label.

- jsonl: one object per line with the text (`task.text_field`, optionally `task.pair_field`)
  and a list of label names (`task.labels_field`); the label set is task.label_names or the
  sorted union of the training file's labels. A malformed line is a UserError naming the file,
  the line and the key.
- synthetic: documents of the synthetic language (nlpx.data.synthetic, as data=synthetic) whose
  labels are their topics: topic j is present with probability base_rate * (j + 1)^-skew, so
  label frequencies are skewed (the setting ASL was made for), and the text has sentences of
  each present topic. Fixed by task.generator_seed.

Metrics (scikit-learn): micro and macro F1 at task.threshold, and mAP (macro average precision
over the labels with a positive in the split, the ASL paper's metric), which is the task score.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlpx.data.jsonl import json_objects
from nlpx.errors import UserError
from nlpx.eval.glue_reader import Example

@dataclass(frozen=True)
class MultiLabelSpec:
    name: str
    labels: tuple[str, ...]
    threshold: float = 0.5  # a label is predicted when its probability reaches this (task.threshold)
    is_regression = False
    multilabel = True

    # -- scoring (the interface nlpx.finetune.module and nlpx.recipes.finetune call) ----------
    def split_metrics(self, score_as: str, probabilities, labels) -> dict[str, float]:
        return multilabel_metrics(probabilities, labels, self.threshold)

    def join_metrics(self, per_split: dict[str, dict]) -> dict[str, float]:
        return per_split[self.name]

    def score(self, metrics: dict[str, float]) -> float:
        return metrics["map"]

    def write_dev(self, out_dir, split, probabilities) -> Path:
        return write_predictions(Path(out_dir) / f"{split.task}.{split.name}.jsonl", self, split.examples,
                                 probabilities, self.threshold)

    write_test = write_dev


def read_jsonl(path: str | Path, *, text_field: str, pair_field: str | None, labels_field: str,
               need_labels: bool = True) -> list[tuple[str, str | None, list[str] | None]]:
    """(text, pair, label names) per line; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file does not exist")
    rows = []
    for number, obj in json_objects(path, f"'{text_field}' and '{labels_field}'"):
        where = f"{path}:{number}"
        text = obj.get(text_field)
        if not isinstance(text, str):
            raise UserError(f"{where}: key '{text_field}' must be a string (task.text_field)")
        pair = None
        if pair_field:
            pair = obj.get(pair_field)
            if not isinstance(pair, str):
                raise UserError(f"{where}: key '{pair_field}' must be a string (task.pair_field)")
        labels = obj.get(labels_field)
        if labels is None and not need_labels:
            rows.append((text, pair, None))
            continue
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise UserError(f"{where}: key '{labels_field}' must be a list of label names "
                            "(task.labels_field)")
        rows.append((text, pair, labels))
    if not rows:
        raise UserError(f"{path}: no examples")
    return rows


def multi_hot(rows, labels: tuple[str, ...], path: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    out = np.zeros((len(rows), len(labels)), dtype=np.float32)
    for r, (_, _, names) in enumerate(rows):
        for name in names:
            if name not in index:
                raise UserError(f"{path}: label '{name}' is not in task.label_names (valid: {', '.join(labels)})")
            out[r, index[name]] = 1.0
    return out


def synthetic_rows(n: int, *, num_labels: int, skew: float, base_rate: float, seed: int,
                   split: str) -> list[tuple[str, None, list[str]]]:
    from nlpx.data.synthetic import SyntheticLanguage

    language = SyntheticLanguage(num_labels)
    rates = [base_rate * (j + 1) ** -skew for j in range(num_labels)]
    rng = random.Random(f"{seed}:{split}")
    rows = []
    for _ in range(n):
        present = [j for j in range(num_labels) if rng.random() < rates[j]]
        if not present:  # every example has a label: one drawn with the same skew
            present = rng.choices(range(num_labels), weights=rates)
        sentences = [language.sentence(rng, j) for j in present for _ in range(rng.randint(1, 2))]
        rng.shuffle(sentences)
        rows.append((" ".join(sentences), None, [f"topic{j}" for j in present]))
    return rows


def multilabel_metrics(probabilities, targets, threshold: float = 0.5) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, f1_score

    probs, gold = np.asarray(probabilities, dtype=np.float64), np.asarray(targets)
    if probs.shape != gold.shape or probs.ndim != 2:
        raise ValueError(f"multi-label metrics need [examples, labels] arrays, got {probs.shape} and {gold.shape}")
    preds = (probs >= threshold).astype(int)
    present = gold.sum(0) > 0
    return {"micro_f1": float(f1_score(gold, preds, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(gold, preds, average="macro", zero_division=0)),
            "map": float(average_precision_score(gold[:, present], probs[:, present], average="macro"))}


def load_jsonl(t, tokenizer, *, data=None, with_test: bool = True):
    """TaskData of task=multilabel/jsonl (its `_target_`): task.train, task.dev[, task.test]."""
    splits: dict[str, tuple[list, str]] = {}
    for name in ("train", "dev", "test"):
        if t.get(name):
            splits[name] = (read_jsonl(t[name], text_field=str(t.text_field), pair_field=t.get("pair_field"),
                                       labels_field=str(t.labels_field), need_labels=name != "test"),
                            str(t[name]))
    for name in ("train", "dev"):
        if name not in splits:
            raise UserError(f"task.{name}: a jsonl file is needed for a multi-label task")
    labels = tuple(t.label_names) if t.get("label_names") else tuple(
        sorted({x for _, _, names in splits["train"][0] for x in names}))
    return _task_data(t, tokenizer, splits, labels)


def load_synthetic(t, tokenizer, *, data=None, with_test: bool = True):
    """TaskData of task=multilabel/synthetic (its `_target_`): train and dev from task.generator_seed."""
    splits = {name: (synthetic_rows(n, num_labels=int(t.num_labels), skew=float(t.skew), base_rate=float(t.base_rate),
                                    seed=int(t.generator_seed), split=name), f"synthetic {name}")
              for name, n in (("train", int(t.train_size)), ("dev", int(t.dev_size)))}
    return _task_data(t, tokenizer, splits, tuple(f"topic{j}" for j in range(int(t.num_labels))))


def _task_data(t, tokenizer, splits: dict[str, tuple[list, str]], labels: tuple[str, ...]):
    """{split: (rows, where they came from)} -> TaskData (a test split only where there is one)."""
    from nlpx.data.encode import encode_examples
    from nlpx.finetune.data import Split, TaskData
    from nlpx.finetune.subset import train_subset

    if t.get("max_train_examples"):
        rows, where = splits["train"]
        keep = train_subset(len(rows), int(t.max_train_examples), int(t.subset_seed))
        splits["train"] = ([rows[i] for i in keep], where)

    def split(name: str) -> Split:
        rows, where = splits[name]
        examples = [Example(f"{t.name}-{name}-{i}", text, pair, None, i) for i, (text, pair, _) in enumerate(rows)]
        encoded = encode_examples(examples, tokenizer, max_length=int(t.max_length))
        if rows[0][2] is not None:
            encoded.labels = multi_hot(rows, labels, where)
        return Split(str(t.name), name, str(t.name) if name == "dev" else None, examples, encoded)

    spec = MultiLabelSpec(str(t.name), labels, float(t.threshold))
    return TaskData(spec, split("train"), [split("dev")], [split("test")] if "test" in splits else [], [])


def write_predictions(path: Path, spec: MultiLabelSpec, examples, probabilities, threshold: float) -> Path:
    """One JSON object per example, file order: row, predicted labels, per-label probabilities."""
    from nlpx.rundir import atomic_write_text

    lines = [json.dumps({"row": e.index, "labels": [spec.labels[j] for j in np.flatnonzero(p >= threshold)],
                         "probabilities": [round(float(x), 6) for x in p]})
             for e, p in zip(examples, np.asarray(probabilities))]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
