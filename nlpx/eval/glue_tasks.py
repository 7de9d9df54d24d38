"""The GLUE task table: where each task's files lie and which columns hold the texts and labels.

The layout is the one the GLUE download produces (``glue_dir/CoLA/train.tsv``,
``glue_dir/MNLI/dev_matched.tsv``, ``glue_dir/diagnostic/diagnostic.tsv``, ...). Columns are
named, never numbered: files with a header row are read by header name because column
positions differ between splits of one task (MNLI train has 12 columns, dev 16, test 10), and
the one family without a header row (CoLA train/dev) gets its column names from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.splits)

    def split(self, name: str) -> SplitSpec:
        for s in self.splits:
            if s.name == name:
                return s
        raise UserError(f"GLUE task {self.name}: unknown split '{name}' (valid: {', '.join(self.split_names)})")


def _std_splits(a: str, b: str | None, label: str, *, index: str | None = "index",
                train_index: bool = True) -> tuple[SplitSpec, ...]:
    """train/dev with a label column, test without one but with the index column."""
    labelled = index if train_index else None
    return (SplitSpec("train", ("train.tsv",), a, b, label, labelled),
            SplitSpec("dev", ("dev.tsv",), a, b, label, labelled),
            SplitSpec("test", ("test.tsv",), a, b, None, index))


_BINARY = ("0", "1")
# GLUE / Hugging Face order: entailment=0, neutral=1, contradiction=2. AX is predicted by the MNLI
# model, so it shares these labels.
_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")

_COLA_COLUMNS = ("source", "label", "original-mark", "sentence")
# MNLI carries parse columns and, in dev, five annotator labels besides gold_label: by name only.
_MNLI_LABELLED = dict(text_a="sentence1", text_b="sentence2", label="gold_label", index="index")

TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("cola", ("CoLA",), (
        SplitSpec("train", ("train.tsv",), "sentence", None, "label", None, _COLA_COLUMNS),
        SplitSpec("dev", ("dev.tsv",), "sentence", None, "label", None, _COLA_COLUMNS),
        SplitSpec("test", ("test.tsv",), "sentence", None, None, "index"),
    ), _BINARY, ("mcc",)),
    TaskSpec("sst2", ("SST-2",), _std_splits("sentence", None, "label", train_index=False), _BINARY, ("acc",)),
    # MRPC train/dev have no index column (they start with Quality); test has one.
    TaskSpec("mrpc", ("MRPC",), _std_splits("#1 String", "#2 String", "Quality", train_index=False),
             _BINARY, ("f1", "acc")),
    TaskSpec("stsb", ("STS-B",), _std_splits("sentence1", "sentence2", "score"), None, ("pearson", "spearmanr")),
    # QQP calls its index column "id", in all three splits.
    TaskSpec("qqp", ("QQP",), _std_splits("question1", "question2", "is_duplicate", index="id"),
             _BINARY, ("f1", "acc")),
    TaskSpec("mnli", ("MNLI",), (
        SplitSpec("train", ("train.tsv",), **_MNLI_LABELLED),
        SplitSpec("dev_matched", ("dev_matched.tsv",), **_MNLI_LABELLED),
        SplitSpec("dev_mismatched", ("dev_mismatched.tsv",), **_MNLI_LABELLED),
        SplitSpec("test_matched", ("test_matched.tsv",), "sentence1", "sentence2", None, "index"),
        SplitSpec("test_mismatched", ("test_mismatched.tsv",), "sentence1", "sentence2", None, "index"),
    ), _NLI3, ("acc",)),
    TaskSpec("qnli", ("QNLI",), _std_splits("question", "sentence", "label"), _NLI2, ("acc",)),
    TaskSpec("rte", ("RTE",), _std_splits("sentence1", "sentence2", "label"), _NLI2, ("acc",)),
    TaskSpec("wnli", ("WNLI",), _std_splits("sentence1", "sentence2", "label"), _BINARY, ("acc",)),
    # The GLUE download script writes diagnostic/diagnostic.tsv; the file served as AX.tsv (and the
    # submission's name for it) is the same table. Unlabelled: scored by the GLUE server only.
    TaskSpec("ax", ("diagnostic", "AX"), (
        SplitSpec("test", ("diagnostic.tsv", "AX.tsv"), "sentence1", "sentence2", None, "index"),
    ), _NLI3, ("mcc",), in_glue_score=False),
)}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown GLUE task '{name}' (valid: {', '.join(TASKS)})") from None
