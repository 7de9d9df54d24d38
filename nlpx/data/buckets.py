"""Length-bucketed batches for fine-tuning and evaluation: little padding, still shuffled.

Sorting the whole set by length would give batches of one length but a fixed order; shuffling
gives random lengths per batch and much padding. The usual middle way (as in fairseq and
HF's group_by_length): shuffle, cut into mega-batches of `batch_size * window` examples, sort
each by length, cut into batches, then shuffle the batch order. All of it is a function of
(seed, epoch), so a resumed or repeated run sees the same batches.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


def bucketed_batches(lengths: np.ndarray, batch_size: int, *, seed: int, epoch: int,
                     window: int = 50, shuffle: bool = True) -> list[np.ndarray]:
    lengths = np.asarray(lengths)
    n = len(lengths)
    if not shuffle:  # evaluation: sorted by length, longest first (a memory error shows at once)
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng([seed, epoch, 0xB0C])
    order = rng.permutation(n)
    mega = batch_size * window
    batches = []
    for start in range(0, n, mega):
        chunk = order[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of the padded batch tensors that is padding."""
    lengths = np.asarray(lengths)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return 1.0 - float(lengths.sum()) / padded


class BucketBatchSampler(Sampler):
    """A batch sampler over `bucketed_batches`; Lightning calls set_epoch each epoch."""

    def __init__(self, lengths, batch_size: int, *, seed: int, shuffle: bool = True, window: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.shuffle, self.window = batch_size, seed, shuffle, window
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            return -(-n // bs)
        mega = bs * self.window  # each full mega-batch gives `window` batches, the rest ceil(rest/bs)
        return (n // mega) * self.window + -(-(n % mega) // bs)

    def _batches(self):
        return bucketed_batches(self.lengths, self.batch_size, seed=self.seed, epoch=self.epoch,
                                window=self.window, shuffle=self.shuffle)

    def __iter__(self):
        return (b.tolist() for b in self._batches())
