"""Sentence (pair) examples -> token ids, for fine-tuning and evaluation.

Encoded once with the fast tokenizer's batch call and kept unpadded: batches are padded to their
own longest member (see buckets.py), so the lengths returned here drive the bucketing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the batch keys a model's forward takes (the rest: labels, rows, word_index are the objective's)
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Encoded:
    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None  # None for families without segment ids (RoBERTa)
    labels: np.ndarray | None  # class ids (int64) or scores (float32); None for unlabelled splits

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_examples(examples, tokenizer, *, max_length: int, regression: bool = False) -> Encoded:
    """Tokenize (text_a[, text_b]) with truncation to max_length ("longest_first", as HF's glue)."""
    first = [e.text_a for e in examples]
    pairs = examples and examples[0].text_b is not None
    second = [e.text_b for e in examples] if pairs else None
    enc = tokenizer(first, second, truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False)
    ids = [np.asarray(x, dtype=np.int64) for x in enc["input_ids"]]
    types = ([np.asarray(x, dtype=np.int64) for x in enc["token_type_ids"]]
             if "token_type_ids" in enc else None)
    if not examples or examples[0].label is None:
        labels = None
    else:
        labels = np.asarray([e.label for e in examples], dtype=np.float32 if regression else np.int64)
    return Encoded(ids, types, labels)


@dataclass
class ChoiceEncoded:
    """Multiple-choice examples: per example, one token sequence per candidate (ChID's idioms)."""

    input_ids: list[list[np.ndarray]]
    token_type_ids: list[list[np.ndarray]] | None
    labels: np.ndarray | None  # the answer's position among the candidates

    @property
    def lengths(self) -> np.ndarray:
        """The longest candidate of each example: what its batch is padded to."""
        return np.fromiter((max(len(c) for c in x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    @property
    def choices(self) -> int:
        return len(self.input_ids[0])

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_choices(examples, tokenizer, *, max_length: int) -> ChoiceEncoded:
    """Tokenize each candidate's text (Example.text_a is the tuple of them), truncated to max_length
    tokens; every example must have as many candidates as the first (one softmax over them)."""
    counts = {len(e.text_a) for e in examples}
    if len(counts) != 1:
        raise ValueError(f"multiple choice: every example needs the same number of candidates, got {sorted(counts)}")
    flat = encode_examples([type(e)(e.guid, text, None, None, e.index) for e in examples for text in e.text_a],
                           tokenizer, max_length=max_length)
    n = counts.pop()

    def grouped(seqs):
        return None if seqs is None else [seqs[i * n:(i + 1) * n] for i in range(len(examples))]

    labels = None if examples[0].label is None else np.asarray([e.label for e in examples], dtype=np.int64)
    return ChoiceEncoded(grouped(flat.input_ids), grouped(flat.token_type_ids), labels)
