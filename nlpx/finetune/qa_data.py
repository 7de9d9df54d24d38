"""An extractive QA task's data (objective=qa): SQuAD-layout files cut into windows.

Each question is tokenized with its passage, the passage cut into windows of task.max_length
tokens overlapping by task.doc_stride (the tokenizer's overflowing tokens, as transformers'
run_qa.py). A window is one training / evaluation row: its target is the answer's first and last
token when the whole answer lies inside it, else position 0 ([CLS]). Each window's offsets map
its passage tokens back to characters, so an answer is always a slice of the original passage.

Evaluation (nlpx.objectives.qa gives each window's n best spans): per question the best-scoring
span over its windows is the answer, scored by the task's rules (task.metrics:
nlpx.eval.qa_metrics.squad_scores or cmrc2018_scores) against every gold answer. The table
reports the labelled test split when there is one, else dev.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nlpx.errors import UserError
from nlpx.finetune.data import PaddedInputs
from nlpx.eval.qa_reader import QAExample, answer_span, read_squad


@dataclass(frozen=True)
class QASpec:
    name: str
    metrics: object  # (predictions, answers) -> {"exact_match", "f1"}
    n_best: int  # spans kept per window
    max_answer_length: int  # tokens
    is_regression = False
    labels = None  # no classes: the benchmarks' majority baseline does not apply
    question_answering = True  # for objective=qa only

    def answers(self, encoded, window_spans) -> list[str]:
        """Per question, the text of the best-scoring span of its windows ("" if none)."""
        best: dict[int, tuple[float, str]] = {}
        for w, spans in enumerate(window_spans):
            q = int(encoded.example_index[w])
            for score, first, last in spans:
                if q not in best or score > best[q][0]:
                    context = encoded.examples[q].context
                    best[q] = (score, context[encoded.offsets[w][first][0]:encoded.offsets[w][last][1]])
        return [best[q][1] if q in best else "" for q in range(len(encoded.examples))]

    # -- scoring (the interface nlpx.finetune.module and nlpx.recipes.finetune call) ----------
    def split_metrics(self, score_as: str, window_spans, encoded) -> dict[str, float]:
        return self.metrics(self.answers(encoded, window_spans), [list(e.answers) for e in encoded.examples])

    def join_metrics(self, per_split: dict[str, dict]) -> dict[str, float]:
        return next(iter(per_split.values()))

    def score(self, metrics: dict[str, float]) -> float:
        return metrics["f1"]

    def write_dev(self, out_dir, split, window_spans) -> Path:
        """predictions.json in SQuAD's submission layout: {question id: answer text}."""
        from nlpx.rundir import atomic_write_text

        path = Path(out_dir) / f"{self.name}.{split.name}.predictions.json"
        answers = self.answers(split.encoded, window_spans)
        atomic_write_text(path, json.dumps({e.id: a for e, a in zip(split.encoded.examples, answers)}, ensure_ascii=False,
                                           indent=1) + "\n")
        return path

    write_test = write_dev


@dataclass
class QAEncoded:
    examples: list[QAExample]
    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    offsets: list[np.ndarray]  # per window, [T, 2] character offsets of passage tokens; (-1, -1) elsewhere
    example_index: np.ndarray  # per window, its question's position in the split
    positions: np.ndarray  # per window, (first, last) answer token, (0, 0) when not inside
    unplaced: int = 0  # questions whose answer text is not in their passage (no training target)

    @property
    def labels(self):
        """What the metrics read (QASpec.split_metrics): the questions and their windows, this object."""
        return self if all(e.answers for e in self.examples) else None

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_windows(examples: list[QAExample], tokenizer, *, max_length: int, doc_stride: int,
                   max_question_length: int) -> QAEncoded:
    questions = [tokenizer.convert_tokens_to_string(tokenizer.tokenize(e.question)[:max_question_length])
                 if max_question_length else e.question for e in examples]
    enc = tokenizer(questions, [e.context for e in examples], truncation="only_second", max_length=max_length,
                    stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=False,
                    return_attention_mask=False)
    ids, types, offsets, owner, positions = [], [], [], [], []
    unplaced = set()
    for w, q in enumerate(enc["overflow_to_sample_mapping"]):
        seq = enc.sequence_ids(w)
        off = np.asarray([o if s == 1 else (-1, -1) for o, s in zip(enc["offset_mapping"][w], seq)], dtype=np.int64)
        ids.append(np.asarray(enc["input_ids"][w], dtype=np.int64))
        if "token_type_ids" in enc:
            types.append(np.asarray(enc["token_type_ids"][w], dtype=np.int64))
        offsets.append(off)
        owner.append(q)
        span = answer_span(examples[q]) if examples[q].answers else None
        if examples[q].answers and span is None:
            unplaced.add(q)
        positions.append(_token_span(off, span))
    return QAEncoded(examples, ids, types or None, offsets, np.asarray(owner, dtype=np.int64),
                     np.asarray(positions, dtype=np.int64).reshape(-1, 2), len(unplaced))


