"""One fine-tuning task's data: splits read, encoded once, and served in length-bucketed batches.

Batches are padded to their own longest member (dynamic padding) and carry `rows`, the examples'
positions in their split, so predictions from length-sorted evaluation batches go back into
file order.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from nlpx.data.buckets import BucketBatchSampler
from nlpx.data.encode import ChoiceEncoded, Encoded, encode_examples
from nlpx.data.loader_workers import worker_kwargs
from nlpx.errors import UserError
from nlpx.eval.glue_reader import Example, available_splits, dev_split_names, present_splits, read_split
from nlpx.eval.glue_tasks import TaskSpec, get_task
from nlpx.finetune.subset import train_subset

# test sets predicted by another task's model: the diagnostic set AX by the MNLI model
EXTRA_TESTS = {"mnli": [("ax", "test")]}


@dataclass
class Split:
    task: str  # the task whose files these are (ax for the MNLI model's AX predictions)
    name: str  # train, dev, dev_matched, test, ...
    score_as: str | None  # the metrics name of a dev split (cola, mnli_m, ...); None otherwise
    examples: list[Example]
    encoded: Encoded


@dataclass
class TaskData:
    spec: TaskSpec
    train: Split | None
    dev: list[Split]
    test: list[Split]
    absent: list[str]  # train/dev/test splits of the task whose files are missing

    @property
    def num_labels(self) -> int:
        """Outputs per example: classes, 1 for regression, candidates for multiple choice."""
        if isinstance(self.dev[0].encoded, ChoiceEncoded):
            return self.dev[0].encoded.choices
        return 1 if self.spec.is_regression else len(self.spec.labels)


def load_task(task: str, glue_dir, tokenizer, *, max_length: int, max_train_examples: int | None = None,
              subset_seed: int = 0, with_test: bool = True, need_train: bool = True) -> TaskData:
    spec = get_task(task)
    present = present_splits(glue_dir, task)
    wanted = {"train": ["train"], "dev": list(dev_split_names(task)),
              "test": [s.name for s in spec.splits if s.name.startswith("test")]}
    absent = [s for kind in wanted for s in wanted[kind] if s not in present[kind]]
    if need_train and not present["train"]:
        raise UserError(f"data.glue_dir={glue_dir}: GLUE {task} has no training split "
                        f"(present: {', '.join(sum(present.values(), [])) or 'nothing'})")
    if not present["dev"]:
        raise UserError(f"data.glue_dir={glue_dir}: GLUE {task} has no dev split to evaluate on")
    regression = spec.is_regression

    def split(t: str, name: str, score_as: str | None, limit: int | None = None) -> Split:
        examples = read_split(glue_dir, t, name)
        if not examples:
            raise UserError(f"data.glue_dir={glue_dir}: GLUE {t} {name} has no rows")
        if limit is not None:
            examples = [examples[i] for i in train_subset(len(examples), limit, subset_seed)]
        return Split(t, name, score_as, examples,
                     encode_examples(examples, tokenizer, max_length=max_length, regression=regression))

    train = split(task, "train", None, max_train_examples) if present["train"] else None
    dev = [split(task, s, dev_split_names(task)[s]) for s in present["dev"]]
    test = []
    if with_test:
        test = [split(task, s, None) for s in present["test"]]
        for t, s in EXTRA_TESTS.get(task, []):
            if s in available_splits(glue_dir, t):
                test.append(split(t, s, None))
    return TaskData(spec, train, dev, test, absent)


class GlueData:
    """data=glue: the folder data.glue_dir holding GLUE (official or Hugging Face layout), which
    the GLUE tasks read (task=glue/<name>, nlpx.eval.glue_tasks)."""

    kind = "glue"

    def __init__(self, cfg):
        self.glue_dir = cfg.glue_dir

    def task_data(self, t, tokenizer, *, with_test: bool = True) -> TaskData:
        limit = t.max_train_examples
        return load_task(str(t.name), self.glue_dir, tokenizer, max_length=int(t.max_length),
                         max_train_examples=None if limit is None else int(limit),
                         subset_seed=int(t.subset_seed), with_test=with_test)


def load_glue_task(t, tokenizer, *, data, with_test: bool = True) -> TaskData:
    """The data of a GLUE task config (task=glue/<name>'s `_target_`), from data.glue_dir."""
    return GlueData(data).task_data(t, tokenizer, with_test=with_test)


class Batches:
    """collate_fn over an Encoded split: index lists -> padded tensors (+ labels, rows). Padded on
    the tokenizer's side: the left for XLNet, whose classifier reads the last position."""

    def __init__(self, encoded: Encoded, pad_id: int, *, left: bool = False):
        self.encoded, self.pad_id, self.left = encoded, pad_id, left

    def __call__(self, rows: list[int]) -> dict:
        enc = self.encoded
        seqs = [enc.input_ids[r] for r in rows]
        width = max(len(s) for s in seqs)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64) if enc.token_type_ids is not None else None
        for i, (r, s) in enumerate(zip(rows, seqs)):
            at = slice(width - len(s), width) if self.left else slice(0, len(s))
            ids[i, at] = s
            mask[i, at] = 1
            if types is not None:
                types[i, at] = enc.token_type_ids[r]
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                 "rows": torch.tensor(rows, dtype=torch.long)}
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types)
        if enc.labels is not None:
            batch["labels"] = torch.from_numpy(enc.labels[rows])
        return batch


