"""XLNet's permutation LM on nlpx's examples (objective=plm).

Layout: XLNet's own, the summary token last: nlpx's framed ``[CLS] A [SEP] (B [SEP])`` becomes
``A [SEP] (B [SEP]) [CLS]`` with segment ids 0 for A, 1 for B and 2 for [CLS] (`cls_last`), as
XLNet's tokenizer lays out a fine-tuning input, so pretraining and `nlpx eval glue` agree on where
the classifier's token is.

Per example, from the example's own generator (seeded by (seed, epoch, index, stream) as every
nlpx example, so a resumed run sees the same targets and orders):

  targets  XLNet's `_sample_mask` (zihangdai/xlnet, data_utils.py): goal = max(1, round(n / K))
           of the n non-special tokens ([UNK] counts as special: never predicted); repeatedly an
           n-gram length l in 1..max_span words (cut to the goal still missing) with p ∝ 1/l, a
           context window of K·l tokens (XLNet: mask_alpha = 6 = K), the span starting at a word
           start a uniform offset into it; spans never cover a special token; then single tokens
           at random until the goal is reached (the reference code's top-up). A span is whole
           words, so the last one may overshoot the goal by a word's extra pieces; a span that
           reaches the end is kept (the reference drops it).
  order    every non-target (special tokens included) first, as one block of rank -1; the targets
           after it in a random order, ranks 0..m-1: the predicted tokens are the last m/T of the
           factorisation order (partial prediction, K = objective.plm_k). XLNet's `_local_perm`
           gives the special tokens random ranks instead (not predicted); here [CLS], the
           fine-tuning summary token, never sees a target's content in pretraining.

perm_mask[i, j] = 1 (query i may not see key j) iff j is a target and rank(i) <= rank(j), or j is
padding. So a target's query stream sees the context and the targets before it in the order,
never its own content; the content stream (transformers clears the diagonal) also sees itself; a
context token sees no target.

Why not transformers' DataCollatorForPermutationLanguageModeling: it draws from torch's global
generator per batch (no exact resume), needs an even padded length, replaces the targets by [MASK]
in the content stream, runs the query stream on every position (target_mapping = eye), and keeps
the special tokens at real ranks while testing only the masked columns, so a target can see a
later [SEP] whose content saw that target.
"""

from __future__ import annotations

import numpy as np
import torch


def cls_last(example: dict) -> dict:
    """``[CLS] A [SEP] (B [SEP])`` -> ``A [SEP] (B [SEP]) [CLS]``, [CLS] in a segment of its own (2)."""
    out = {key: np.concatenate([value[1:], value[:1]]) for key, value in example.items()
           if key in ("input_ids", "word_start")}
    types = example.get("token_type_ids")
    if types is None:
        types = np.zeros(len(example["input_ids"]), dtype=np.int64)
    out["token_type_ids"] = np.concatenate([types[1:], [2]]).astype(np.int64)
    return out


def plm_targets(special: np.ndarray, word_start: np.ndarray | None, k: int, max_span: int,
                rng: np.random.Generator) -> np.ndarray:
    """bool[len]: the tokens to predict."""
    length = len(special)
    starts = np.ones(length, bool) if word_start is None else np.asarray(word_start, bool)
    targets = np.zeros(length, bool)
    goal = max(1, round(int((~special).sum()) / k))
    grams = np.arange(1, max_span + 1)
    p = 1.0 / grams
    p /= p.sum()
    count = cur = 0
    while cur < length and count < goal:
        n = int(min(rng.choice(grams, p=p), goal - count))
        ctx = k * n
        left = int(rng.integers(ctx))
        beg = cur + left
        while beg < length and (special[beg] or not starts[beg]):
            beg += 1
        if beg >= length:
            break
        end, words = beg + 1, 1
        while end < length and not special[end]:
            if starts[end]:
                words += 1
                if words > n:
                    break
            end += 1
        targets[beg:end] = True
        count += end - beg
        cur = end + ctx - left
    free = np.flatnonzero(~targets & ~special)
    if count < goal and len(free):
        targets[rng.choice(free, size=min(goal - count, len(free)), replace=False)] = True
    return targets


def plm_ranks(targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int[len]: -1 for every non-target, the targets' places 0..m-1 in a random order."""
    ranks = np.full(len(targets), -1, dtype=np.int64)
    where = np.flatnonzero(targets)
    ranks[where] = rng.permutation(len(where))
    return ranks


def perm_mask(ranks: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """[B, T, T] float: 1 where query i may not see key j (see the module's docstring)."""
    target = ranks >= 0
    later_or_same = ranks[:, :, None] <= ranks[:, None, :]
    return ((target[:, None, :] & later_or_same) | padding[:, None, :]).float()


def plm_collate(examples: list[dict], pad_id: int) -> dict:
    """Examples {"input_ids", "token_type_ids", "ranks"} -> XLNetLMHeadModel's inputs, padded on
    the right (relative positions), with target_mapping rows in rank order and labels per row."""
    width = max(len(e["input_ids"]) for e in examples)
    n = len(examples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    ranks = torch.full((n, width), -1, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for b, e in enumerate(examples):
        t = len(e["input_ids"])
        ids[b, :t] = torch.as_tensor(e["input_ids"])
        ranks[b, :t] = torch.as_tensor(e["ranks"])
        mask[b, :t] = 1
        types[b, :t] = torch.as_tensor(e["token_type_ids"])
    rows = max(1, int((ranks >= 0).sum(1).max()))
    mapping = torch.zeros((n, rows, width))
    labels = torch.full((n, rows), -100, dtype=torch.long)
    b_idx, pos = torch.nonzero(ranks >= 0, as_tuple=True)
    r = ranks[b_idx, pos]
    mapping[b_idx, r, pos] = 1.0
    labels[b_idx, r] = ids[b_idx, pos]
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "perm_mask": perm_mask(ranks, mask == 0), "target_mapping": mapping, "labels": labels}


class PermutedExamples(torch.utils.data.Dataset):
    """Examples keyed by (epoch, index) with their targets and order, as MaskedExamples: one
    generator per example from (seed, epoch (0 when static), index, stream)."""

    def __init__(self, instances, tokenizer, *, k: int, max_span: int, seed: int, stream: int, static: bool):
        self.instances, self.k, self.max_span = instances, k, max_span
        self.seed, self.stream, self.static = seed, stream, static
        self.special_ids = np.asarray(sorted(set(tokenizer.all_special_ids)), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, key) -> dict:
        epoch, idx = key
        rng = np.random.default_rng([self.seed, 0 if self.static else epoch, idx, self.stream])
        example = cls_last(self.instances.get(idx, rng))
        ids = np.asarray(example["input_ids"])
        targets = plm_targets(np.isin(ids, self.special_ids), example.get("word_start"), self.k, self.max_span, rng)
        return {"input_ids": ids, "token_type_ids": example["token_type_ids"], "ranks": plm_ranks(targets, rng)}


class PermutationCollator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict:
        return plm_collate(examples, self.pad_id)
