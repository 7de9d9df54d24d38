"""A tagging task's data (objective=tag): CoNLL column files or span JSON, encoded per word.

Each sentence's words (CoNLL tokens; for span JSON, characters) are tokenized together
(is_split_into_words), cut at task.max_length tokens. A word is predicted from its first
sub-token; words cut off, or with no token at all (a space character), get no prediction, and
their gold entities count as missed: scores are always against every gold entity of the file.

The table reports the labelled test split when the task has one (CoNLL-2003's eng.testb; the
epoch is kept on dev, eng.testa) and dev otherwise (CLUENER, whose test split has no labels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nlpx.errors import UserError
from nlpx.finetune.data import PaddedInputs
from nlpx.eval.ner_metrics import entity_scores
from nlpx.eval.ner_reader import Sentence, bio_tags, flat, read_conll, read_span_json, spans_to_tags

IGNORE = -100


@dataclass(frozen=True)
class TaggingSpec:
    name: str
    types: tuple[str, ...]  # entity types, sorted; type ids index this
    layout: str  # conll | span_json: how predictions are written (the input's own layout)
    is_regression = False
    labels = None  # no classes: the benchmarks' majority baseline does not apply
    tagging = True  # for objective=tag only

    def named(self, predicted) -> list[list[tuple[str, int, int]]]:
        return [[(self.types[a], i, j) for a, i, j in spans] for spans in predicted]

    # -- scoring (the interface nlpx.finetune.module and nlpx.recipes.finetune call) ----------
    def split_metrics(self, score_as: str, predicted, gold) -> dict[str, float]:
        """Micro precision / recall / F1 by the CoNLL rule, and each type's F1 (f1_<TYPE>)."""
        scores = entity_scores(list(gold), self.named(predicted))
        out = {k: scores["micro"][k] for k in ("precision", "recall", "f1")}
        out.update({f"f1_{t}": s["f1"] for t, s in scores["per_type"].items() if t in self.types})
        return out

    def join_metrics(self, per_split: dict[str, dict]) -> dict[str, float]:
        return next(iter(per_split.values()))

    def score(self, metrics: dict[str, float]) -> float:
        return metrics["f1"]

    def write_dev(self, out_dir, split, predicted) -> Path:
        suffix = ".txt" if self.layout == "conll" else ".json"
        path = Path(out_dir) / f"{self.name}.{split.name}{suffix}"
        write_predictions(path, self, split.examples, self.named(predicted))
        return path

    write_test = write_dev


@dataclass
class TaggedEncoded:
    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    starts: list[np.ndarray]  # per sentence: the token position of each kept word's first sub-token
    words: list[np.ndarray]  # per sentence: the word index of each kept word
    tags: list[np.ndarray] | None  # per sentence: BIO tag id of each kept word (flat gold entities)
    spans: list[list[tuple[int, int, int]]] | None  # per sentence: (type id, kept word a, kept word b)
    labels: np.ndarray | None  # per sentence: every gold entity (type, first word, last word); scores use these
    truncated: int = 0  # sentences with words cut off

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_sentences(sentences: list[Sentence], tokenizer, types: tuple[str, ...], *, max_length: int) -> TaggedEncoded:
    enc = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True, truncation=True,
                    max_length=max_length, padding=False, return_attention_mask=False)
    ids = [np.asarray(x, dtype=np.int64) for x in enc["input_ids"]]
    types_ids = [np.asarray(x, dtype=np.int64) for x in enc["token_type_ids"]] if "token_type_ids" in enc else None
    labelled = bool(sentences) and sentences[0].spans is not None
    tag_index = {t: i for i, t in enumerate(bio_tags(types))}
    type_index = {t: i for i, t in enumerate(types)}
    starts, words, tags, spans, truncated = [], [], [], [], 0
    for b, s in enumerate(sentences):
        first, seen = [], set()
        for pos, w in enumerate(enc.word_ids(b)):
            if w is not None and w not in seen:
                seen.add(w)
                first.append((pos, w))
        starts.append(np.asarray([p for p, _ in first], dtype=np.int64))
        words.append(np.asarray([w for _, w in first], dtype=np.int64))
        truncated += bool(first) and first[-1][1] < len(s.tokens) - 1
        if not labelled:
            continue
        kept = {w: k for k, (_, w) in enumerate(first)}
        # entities of types the training set has, with both ends kept, in kept-word positions
        inside = [(type_index[t], kept[i], kept[j]) for t, i, j in s.spans
                  if t in type_index and i in kept and j in kept]
        spans.append(inside)
        bio = flat([(types[a], i, j) for a, i, j in inside])[0]
        tags.append(np.asarray([tag_index[t] for t in spans_to_tags(len(first), bio)], dtype=np.int64))
    labels = None
    if labelled:
        labels = np.empty(len(sentences), dtype=object)
        labels[:] = [list(s.spans) for s in sentences]
    return TaggedEncoded(ids, types_ids, starts, words, tags if labelled else None, spans if labelled else None,
                         labels, truncated)


