"""The benchmarks `nlpx eval <name>` fine-tunes on: GLUE, CLUE and FewCLUE.

One recipe (nlpx.recipes.eval_benchmark) runs every task x seed of any of them; what differs is here:
where the data lies (the data.* key), the task table, which split the table reports (GLUE and
CLUE: dev; FewCLUE: its labelled test_public, with the epoch chosen on dev_few_all), the tasks the
benchmark score averages, and the submission files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nlpx.errors import UserError


@dataclass(frozen=True)
class Benchmark:
    name: str  # glue | clue | fewclue: the command, the eval= option, the task group, the report key
    title: str
    data_key: str  # the data.* key naming the folder
    tasks: tuple[str, ...]  # the tasks fine-tuned on their own, in the benchmark's order
    scored: tuple[str, ...]  # the tasks the benchmark score averages
    reported: str  # dev | test: the split whose metrics the table reports
    protocol: str
    majority_note: str  # what the majority-class score is where it is not a class (the protocol line)
    fixes_data: bool  # the command sets data=<name> (GLUE's data=glue is objective=classify's own default)
    folder_hint: str  # what data.<data_key> should hold

    def pack(self, sub_dir: Path, submitted: dict[str, dict], zip_path: Path) -> Path:
        """Zip the submission files in sub_dir ({file name: {"task": ...}}) in the benchmark's order."""
        from nlpx.eval.glue_submission import pack_files

        return pack_files(sub_dir, sorted(submitted, key=lambda f: self.tasks.index(submitted[f]["task"])), zip_path)

    def spec(self, task: str):
        raise NotImplementedError

    def display(self, task: str) -> str:
        raise NotImplementedError

    def folder(self, cfg) -> Path:
        if self.data_key not in cfg.data:
            raise UserError(f"`nlpx eval {self.name}` reads data.{self.data_key}: give data={self.name}")
        return Path(str(cfg.data[self.data_key]))

    def present(self, folder: Path, task: str) -> dict[str, list[str]]:
        """{"train": [...], "dev": [...], "test": [...]}: the splits of `task` whose data is there."""
        raise NotImplementedError

    def reported_names(self, task: str) -> dict[str, str]:
        """{split: the name it is scored under} of the splits the table reports."""
        raise NotImplementedError

    def resolved(self, spec, folder: Path):
        """The task's spec with what its folder holds (CSLDCP's label list)."""
        return spec

    def read(self, spec, folder: Path, split: str) -> list:
        raise NotImplementedError

    def reported_splits(self, data) -> list:
        """The splits of a TaskData whose metrics the table reports."""
        return data.test if self.reported == "test" else data.dev


def majority_score(spec, train_labels: Sequence, gold: dict[str, Sequence]) -> dict | None:
    """The score of a classifier that predicts the training set's most frequent class (the lowest
    id on a tie) for every example of the reported splits, with the task's own metrics: what a
    fine-tuned model must beat to have learned anything. gold: {score_as: gold labels}. A
    regression task's constant prediction has no correlation: its score is 0 by definition (scipy
    would give nan). A multiple-choice task has no classes: None (its chance level is 1/choices)."""
    if spec.is_regression:
        metrics = {m: 0.0 for m in spec.join_metrics({k: {m: 0.0 for m in spec.metrics} for k in gold})}
        return {"score": 0.0, "metrics": metrics, "prediction": None}
    if spec.labels is None:
        return None
    counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=len(spec.labels))
    label = int(counts.argmax())
    per_split = {name: spec.split_metrics(name, np.full(len(g), label), np.asarray(g)) for name, g in gold.items()}
    metrics = spec.join_metrics(per_split)
    return {"score": spec.score(metrics), "metrics": metrics, "prediction": spec.labels[label]}


class Glue(Benchmark):
    def pack(self, sub_dir: Path, submitted: dict[str, dict], zip_path: Path) -> Path:
        from nlpx.eval.glue_submission import pack_submission

        return pack_submission(sub_dir, zip_path=zip_path)  # the GLUE server's file order, AX included

    def spec(self, task: str):
        from nlpx.eval.glue_tasks import get_task

        return get_task(task)

    def display(self, task: str) -> str:
        from nlpx.eval.glue_report import DISPLAY

        return DISPLAY[task]

    def present(self, folder: Path, task: str) -> dict[str, list[str]]:
        from nlpx.eval.glue_reader import present_splits

        return present_splits(folder, task)

    def reported_names(self, task: str) -> dict[str, str]:
        from nlpx.eval.glue_reader import dev_split_names

        return dev_split_names(task)

    def read(self, spec, folder: Path, split: str) -> list:
        from nlpx.eval.glue_reader import read_split

        return read_split(folder, spec.name, split)


class Clue(Benchmark):
    """CLUE and FewCLUE: tables in conf/task/<name>/_data (nlpx.eval.clue_tasks)."""

    def reported_names(self, task: str) -> dict[str, str]:
        return {self.reported: task}

    def resolved(self, spec, folder: Path):
        return spec.resolved(folder)

    def read(self, spec, folder: Path, split: str) -> list:
        from nlpx.eval.clue_tasks import read_split

        return read_split(spec, folder, split).examples

    def spec(self, task: str):
        from nlpx.eval.clue_tasks import get_task

        return get_task(self.name, task)

    def display(self, task: str) -> str:
        return self.spec(task).display

    def present(self, folder: Path, task: str) -> dict[str, list[str]]:
        from nlpx.eval.clue_tasks import present_splits

        return present_splits(self.spec(task), folder)


def chance_and_majority(spec, examples) -> dict:
    """What a zero-shot accuracy is read against: chance, the expected accuracy of a uniform random
    guess among each example's candidates (1 / labels; ChID: 1 / candidates), and majority, the
    share of the commonest gold label (answer position) in these examples: the best constant
    prediction, known only in hindsight."""
    counts = [len(e.parts["candidates"]) if e.parts and "candidates" in e.parts else len(spec.labels)
              for e in examples]
    gold = np.asarray([e.label for e in examples])
    _, freq = np.unique(gold, return_counts=True)
    return {"chance": float(np.mean([1.0 / n for n in counts])), "majority": float(freq.max() / len(gold))}


def _glue() -> Benchmark:
    from nlpx.eval.glue_metrics import GLUE_TASKS, PROTOCOL

    return Glue("glue", "GLUE", "glue_dir", GLUE_TASKS, GLUE_TASKS, "dev", PROTOCOL,
                "STS-B: 0, a constant has no correlation", False,
                "official layout or the HF nyu-mll/glue layout saved on disk")


def _clue(name: str) -> Benchmark:
    from nlpx.eval.clue_tasks import BENCHMARKS, TASKS

    b = BENCHMARKS[name]
    names = tuple(TASKS[name])
    split = "dev" if b["reported"] == "dev" else "test_public"
    protocol = f"task score = accuracy on {split}; {b['title']} score = mean over the tasks present (listed)"
    return Clue(name, b["title"], b["data_dir"], names, names, b["reported"], protocol,
                "none for multiple choice: chance is 1 / candidates", True, "one folder per task")


BENCHMARKS = {"glue": _glue, "clue": lambda: _clue("clue"), "fewclue": lambda: _clue("fewclue")}


def get_benchmark(name: str) -> Benchmark:
    return BENCHMARKS[name]()
