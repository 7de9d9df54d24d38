"""A CLUE or FewCLUE task's data for fine-tuning (task=clue/<name>, task=fewclue/<name>): the
splits read by nlpx.eval.clue_tasks and encoded once, in the TaskData that GLUE tasks use."""

from __future__ import annotations

import logging

from nlpx.data.encode import encode_choices, encode_examples
from nlpx.errors import UserError
from nlpx.eval.clue_tasks import BENCHMARKS, ClueTask, get_task, present_splits, read_split
from nlpx.finetune.data import Split, TaskData
from nlpx.finetune.subset import train_subset

log = logging.getLogger("nlpx")


class ClueData:
    """data=clue: the folder data.clue_dir holding one folder per CLUE task."""

    kind = "clue"  # the benchmark whose tasks read it

    def __init__(self, cfg):
        self.data_dir = data_dir(cfg, self.kind)


class FewClueData(ClueData):
    """data=fewclue: the folder data.fewclue_dir holding one folder per FewCLUE task."""

    kind = "fewclue"


def data_dir(data_cfg, benchmark: str):
    key = BENCHMARKS[benchmark]["data_dir"]
    if data_cfg is None or key not in data_cfg:
        raise UserError(f"{BENCHMARKS[benchmark]['title']} tasks read data.{key}: add data={benchmark}")
    return str(data_cfg[key])


def load_task(task: ClueTask, folder, tokenizer, *, max_length: int, max_train_examples: int | None = None,
              subset_seed: int = 0, with_test: bool = True, need_train: bool = True) -> TaskData:
    task = task.resolved(folder)
    present = present_splits(task, folder)
    if need_train and not present["train"]:
        raise UserError(f"{folder}: {task.benchmark} {task.name} has no training split "
                        f"(looked for {', '.join(task.splits['train'])} in {', '.join(task.folders)})")
    if not present["dev"]:
        raise UserError(f"{folder}: {task.benchmark} {task.name} has no dev split to evaluate on "
                        f"(looked for {', '.join(task.splits['dev'])} in {', '.join(task.folders)})")

    def split(name: str, score_as: str | None, limit: int | None = None) -> Split:
        read = read_split(task, folder, name)
        if read.skipped:
            log.info("%s %s %s: %d rows with labels %s left out", task.benchmark, task.name, name, read.skipped,
                     "/".join(task.skip_labels))
        examples = read.examples
        if limit is not None:
            examples = [examples[i] for i in train_subset(len(examples), limit, subset_seed)]
        if task.is_choice:
            if len({len(e.text_a) for e in examples}) != 1:
                raise UserError(f"{task.file(folder, name)}: {task.name} rows must all have the same number of "
                                f"candidates (found {sorted({len(e.text_a) for e in examples})})")
            return Split(task.name, name, score_as, examples, encode_choices(examples, tokenizer, max_length=max_length))
        return Split(task.name, name, score_as, examples, encode_examples(examples, tokenizer, max_length=max_length))

    train = split("train", None, max_train_examples) if present["train"] else None
    dev = [split("dev", task.name)]
    test = [split("test", task.name if task.reported == "test" else None)] if with_test and present["test"] else []
    absent = [s for s in ("train", "dev", "test") if not present[s]]
    return TaskData(task, train, dev, test, absent)


def _load(benchmark: str, t, tokenizer, data, with_test: bool) -> TaskData:
    limit = t.max_train_examples
    return load_task(get_task(benchmark, str(t.name)), data_dir(data, benchmark), tokenizer,
                     max_length=int(t.max_length), max_train_examples=None if limit is None else int(limit),
                     subset_seed=int(t.subset_seed), with_test=with_test)


def load_clue_task(t, tokenizer, *, data, with_test: bool = True) -> TaskData:
    """The data of a CLUE task config (task=clue/<name>'s `_target_`), from data.clue_dir."""
    return _load("clue", t, tokenizer, data, with_test)


def load_fewclue_task(t, tokenizer, *, data, with_test: bool = True) -> TaskData:
    """The data of a FewCLUE task config (task=fewclue/<name>'s `_target_`), from data.fewclue_dir."""
    return _load("fewclue", t, tokenizer, data, with_test)
