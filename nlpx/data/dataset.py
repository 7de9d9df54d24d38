"""Masked examples keyed by (epoch, index), a resumable sampler over them, and the collator.

Every random choice of an example (its mask, its NSP partner) comes from a generator seeded by
(seed, epoch, index, stream): examples are the same in any worker, after any resume, on any rank.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from nlpx.data.masking import MaskingConfig, mask_example

TRAIN_STREAM, VAL_STREAM = 1, 2


class MaskedExamples(Dataset):
    def __init__(self, instances, tokenizer, masking: MaskingConfig, *, seed: int, stream: int,
                 static: bool):
        self.instances = instances
        self.masking = masking
        self.seed, self.stream, self.static = seed, stream, static
        self.mask_id = tokenizer.mask_token_id
        self.special_ids = np.asarray(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)
        vocab = np.arange(len(tokenizer), dtype=np.int64)
        self.random_ids = vocab[~np.isin(vocab, self.special_ids)]

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, key) -> dict:
        epoch, idx = key
        # static masking (original BERT): the epoch does not enter, so a revisit repeats the mask
        rng = np.random.default_rng([self.seed, 0 if self.static else epoch, idx, self.stream])
        example = self.instances.get(idx, rng)
        ids = example["input_ids"]
        masked = mask_example(ids, rng, self.masking, mask_id=self.mask_id,
                              special_mask=np.isin(ids, self.special_ids),
                              random_ids=self.random_ids, word_start=example.get("word_start"))
        return {**example, **masked}


class StreamSampler(Sampler):
    """Yields (epoch, index) keys of one long stream: epoch e visits a seeded permutation.

    Its length is the whole budget, and `start_batch` skips what a resumed run already saw, so
    Lightning's batch counters restored from a checkpoint stay consistent with the data. Each rank
    takes its own batches of the stream (Lightning's distributed sampler would materialise it).
    """

    def __init__(self, n: int, *, batch_size: int, total_batches: int, seed: int, shuffle: bool = True,
                 start_batch: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.total_batches = n, batch_size, total_batches
        self.seed, self.shuffle, self.start_batch = seed, shuffle, start_batch
        self.rank, self.world_size = rank, world_size
        self._perm_epoch, self._perm = -1, None

    def __len__(self) -> int:
        return self.total_batches * self.batch_size

    def _order(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm_epoch = epoch
            self._perm = (np.random.default_rng([self.seed, epoch, 0x5A3]).permutation(self.n)
                          if self.shuffle else np.arange(self.n))
        return self._perm

    def __iter__(self):
        for b in range(self.start_batch, self.total_batches):
            first = (b * self.world_size + self.rank) * self.batch_size
            for k in range(first, first + self.batch_size):
                epoch, pos = divmod(k, self.n)
                yield epoch, int(self._order(epoch)[pos])


class Collator:
    """Pads a list of examples to the longest one (dynamic padding) and builds tensors.

    Only model inputs and targets reach the batch: ``word_start`` (read by the masking in
    MaskedExamples) is dropped. The span boundary fields ``sbo_left`` / ``sbo_right`` /
    ``sbo_pos`` (strategy=span only) are padded with -1, their value outside spans.
    """

    OPTIONAL = ("sbo_left", "sbo_right", "sbo_pos")

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict:
        width = max(len(e["input_ids"]) for e in examples)
        fill = {"input_ids": self.pad_id, "labels": -100, "token_type_ids": 0,
                **{key: -1 for key in self.OPTIONAL if key in examples[0]}}
        batch = {}
        for key, value in fill.items():
            out = np.full((len(examples), width), value, dtype=np.int64)
            for i, e in enumerate(examples):
                out[i, :len(e[key])] = e[key]
            batch[key] = torch.from_numpy(out)
        lengths = torch.tensor([len(e["input_ids"]) for e in examples])
        batch["attention_mask"] = (torch.arange(width)[None, :] < lengths[:, None]).long()
        if "next_sentence_label" in examples[0]:
            batch["next_sentence_label"] = torch.tensor(
                [int(e["next_sentence_label"]) for e in examples], dtype=torch.long)
        return batch
