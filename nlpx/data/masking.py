"""BERT-style masked-language-model corruption of one example.

Randomness comes only from the ``rng`` argument, which the caller derives from
(seed, epoch, example index): the same example in the same epoch is always masked the same way,
whichever worker or resume point produces it, and a new epoch gives new masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nlpx.errors import UserError

IGNORE_INDEX = -100  # label value that torch's cross-entropy skips (its default ignore_index)

_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class MaskingConfig:
    ratio: float = 0.15  # fraction of candidate tokens selected for prediction
    mask: float = 0.8  # of the selected: replaced by [MASK]
    random: float = 0.1  # replaced by a token drawn uniformly from random_ids
    keep: float = 0.1  # left unchanged (still predicted)

    def __post_init__(self) -> None:
        # Written as "not (inside)" so that NaN is rejected too.
        if not (0.0 < self.ratio < 1.0):
            raise UserError(f"objective.masking: ratio must be in (0, 1), got {self.ratio}")
        for key in ("mask", "random", "keep"):
            value = getattr(self, key)
            if not (0.0 <= value <= 1.0):
                raise UserError(f"objective.masking: {key} must be in [0, 1], got {value}")
        total = self.mask + self.random + self.keep
        if abs(total - 1.0) > _SUM_TOLERANCE:
            raise UserError(
                f"objective.masking: mask + random + keep must sum to 1, got "
                f"{self.mask} + {self.random} + {self.keep} = {total}")


def select_count(n_candidates: int, ratio: float) -> int:
    """How many of ``n_candidates`` tokens to select: round-half-up of ratio * n, at least 1.

    A fixed count per sequence (as in BERT's create_pretraining_data) rather than an independent
    coin per token, so that short sequences still get a prediction and the loss denominator is
    stable. Half-up instead of Python's banker's rounding so the count is monotone in n.
    """
    if n_candidates <= 0:
        return 0
    return max(1, int(np.floor(ratio * n_candidates + 0.5)))


def mask_tokens(input_ids: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig, *, mask_id: int,
                special_mask: np.ndarray, random_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt one example for MLM; returns ``(masked_ids, labels)``, both new int64 arrays.

    ``special_mask`` (bool, same shape) marks positions that may never be selected ([CLS], [SEP],
    padding, ...). ``labels`` holds the original id at selected positions and -100 elsewhere.
    """
    input_ids = np.asarray(input_ids)
    special_mask = np.asarray(special_mask, dtype=bool)
    if input_ids.ndim != 1 or special_mask.shape != input_ids.shape:
        raise ValueError(f"mask_tokens expects 1-D input_ids and a special_mask of the same shape, "
                         f"got {input_ids.shape} and {special_mask.shape}")
    masked = input_ids.astype(np.int64, copy=True)
    labels = np.full(input_ids.shape, IGNORE_INDEX, dtype=np.int64)

    candidates = np.flatnonzero(~special_mask)
    n = select_count(candidates.size, cfg.ratio)
    if n == 0:
        return masked, labels
    selected = rng.choice(candidates, size=n, replace=False)
    labels[selected] = masked[selected]

    # One uniform draw per selected token, cut by cumulative thresholds; normalising by the total
    # absorbs the 1e-6 slack the config allows, so e.g. mask=1.0 makes every fate [MASK] exactly.
    total = cfg.mask + cfg.random + cfg.keep
    u = rng.random(n) * total
    to_mask = selected[u < cfg.mask]
    to_random = selected[(u >= cfg.mask) & (u < cfg.mask + cfg.random)]
    masked[to_mask] = mask_id
    if to_random.size:
        random_ids = np.asarray(random_ids)
        if random_ids.size == 0:
            raise ValueError("mask_tokens: random_ids is empty but the config asks for random replacements")
        masked[to_random] = random_ids[rng.integers(0, random_ids.size, size=to_random.size)]
    return masked, labels
