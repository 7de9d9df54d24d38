"""ESimCSE's word repetition: the positive view duplicates some words of the sentence, so that
the two views differ in length and length stops being a shortcut for similarity.

As the paper: for a sentence of N words, dup_len is drawn uniformly from
[0, max(2, int(dup_rate * N))] (`sampling=paper`, capped at 10 as the reference code does), and
dup_len distinct positions are duplicated in place. `sampling=fixed` duplicates exactly
round(dup_rate * N) words, so the duplicated share is dup_rate itself. The reference run repeats
sub-word tokens; this works on whatever units it is given (words or token ids).
"""

from __future__ import annotations

import random
from typing import Sequence, TypeVar

T = TypeVar("T")
SAMPLING = ("paper", "fixed")
PAPER_CAP = 10


def repetition_count(n: int, dup_rate: float, sampling: str, rng: random.Random) -> int:
    if sampling == "fixed":
        return min(n, round(dup_rate * n))
    return min(n, rng.randint(0, min(PAPER_CAP, max(2, int(dup_rate * n)))))


def repeat_words(words: Sequence[T], dup_rate: float, rng: random.Random, sampling: str = "paper") -> list[T]:
    """The words in order, with a random subset of them written twice."""
    count = repetition_count(len(words), dup_rate, sampling, rng)
    chosen = set(rng.sample(range(len(words)), count))
    out: list[T] = []
    for i, w in enumerate(words):
        out.append(w)
        if i in chosen:
            out.append(w)
    return out
