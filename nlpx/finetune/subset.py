"""A fixed random subset of a training set (e.g. "4,000 of the SST-2 training sentences")."""

from __future__ import annotations

import numpy as np


def train_subset(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of `limit` examples out of `n`, a function of `seed` only, so every run seed
    and the HF Trainer baseline fine-tune on the same examples. None or limit >= n: all of them."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit <= 0:
        raise ValueError(f"train_subset: limit must be positive, got {limit}")
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])