class PaddedInputs:
    """What a token-level collate_fn (a tagger's, QA's) builds on: the padded model inputs of an
    encoded split's rows, and how far padding on the left moves each row's positions."""

    def __init__(self, encoded, pad_id: int, *, left: bool = False):
        self.encoded, self.left = encoded, left
        self.inputs = Batches(Encoded(encoded.input_ids, encoded.token_type_ids, None), pad_id, left=left)

    def padded(self, rows: list[int]) -> tuple[dict, list[int]]:
        batch = self.inputs(rows)
        width = batch["input_ids"].shape[1]
        return batch, [width - len(self.encoded.input_ids[r]) if self.left else 0 for r in rows]


class ChoiceBatches(Batches):
    """collate_fn over a ChoiceEncoded split: (batch, candidates, width) tensors, what transformers'
    *ForMultipleChoice models take; each candidate padded to the batch's longest."""

    def __call__(self, rows: list[int]) -> dict:
        enc = self.encoded
        n = enc.choices
        flat = Encoded([s for r in rows for s in enc.input_ids[r]],
                       None if enc.token_type_ids is None else [s for r in rows for s in enc.token_type_ids[r]],
                       None)
        batch = Batches(flat, self.pad_id, left=self.left)(list(range(len(flat))))
        out = {k: v.view(len(rows), n, -1) for k, v in batch.items() if k != "rows"}
        out["rows"] = torch.tensor(rows, dtype=torch.long)
        if enc.labels is not None:
            out["labels"] = torch.from_numpy(enc.labels[rows])
        return out


class _Rows(torch.utils.data.Dataset):
    """The dataset is the row numbers; Batches does the work per batch, not per example."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


class FinetuneDataModule(L.LightningDataModule):
    def __init__(self, data: TaskData, tokenizer, *, batch_size: int, eval_batch_size: int, seed: int,
                 num_workers: int = 0, collate=None, bucket_window: int = 50):
        """collate: (encoded split, pad id, left=) -> collate_fn, the objective's own batches (a
        tagger's); None: Batches, or ChoiceBatches for multiple choice. bucket_window: training
        batches are length-sorted within runs of batch_size x this (1: plain shuffled batches)."""
        super().__init__()
        self.collate = collate
        self.data, self.pad_id, self.left = data, tokenizer.pad_token_id, tokenizer.padding_side == "left"
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers, self.bucket_window = seed, num_workers, bucket_window

    def _sampler(self, split: Split, *, shuffle: bool) -> BucketBatchSampler:
        return BucketBatchSampler(split.encoded.lengths, self.batch_size if shuffle else self.eval_batch_size,
                                  seed=self.seed, shuffle=shuffle, window=self.bucket_window)

    def _loader(self, split: Split, *, shuffle: bool) -> DataLoader:
        sampler = self._sampler(split, shuffle=shuffle)
        collate = self.collate or (ChoiceBatches if isinstance(split.encoded, ChoiceEncoded) else Batches)
        return DataLoader(_Rows(len(split.encoded)), batch_sampler=sampler,
                          collate_fn=collate(split.encoded, self.pad_id, left=self.left),
                          **worker_kwargs(self.num_workers))

    def train_batches_per_epoch(self) -> int:
        return len(self._sampler(self.data.train, shuffle=True))

    def train_dataloader(self):
        return self._loader(self.data.train, shuffle=True)

    def val_dataloader(self):
        return [self._loader(s, shuffle=False) for s in self.data.dev]

    def predict_dataloader(self):
        return [self._loader(s, shuffle=False) for s in self.data.test]
