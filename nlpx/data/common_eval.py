"""The common evaluation set of a comparison: one fixed masked set that every masked-LM arm is
also scored on (val/common_*), whatever its own masking ratio, input format or objective.

Each arm's own validation loss is measured on its own masking and format, so two arms' losses
are not comparable; this set is. It is the held-out documents of the corpus packed as full
sentences ([CLS] stream [SEP], `seq_len` tokens: a longer length reuses the same documents from
their start), masked once at 15% with BERT's 80/10/10 from a fixed seed, so every arm sees the
same positions and the same replacement tokens. For replaced-token detection the same positions
are also replaced by a fixed sample from the training split's unigram distribution (a sample
equal to the original counts as not replaced, as in ELECTRA).

Built once per corpus + tokenizer and stored in the corpus cache entry
(common_eval_L<seq_len>_n<examples>.npz): a change to the masking code later cannot change a
set that comparisons already used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from nlpx.data.instances import PackedInstances
from nlpx.data.masking import MaskingConfig, mask_example

SEED = 0xC0FFEE
MASKING = MaskingConfig(ratio=0.15, mask=0.8, random=0.1, keep=0.1, strategy="token")
FIELDS = ("input_ids", "labels", "original_ids", "replaced_ids", "lengths")


def common_eval_set(prepared, seq_len: int, max_examples: int | None) -> dict[str, np.ndarray]:
    """The set for (corpus cache entry, seq_len, max_examples), built and stored on first use."""
    n = "all" if max_examples is None else int(max_examples)
    path = Path(prepared.path) / f"common_eval_L{int(seq_len)}_n{n}.npz"
    if not path.is_file():
        arrays = build(prepared, int(seq_len), max_examples)
        # another run may build the same file at the same time: each writes its own and renames
        fd, tmp = tempfile.mkstemp(prefix=".common-", suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    with np.load(path) as stored:
        return {k: stored[k] for k in FIELDS}


def build(prepared, seq_len: int, max_examples: int | None) -> dict[str, np.ndarray]:
    tok = prepared.tokenizer
    instances = PackedInstances(prepared.val, seq_len, tok.cls_token_id, tok.sep_token_id)
    count = len(instances) if max_examples is None else min(len(instances), int(max_examples))
    special = np.asarray(sorted(set(tok.all_special_ids)), dtype=np.int64)
    vocab = np.arange(len(tok), dtype=np.int64)
    random_ids = vocab[~np.isin(vocab, special)]
    unigram = unigram_distribution(prepared.train.tokens, len(tok), special)
    out = {k: np.full((count, seq_len), tok.pad_token_id, dtype=np.int64) for k in FIELDS[:-1]}
    out["labels"][:] = -100
    out["lengths"] = np.zeros(count, dtype=np.int64)
    for i in range(count):
        rng = np.random.default_rng([SEED, i])
        ids = instances.get(i)["input_ids"]
        masked = mask_example(ids, rng, MASKING, mask_id=tok.mask_token_id, special_mask=np.isin(ids, special),
                              random_ids=random_ids)
        selected = masked["labels"] != -100
        replaced = ids.copy()
        replaced[selected] = rng.choice(len(unigram), size=int(selected.sum()), p=unigram)
        k = len(ids)
        out["input_ids"][i, :k], out["labels"][i, :k] = masked["input_ids"], masked["labels"]
        out["original_ids"][i, :k], out["replaced_ids"][i, :k] = ids, replaced
        out["lengths"][i] = k
    return out


def unigram_distribution(tokens: np.ndarray, vocab_size: int, special: np.ndarray) -> np.ndarray:
    """Token frequencies of the training split, special tokens excluded, normalised."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)[:vocab_size].astype(np.float64)
    counts[special[special < vocab_size]] = 0.0
    return counts / counts.sum()


def batches(arrays: dict[str, np.ndarray], batch_size: int, device):
    """The set as model batches (cut to each batch's longest example), in order."""
    import torch

    n = len(arrays["lengths"])
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        lengths = torch.as_tensor(arrays["lengths"][start:stop])
        width = int(lengths.max())
        batch = {k: torch.as_tensor(arrays[k][start:stop, :width]).to(device) for k in FIELDS[:-1]}
        batch["attention_mask"] = (torch.arange(width)[None, :] < lengths[:, None]).long().to(device)
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        yield batch
