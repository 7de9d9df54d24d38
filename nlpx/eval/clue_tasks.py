"""The CLUE and FewCLUE task tables, their JSON-lines readers and their scoring.

The tables are data: conf/task/clue/_data/<task>.yaml and conf/task/fewclue/_data/<task>.yaml,
one file per task, plus `_benchmark.yaml` with what the tasks of a benchmark share (the README
there says what each key holds). They are read here with yaml alone when this module is imported.

Rules of the readers, each forced by the real files:
- lines end at "\\n" only (a trailing "\\r" is dropped): the IFLYTEK texts hold raw U+2028, at
  which str.splitlines() would break a JSON line in two;
- a UTF-8 BOM at the file start is dropped; blank lines are skipped (files end with or without
  a final newline);
- numeric labels (FewCLUE writes TNEWS 100 and IFLYTEK 10 as numbers, CLUE as strings) are read
  as their strings;
- a row whose label is in `skip_labels` (OCNLI's "-") is left out, and the count is reported;
  any other unknown label, a missing key or a CLUEWSC span that is not at its index is a
  UserError naming file:line, never skipped.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml
from sklearn.metrics import accuracy_score

from nlpx.data.jsonl import json_objects
from nlpx.errors import UserError
from nlpx.eval.glue_reader import Example
from nlpx.rundir import atomic_write_bytes

KINDS = ("single", "pair", "wsc", "choice")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class ClueTask:
    """One task of CLUE or FewCLUE: where its files lie, how a row becomes model input, how it is
    scored (accuracy: the metric of every CLUE and FewCLUE classification task)."""

    benchmark: str  # clue | fewclue
    name: str
    folders: tuple[str, ...]
    labels: tuple[str, ...] | None  # None: multiple choice (the label is the answer's position)
    input: dict = field(hash=False)
    splits: dict = field(hash=False)  # train/dev/test -> candidate file names
    reported: str = "dev"
    label_key: str = "label"
    id_keys: tuple[str, ...] = ("id", "idx")
    skip_labels: tuple[str, ...] = ()
    labels_file: str | None = None
    submission: str | None = None
    display_name: str | None = None  # the tables' name (default: the name in capitals)
    prompts: dict | None = field(default=None, hash=False, compare=False)  # zero-shot: nlpx.eval.prompts
    metrics: tuple[str, ...] = ("acc",)
    is_regression = False

    @property
    def display(self) -> str:
        return self.display_name or self.name.upper()

    @property
    def kind(self) -> str:
        return self.input["kind"]

    @property
    def is_choice(self) -> bool:
        return self.kind == "choice"

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(self.splits)

    @property
    def score_metrics(self) -> tuple[str, ...]:
        return self.metrics

    @property
    def submission_file(self) -> str:
        return self.submission or f"{self.name}_predict.json"

    def folder(self, data_dir) -> Path | None:
        for name in self.folders:
            if (Path(data_dir) / name).is_dir():
                return Path(data_dir) / name
        return None

    def file(self, data_dir, split: str) -> Path | None:
        folder = self.folder(data_dir)
        if folder is None:
            return None
        return next((folder / f for f in self.splits[split] if (folder / f).is_file()), None)

    def resolved(self, data_dir) -> "ClueTask":
        """The task with its label list read from labels_file (CSLDCP's labels_all.txt)."""
        if self.labels_file is None:
            return self
        path = self.folder(data_dir) / self.labels_file
        if not path.is_file():
            raise UserError(f"{path}: the label list of {self.benchmark} {self.name} is missing "
                            f"({self.labels_file}, one label a line)")
        from nlpx.data.files import text_lines

        labels = tuple(line.strip() for line in text_lines(path) if line.strip())
        if len(set(labels)) != len(labels):
            raise UserError(f"{path}: a label is listed twice")
        return replace(self, labels=labels)

    # -- scoring (the interface nlpx.finetune.module and nlpx.recipes.finetune call) ----------
    def split_metrics(self, score_as: str, predictions: Sequence, labels: Sequence) -> dict[str, float]:
        preds, gold = np.asarray(predictions), np.asarray(labels)
        if preds.shape != gold.shape or preds.ndim != 1 or len(preds) == 0:
            raise ValueError(f"{self.name}: need two equally long, non-empty 1-D sequences, "
                             f"got shapes {preds.shape} and {gold.shape}")
        return {"acc": float(accuracy_score(gold, preds))}

    def join_metrics(self, per_split: dict[str, dict]) -> dict[str, float]:
        return per_split[self.name]

    def score(self, metrics: dict[str, float]) -> float:
        return sum(metrics[m] for m in self.metrics) / len(self.metrics)

    def label_string(self, prediction) -> str:
        class_id = operator.index(prediction)  # a float here means logits were passed: TypeError
        return str(class_id) if self.labels is None else self.labels[class_id]

    def write_dev(self, out_dir, split, predictions: Sequence) -> Path:
        """One JSON object a line: id, prediction, label (label strings; answer positions for chid)."""
        examples, path = split.examples, Path(out_dir) / f"{split.task}.{split.name}.jsonl"
        if len(predictions) != len(examples):
            raise ValueError(f"{self.name}: {len(predictions)} predictions for {len(examples)} examples")
        lines = [json.dumps({"id": e.index, "prediction": self.label_string(p), "label": self.label_string(e.label)},
                            ensure_ascii=False) + "\n" for e, p in zip(examples, predictions)]
        atomic_write_bytes(Path(path), "".join(lines).encode("utf-8"))
        return Path(path)

    def write_test(self, out_dir, split, predictions: Sequence) -> Path:
        """The CLUE server's file: one {"id": ..., "label": ...} a line, in file order. chid's label
        is the answer's position among the candidates."""
        examples = split.examples
        if len(predictions) != len(examples):
            raise ValueError(f"{self.name}: {len(predictions)} predictions for {len(examples)} examples")
        label = (lambda p: operator.index(p)) if self.labels is None else self.label_string
        lines = [json.dumps({"id": e.index, "label": label(p)}, ensure_ascii=False) + "\n"
                 for e, p in zip(examples, predictions)]
        path = Path(out_dir) / self.submission_file
        atomic_write_bytes(path, "".join(lines).encode("utf-8"))
        return path


# -- reading ---------------------------------------------------------------------------------
def present_splits(task: ClueTask, folder) -> dict[str, list[str]]:
    """{"train": [...], "dev": [...], "test": [...]}: the splits of `task` whose file is there."""
    return {s: [s] if task.file(folder, s) is not None else [] for s in SPLITS}



@dataclass
class ReadSplit:
    examples: list[Example]
    skipped: int  # rows left out for a skip_labels label


def read_split(task: ClueTask, data_dir, split: str) -> ReadSplit:
    path = task.file(data_dir, split)
    if path is None:
        raise UserError(f"{data_dir}: no {task.benchmark} {task.name} {split} file "
                        f"(looked for {', '.join(f'{d}/{f}' for d in task.folders for f in task.splits[split])})")
    labelled = split != "test" or task.reported == "test"
    examples, skipped = [], 0
    for lineno, obj in json_objects(path, f"the keys of {task.benchmark} {task.name}"):
        where = f"{path}:{lineno}"
        label = None
        if labelled:
            if task.label_key not in obj:
                raise UserError(f"{where}: no key '{task.label_key}' (the label of {task.name})")
            raw = obj[task.label_key]
            text = str(raw) if isinstance(raw, (int, str)) and not isinstance(raw, bool) else None
            if text in task.skip_labels:
                skipped += 1
                continue
            label = _label_id(task, text, where)
        row = len(examples) + skipped
        index = next((obj[k] for k in task.id_keys if k in obj), row)
        guid = f"{task.name}-{split}-{row}"
        if task.is_choice:
            examples.append(_choice(task, obj, where, guid, label, index))
        else:
            text_a, text_b, parts = _texts(task, obj, where)
            examples.append(Example(guid, text_a, text_b, label, index, parts))
    if not examples:
        raise UserError(f"{path}: {task.benchmark} {task.name} {split} has no rows")
    return ReadSplit(examples, skipped)


def _label_id(task: ClueTask, text: str | None, where: str) -> int:
    if task.labels is None:  # multiple choice: the answer's position
        if text is None or not text.lstrip("-").isdigit():
            raise UserError(f"{where}: key '{task.label_key}' must be the answer's position (an integer)")
        return int(text)
    if text not in task.labels:
        shown = ", ".join(task.labels) if len(task.labels) <= 20 else f"{len(task.labels)} labels: {', '.join(task.labels[:5])}, ..."
        raise UserError(f"{where}: label {text!r} is not one of {task.name}'s ({shown})")
    return task.labels.index(text)


def _string(obj: dict, key: str, where: str, join: str | None = None) -> str:
    value = obj.get(key)
    if join is not None and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return join.join(value)
    if not isinstance(value, str):
        raise UserError(f"{where}: key '{key}' must be a string" + (" or a list of strings" if join else ""))
    return value


def _texts(task: ClueTask, obj: dict, where: str) -> tuple[str, str | None, dict | None]:
    """text_a, text_b and, for CLUEWSC, the row's checked spans (Example.parts)."""
    spec = task.input
    if task.kind == "single":
        return _string(obj, spec["text_a"], where), None, None
    if task.kind == "pair":
        join = spec.get("join")
        return _string(obj, spec["text_a"], where, join), _string(obj, spec["text_b"], where, join), None
    parts = wsc_parts(_string(obj, spec["text"], where), obj.get(spec["target"]), where)
    return _marked(parts), None, parts


def wsc_parts(text: str, target, where: str) -> dict:
    """CLUEWSC's text and its two spans, checked: {text, span1, span1_index, span2, span2_index}."""
    if not isinstance(target, dict):
        raise UserError(f"{where}: key 'target' must be an object with span1_text, span1_index, "
                        "span2_text, span2_index")
    spans = []
    for k in (1, 2):
        span, at = target.get(f"span{k}_text"), target.get(f"span{k}_index")
        if not isinstance(span, str) or not isinstance(at, int) or isinstance(at, bool):
            raise UserError(f"{where}: target.span{k}_text must be a string and target.span{k}_index an integer")
        if text[at:at + len(span)] != span:
            raise UserError(f"{where}: target.span{k}_text {span!r} is not at span{k}_index {at} of the text "
                            f"(found {text[at:at + len(span)]!r})")
        spans.append((at, at + len(span)))
    (_, a1), (b0, _) = sorted(spans)
    if a1 > b0:
        raise UserError(f"{where}: the two spans of target overlap")
    return {"text": text, **{f"span{k}": target[f"span{k}_text"] for k in (1, 2)},
            **{f"span{k}_index": target[f"span{k}_index"] for k in (1, 2)}}


def mark_wsc(text: str, target, where: str) -> str:
    """CLUEWSC's input as CLUE's baselines build it: the noun phrase (span1) between underscores,
    the pronoun (span2) between brackets, inside the text: "_伤口_ ... 把[它们]剔除"."""
    return _marked(wsc_parts(text, target, where))


def _marked(p: dict) -> str:
    text = p["text"]
    spans = [(p["span1_index"], p["span1_index"] + len(p["span1"]), "_", "_"),
             (p["span2_index"], p["span2_index"] + len(p["span2"]), "[", "]")]
    out = text
    for start, end, left, right in sorted(spans, reverse=True):  # the later span first: indices stay valid
        out = out[:start] + left + out[start:end] + right + out[end:]
    return out


def _choice(task: ClueTask, obj: dict, where: str, guid: str, label, index) -> Example:
    """A multiple-choice row: text_a holds one input per candidate (the text with it in the blank),
    as a tuple; text_b is None."""
    spec = task.input
    text = _string(obj, spec["text"], where)
    candidates = obj.get(spec["candidates"])
    if not isinstance(candidates, list) or len(candidates) < 2 or not all(isinstance(c, str) for c in candidates):
        raise UserError(f"{where}: key '{spec['candidates']}' must be a list of two or more strings")
    blank = spec["blank"]
    if text.count(blank) != 1:
        raise UserError(f"{where}: the text must hold the blank {blank!r} once (found {text.count(blank)})")
    if label is not None and not 0 <= label < len(candidates):
        raise UserError(f"{where}: answer {label} is not a position among the {len(candidates)} candidates")
    return Example(guid, tuple(text.replace(blank, c) for c in candidates), None, label, index,
                   {"text": text, "candidates": tuple(candidates), "blank": blank})


# -- the tables --------------------------------------------------------------------------------
def _tables_folder(benchmark: str) -> Path:
    from nlpx.config import conf_dir

    return conf_dir() / "task" / benchmark / "_data"


def _read(benchmark: str) -> tuple[dict, dict[str, ClueTask]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folder = _tables_folder(benchmark)
    shared = yaml.load((folder / "_benchmark.yaml").read_text(encoding="utf-8"), Loader=loader)
    raw = {p.stem: yaml.load(p.read_text(encoding="utf-8"), Loader=loader)
           for p in folder.glob("*.yaml") if not p.name.startswith("_")}
    tasks = {}
    for name, t in sorted(raw.items(), key=lambda kv: kv[1]["order"]):
        where = folder / f"{name}.yaml"
        if t["input"]["kind"] not in KINDS:
            raise ValueError(f"{where}: input.kind must be one of {', '.join(KINDS)}")
        labels = t.get("labels")
        if labels is not None and not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{where}: labels must be strings as the files write them (quote numbers)")
        tasks[name] = ClueTask(
            benchmark=benchmark, name=name, folders=tuple(t["folders"]),
            labels=None if labels is None else tuple(labels), input=dict(t["input"]),
            splits={s: tuple(f) for s, f in {**shared["splits"], **t.get("splits", {})}.items()},
            reported=t.get("reported", shared["reported"]), label_key=t.get("label", shared["label"]),
            id_keys=tuple(t.get("id", shared["id"])), skip_labels=tuple(t.get("skip_labels", ())),
            labels_file=t.get("labels_file"), submission=t.get("submission"),
            display_name=t.get("display"), prompts=t.get("prompts"))
        if tasks[name].labels is None and tasks[name].labels_file is None and not tasks[name].is_choice:
            raise ValueError(f"{where}: a classification task needs labels or labels_file")
    return shared, tasks


BENCHMARKS: dict[str, dict] = {}
TASKS: dict[str, dict[str, ClueTask]] = {}
for _name in ("clue", "fewclue"):
    BENCHMARKS[_name], TASKS[_name] = _read(_name)


def get_task(benchmark: str, name: str) -> ClueTask:
    try:
        return TASKS[benchmark][name]
    except KeyError:
        raise UserError(f"unknown {BENCHMARKS[benchmark]['title']} task '{name}' "
                        f"(valid: {', '.join(TASKS[benchmark])})") from None