class TaggedBatches(PaddedInputs):
    """collate_fn over a TaggedEncoded split: padded ids, word_index [B, T] and the head's labels
    (spans=False: tag ids at first sub-tokens; spans=True: span labels [B, types, T, T])."""

    def __init__(self, encoded: TaggedEncoded, pad_id: int, *, left: bool = False, spans: bool = False,
                 num_types: int | None = None):
        super().__init__(encoded, pad_id, left=left)
        self.spans, self.num_types = spans, num_types

    def __call__(self, rows: list[int]) -> dict:
        enc = self.encoded
        batch, shift = self.padded(rows)
        width = batch["input_ids"].shape[1]
        word_index = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, r in enumerate(rows):
            word_index[i, torch.from_numpy(enc.starts[r] + shift[i])] = torch.from_numpy(enc.words[r])
        batch["word_index"] = word_index
        if enc.tags is None:
            return batch
        if not self.spans:
            labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for i, r in enumerate(rows):
                labels[i, torch.from_numpy(enc.starts[r] + shift[i])] = torch.from_numpy(enc.tags[r])
        else:
            at = word_index >= 0
            valid = (at[:, :, None] & at[:, None, :]) & torch.ones(width, width, dtype=torch.bool).triu()
            labels = torch.where(valid, 0, IGNORE).to(torch.long)[:, None].repeat(1, self.num_types, 1, 1)
            for i, r in enumerate(rows):
                pos = enc.starts[r] + shift[i]
                for a, k1, k2 in enc.spans[r]:
                    labels[i, a, pos[k1], pos[k2]] = 1
        batch["labels"] = labels
        return batch


def task_types(t, sentences: list[Sentence]) -> tuple[str, ...]:
    """task.types, or the sorted entity types of the training sentences."""
    if t.get("types"):
        return tuple(str(x) for x in t.types)
    return tuple(sorted({kind for s in sentences for kind, _, _ in s.spans}))


def _read(t, name: str, layout: str) -> list[Sentence]:
    path = Path(str(t[name]))
    if not path.is_file():
        raise UserError(f"task.{name}={path}: no such file")
    sentences = (read_conll(path, tag_column=int(t.tag_column), scheme=str(t.scheme)) if layout == "conll"
                 else read_span_json(path))
    if not sentences:
        raise UserError(f"task.{name}={path}: no sentences")
    if name != "test" and sentences[0].spans is None:
        raise UserError(f"task.{name}={path}: the {name} split needs labels")
    return sentences


def load_tagging(t, tokenizer, *, layout: str, with_test: bool = True):
    """TaskData of a tagging task: task.train, task.dev, task.test (optional)."""
    from nlpx.finetune.data import Split, TaskData
    from nlpx.finetune.subset import train_subset

    for name in ("train", "dev"):
        if not t.get(name):
            raise UserError(f"task.{name}: a {'CoNLL column' if layout == 'conll' else 'span JSON'} file is needed "
                            f"(task={t.name} task.train=PATH task.dev=PATH [task.test=PATH])")
    sentences = {name: _read(t, name, layout) for name in ("train", "dev", "test")
                 if t.get(name) and (name != "test" or with_test)}
    if t.get("max_train_examples"):
        train = sentences["train"]
        sentences["train"] = [train[i] for i in train_subset(len(train), int(t.max_train_examples),
                                                              int(t.subset_seed))]
    types = task_types(t, sentences["train"])
    if not types:
        raise UserError(f"task.train={t.train}: no entities to learn")
    spec = TaggingSpec(str(t.name), types, layout)

    def split(name: str) -> Split:
        rows = sentences[name]
        labelled = rows[0].spans is not None
        score_as = name if labelled and name != "train" else None
        return Split(str(t.name), name, score_as, rows,
                     encode_sentences(rows, tokenizer, types, max_length=int(t.max_length)))

    test = [split("test")] if "test" in sentences else []
    return TaskData(spec, split("train"), [split("dev")], test, [])


def load_conll(t, tokenizer, *, data=None, with_test: bool = True):
    """TaskData of a CoNLL column task (task=ner/conll2003, task=ner/conll's `_target_`)."""
    return load_tagging(t, tokenizer, layout="conll", with_test=with_test)


def load_span_json(t, tokenizer, *, data=None, with_test: bool = True):
    """TaskData of a span JSON task (task=ner/cluener, task=ner/span_json's `_target_`)."""
    return load_tagging(t, tokenizer, layout="span_json", with_test=with_test)


def write_predictions(path: Path, spec: TaggingSpec, sentences: list[Sentence], predicted: list) -> Path:
    """Predictions in the input's layout: CoNLL columns `token gold predicted` (IOB2; `token
    predicted` where unlabelled), sentences separated by blank lines; span JSON lines
    `{"id", "text", "label": {type: {mention: [[start, end]]}}}` (CLUENER's submission layout)."""
    from nlpx.rundir import atomic_write_text

    out = []
    for n, (s, spans) in enumerate(zip(sentences, predicted)):
        if spec.layout == "conll":
            tags = spans_to_tags(len(s.tokens), flat(spans)[0])
            gold = spans_to_tags(len(s.tokens), flat(s.spans)[0]) if s.spans is not None else None
            out.extend(" ".join([tok] + ([gold[i]] if gold else []) + [tags[i]]) for i, tok in enumerate(s.tokens))
            out.append("")
        else:
            label: dict = {}
            for kind, i, j in spans:
                label.setdefault(kind, {}).setdefault("".join(s.tokens[i:j + 1]), []).append([i, j])
            out.append(json.dumps({"id": n, "text": "".join(s.tokens), "label": label}, ensure_ascii=False))
    atomic_write_text(path, "\n".join(out) + "\n")
    return path
