"""The GLUE task table: where each task's files lie and which columns hold the texts and labels.

The table is data: conf/task/glue/_data/<task>.yaml, one file per task (its README there says what
each key holds), read here with yaml alone when this module is imported. The layout is the one
the GLUE download produces (``glue_dir/CoLA/train.tsv``, ``glue_dir/MNLI/dev_matched.tsv``,
``glue_dir/diagnostic/diagnostic.tsv``, ...). Columns are named, never numbered: files with a
header row are read by header name because column positions differ between splits of one task
(MNLI train has 12 columns, dev 16, test 10), and the one family without a header row (CoLA
train/dev) gets its column names from its file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nlpx.errors import UserError


@dataclass(frozen=True)
class SplitSpec:
    """One split of a task: its file and the columns to read.

    ``columns`` is None when the file starts with a header row; otherwise the file has no
    header and ``columns`` names its fixed columns, in file order.
    """

    name: str
    files: tuple[str, ...]  # candidate file names inside the task folder; the first present wins
    text_a: str
    text_b: str | None = None
    label: str | None = None  # None: unlabelled split (the test sets)
    index: str | None = None  # the index column the GLUE submission files are keyed by
    columns: tuple[str, ...] | None = None

    @property
    def has_header(self) -> bool:
        return self.columns is None


@dataclass(frozen=True)
class TaskSpec:
    name: str  # short name used everywhere in nlpx (cola, sst2, ...)
    folders: tuple[str, ...]  # candidate folder names under glue_dir; the first present wins
    splits: tuple[SplitSpec, ...]
    labels: tuple[str, ...] | None  # label strings as written in the files; id = position; None: regression
    metrics: tuple[str, ...]  # per evaluated split, see nlpx.eval.glue_metrics
    in_glue_score: bool = True
    prompts: dict | None = field(default=None, hash=False, compare=False)  # zero-shot: nlpx.eval.prompts

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.splits)

    @property
    def score_metrics(self) -> tuple[str, ...]:
        """The metrics the task score averages (MNLI: its two dev splits' accuracies)."""
        return ("acc_m", "acc_mm") if self.name == "mnli" else self.metrics

    # -- scoring (the interface nlpx.finetune.module and nlpx.recipes.finetune call) ----------
    def split_metrics(self, score_as: str, predictions, labels) -> dict[str, float]:
        from nlpx.eval.glue_metrics import task_metrics

        return task_metrics(score_as, predictions, labels)

    def join_metrics(self, per_split: dict[str, dict]) -> dict[str, float]:
        """The task's metrics from its dev splits' (MNLI: matched and mismatched accuracy)."""
        from nlpx.eval.glue_metrics import mnli_metrics

        if self.name == "mnli":
            return mnli_metrics(per_split["mnli_m"], per_split["mnli_mm"])
        return per_split[self.name]

    def score(self, metrics: dict[str, float]) -> float:
        from nlpx.eval.glue_metrics import task_score

        return task_score(self.name, metrics)

    def write_dev(self, out_dir, split, predictions) -> Path:
        """A dev split's predictions beside its gold labels (nlpx.finetune.data.Split)."""
        from nlpx.eval.glue_submission import write_dev_predictions

        return write_dev_predictions(Path(out_dir) / f"{split.task}.{split.name}.tsv", split.task, split.examples,
                                     predictions)

    def write_test(self, out_dir, split, predictions) -> Path:
        """The GLUE server's file for a test split (split.task: ax for the MNLI model's AX predictions)."""
        from nlpx.eval.glue_submission import write_predictions

        return write_predictions(out_dir, split.task, split.name, split.examples, predictions)

    def split(self, name: str) -> SplitSpec:
        for s in self.splits:
            if s.name == name:
                return s
        raise UserError(f"GLUE task {self.name}: unknown split '{name}' (valid: {', '.join(self.split_names)})")


def tasks_folder() -> Path:
    from nlpx.config import conf_dir

    return conf_dir() / "task" / "glue" / "_data"


def _read(folder: Path) -> dict[str, dict]:
    """{task: its file's content}, in the files' `order`."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = {p.stem: yaml.load(p.read_text(), Loader=loader) for p in folder.glob("*.yaml")}
    for name, task in raw.items():
        labels = task.get("labels")
        if labels is not None and not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{folder / name}.yaml: labels must be strings as the files write them "
                             f"(quote numbers: [\"0\", \"1\"]), got {labels}")
    orders = [task["order"] for task in raw.values()]
    if len(set(orders)) != len(orders):
        raise ValueError(f"{folder}: two GLUE tasks with one order: {sorted(orders)}")
    return dict(sorted(raw.items(), key=lambda kv: kv[1]["order"]))


def _spec(name: str, task: dict) -> TaskSpec:
    def split(split_name: str, fields: dict) -> SplitSpec:
        fields = {k: v for k, v in fields.items() if k != "submission"}
        columns = fields.pop("columns", None)
        return SplitSpec(name=split_name, **{**fields, "files": tuple(fields["files"])},
                         columns=None if columns is None else tuple(columns))

    labels = task["labels"]
    return TaskSpec(name=name, folders=tuple(task["folders"]),
                    splits=tuple(split(n, f) for n, f in task["splits"].items()),
                    labels=None if labels is None else tuple(labels), metrics=tuple(task["metrics"]),
                    in_glue_score=bool(task.get("in_glue_score", True)), prompts=task.get("prompts"))


DESCRIPTIONS: dict[str, dict] = _read(tasks_folder())  # each task's file as read (hf: nlpx.eval.glue_hf)

TASKS: dict[str, TaskSpec] = {name: _spec(name, task) for name, task in DESCRIPTIONS.items()}

# (task, test split) -> the file name the GLUE server expects inside the zip, in the tasks' order
SUBMISSION_FILES: dict[tuple[str, str], str] = {
    (name, split): fields["submission"] for name, task in DESCRIPTIONS.items()
    for split, fields in task["splits"].items() if "submission" in fields}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown GLUE task '{name}' (valid: {', '.join(TASKS)})") from None