def _token_span(offsets: np.ndarray, span: tuple[int, int] | None) -> tuple[int, int]:
    """The answer's first and last token in a window, or (0, 0) when it is not wholly inside."""
    if span is None:
        return 0, 0
    inside = np.flatnonzero(offsets[:, 0] >= 0)
    if not len(inside) or offsets[inside[0], 0] > span[0] or offsets[inside[-1], 1] < span[1]:
        return 0, 0
    first = inside[offsets[inside, 0] <= span[0]][-1]
    last = inside[offsets[inside, 1] >= span[1]][0]
    return int(first), int(last)


class QABatches(PaddedInputs):
    """collate_fn over a QAEncoded split: padded ids, `context` [B, T] (passage tokens) and the
    target positions as labels [B, 2]."""

    def __call__(self, rows: list[int]) -> dict:
        enc = self.encoded
        batch, shift = self.padded(rows)
        shift = torch.tensor(shift)
        context = torch.zeros((len(rows), batch["input_ids"].shape[1]), dtype=torch.bool)
        for i, r in enumerate(rows):
            at = torch.from_numpy(np.flatnonzero(enc.offsets[r][:, 0] >= 0)) + shift[i]
            context[i, at] = True
        batch["context"] = context
        batch["shift"] = shift
        batch["labels"] = torch.from_numpy(enc.positions[rows]) + torch.where(
            torch.from_numpy(enc.positions[rows]) > 0, shift[:, None], 0)
        return batch


def load_squad(t, tokenizer, *, data=None, with_test: bool = True):
    """TaskData of a SQuAD-layout task (task=qa/squad, qa/cmrc2018's `_target_`): task.train,
    task.dev, task.test (optional)."""
    from hydra.utils import get_method

    from nlpx.finetune.data import Split, TaskData
    from nlpx.finetune.subset import train_subset

    for name in ("train", "dev"):
        if not t.get(name):
            raise UserError(f"task.{name}: a SQuAD-layout JSON file is needed (task={t.name} task.train=PATH "
                            "task.dev=PATH [task.test=PATH])")
    if int(t.doc_stride) >= int(t.max_length):
        raise UserError(f"task.doc_stride={t.doc_stride}: must be below task.max_length={t.max_length}")
    examples = {name: read_squad(str(t[name])) for name in ("train", "dev", "test")
                if t.get(name) and (name != "test" or with_test)}
    for name in ("train", "dev"):
        if not all(e.answers for e in examples[name]):
            raise UserError(f"task.{name}={t[name]}: every question of the {name} split needs an answer")
    if t.get("max_train_examples"):
        train = examples["train"]
        examples["train"] = [train[i] for i in train_subset(len(train), int(t.max_train_examples), int(t.subset_seed))]
    spec = QASpec(str(t.name), get_method(str(t.metrics)), int(t.n_best), int(t.max_answer_length))

    def split(name: str) -> Split:
        rows = examples[name]
        labelled = all(e.answers for e in rows)
        encoded = encode_windows(rows, tokenizer, max_length=int(t.max_length), doc_stride=int(t.doc_stride),
                                 max_question_length=int(t.max_question_length or 0))
        return Split(str(t.name), name, name if labelled and name != "train" else None, rows, encoded)

    train = split("train")
    if train.encoded.unplaced:
        import logging

        logging.getLogger("nlpx").warning("task.train=%s: %d questions' answers are not in their passage: no "
                                          "training target", t.train, train.encoded.unplaced)
    return TaskData(spec, train, [split("dev")], [split("test")] if "test" in examples else [], [])
