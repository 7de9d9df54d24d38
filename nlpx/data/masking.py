"""BERT-style masked-language-model corruption of one example, by token, whole word or span.

Strategies (``objective.masking.strategy``):

- ``token``: ``select_count`` tokens drawn uniformly, 80/10/10 per token (BERT).
- ``whole_word``: whole words drawn in random order until ``select_count`` tokens are selected,
  skipping a word that would overshoot (BERT's create_pretraining_data with whole-word masking);
  80/10/10 per token, as in that reference and HF's DataCollatorForWholeWordMask.
- ``span``: SpanBERT spans of whole words, 80/10/10 per span, with the Span Boundary Objective
  targets (see ``mask_spans``).
- ``none``: the input is left as it is and no label is set (causal LM reads its targets from
  input_ids).

Words come from the ``word_start`` flags of the example (the tokenizer's word boundaries, see
nlpx.data.cache.word_start_flags). A special token is never selected and always ends a word.

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
STRATEGIES = ("token", "whole_word", "span", "none")


@dataclass(frozen=True)
class MaskingConfig:
    ratio: float = 0.15  # fraction of candidate tokens selected for prediction
    mask: float = 0.8  # of the selected: replaced by [MASK]
    random: float = 0.1  # replaced by a token drawn uniformly from random_ids
    keep: float = 0.1  # left unchanged (still predicted)
    strategy: str = "token"  # token | whole_word | span | none
    span_p: float = 0.2  # span: lengths in words ~ Geometric(span_p) truncated to 1..span_max
    span_max: int = 10

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(f"objective.masking.strategy={self.strategy}: unknown masking strategy "
                            f"(valid: {', '.join(STRATEGIES)})")
        if isinstance(self.span_p, bool) or not isinstance(self.span_p, (int, float)) \
                or not (0.0 < self.span_p <= 1.0):
            raise UserError(f"objective.masking.span_p={self.span_p}: must be a number in (0, 1]")
        if isinstance(self.span_max, bool) or not isinstance(self.span_max, (int, np.integer)) \
                or self.span_max < 1:
            raise UserError(f"objective.masking.span_max={self.span_max}: must be an integer >= 1")
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


def span_length_pmf(p: float, max_len: int) -> np.ndarray:
    """P(length = 1..max_len words): Geometric(p) truncated to 1..max_len and renormalised, as in
    SpanBERT's code (not min(L, max_len), which piles the tail onto max_len)."""
    pmf = p * (1.0 - p) ** np.arange(max_len)
    return pmf / pmf.sum()


def word_bounds(special_mask: np.ndarray, word_start: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)``: token positions ``[start, end)`` of the words made of non-special tokens.
    A word starts at a flagged token or right after a special token, and ends at the next start or
    special token. Without ``word_start`` every token is a word."""
    special = np.asarray(special_mask, dtype=bool)
    begins = ~special
    if word_start is not None:
        word_start = np.asarray(word_start, dtype=bool)
        if word_start.shape != special.shape:
            raise ValueError(f"word_start has shape {word_start.shape}, the example {special.shape}")
        after_special = np.ones_like(special)
        after_special[1:] = special[:-1]
        begins &= word_start | after_special
    starts = np.flatnonzero(begins)
    stops = np.append(np.flatnonzero(begins | special), special.size)
    return starts, stops[np.searchsorted(stops, starts, side="right")]


def _check_shapes(input_ids: np.ndarray, special_mask: np.ndarray) -> None:
    if input_ids.ndim != 1 or special_mask.shape != input_ids.shape:
        raise ValueError(f"masking expects 1-D input_ids and a special_mask of the same shape, "
                         f"got {input_ids.shape} and {special_mask.shape}")


def mask_tokens(input_ids: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig, *, mask_id: int,
                special_mask: np.ndarray, random_ids: np.ndarray,
                word_start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt one example for MLM (strategy token, whole_word or none); returns
    ``(masked_ids, labels)``, both new int64 arrays.

    ``special_mask`` (bool, same shape) marks positions that may never be selected ([CLS], [SEP],
    padding, ...). ``labels`` holds the original id at selected positions and -100 elsewhere.
    ``word_start`` (bool, same shape) is read by whole_word only.
    """
    input_ids = np.asarray(input_ids)
    special_mask = np.asarray(special_mask, dtype=bool)
    _check_shapes(input_ids, special_mask)
    if cfg.strategy == "span":
        raise ValueError("mask_tokens: strategy=span also returns span boundaries, call mask_spans")
    masked = input_ids.astype(np.int64, copy=True)
    labels = np.full(input_ids.shape, IGNORE_INDEX, dtype=np.int64)
    if cfg.strategy == "none":
        return masked, labels

    candidates = np.flatnonzero(~special_mask)
    n = select_count(candidates.size, cfg.ratio)
    if n == 0:
        return masked, labels
    if cfg.strategy == "whole_word":
        selected = _whole_words(special_mask, word_start, n, rng)
        n = selected.size
    else:
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


def _whole_words(special_mask: np.ndarray, word_start: np.ndarray | None, n: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of whole words, about ``n`` tokens: words in a random order, each taken
    unless it would overshoot ``n`` (then the next is tried), stopping at exactly ``n``. If every
    word is longer than ``n`` the first word of the order is taken, so that an example with text
    always has a prediction (as select_count guarantees for the token strategy)."""
    starts, ends = word_bounds(special_mask, word_start)
    order = rng.permutation(starts.size)
    sizes = (ends - starts)[order]
    chosen, total = [], 0
    for k, size in zip(order.tolist(), sizes.tolist()):
        if total + size > n:
            continue
        chosen.append(k)
        total += size
        if total == n:
            break
    if not chosen:
        chosen = [int(order[0])]
    chosen.sort()
    return np.concatenate([np.arange(starts[k], ends[k]) for k in chosen])


def mask_spans(input_ids: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig, *, mask_id: int,
               special_mask: np.ndarray, random_ids: np.ndarray,
               word_start: np.ndarray | None) -> dict[str, np.ndarray]:
    """SpanBERT masking of one example; returns new int64 arrays ``input_ids`` (corrupted),
    ``labels`` (original id inside spans, -100 elsewhere) and, for the Span Boundary Objective,
    ``sbo_left`` / ``sbo_right`` (positions of the tokens just before and just after the token's
    span) and ``sbo_pos`` (the token's 0-based position inside its span), -1 outside spans.
    ``sbo_pos`` counts tokens, so it can exceed ``span_max - 1`` when words have several tokens.

    - Span lengths in words ~ Geometric(span_p) truncated to 1..span_max and renormalised
      (``span_length_pmf``; mean 3.797 for 0.2 / 10); a span covers whole words.
    - The start is uniform over the word starts where a span of that length fits: inside one run
      of non-special tokens and clear of the other spans. Spans never overlap, and one unmasked
      word is kept between two spans, so that boundary tokens are never inside a span (SpanBERT
      gets the same by merging touching spans, which would change the length distribution and
      give a merged span two fates). When no free run is long enough, the length is drawn from
      the pmf restricted to the lengths that fit.
    - Spans are added until ``ratio`` of the candidate tokens are masked; the last span may go
      over the target, never by more than one span. Drawing spans until the target is reached
      would overshoot by half a span on average (about +2 points at 128 tokens), and rejecting
      the span that overshoots would favour short spans. Instead, with d tokens
      still missing, the next span is drawn with probability q(d) = d / (E[S] + E[(d - S)+])
      (S: a span's size in tokens, approximated as span words x the example's mean tokens per
      word), else the masking stops. q solves f(d) = q(d) (E[S] + E[f(d - S)]) for f(d) = d:
      the expected masked count is the target; q(d) = 1 once no span can overshoot. No
      decision looks at the length of a span already drawn, so every drawn span is kept and
      span lengths follow the pmf. The first span is always drawn, so an example with text
      always has a prediction.
    - 80/10/10 per span: one draw decides the fate of all the tokens of a span (random tokens are
      drawn per token).
    - The first and last positions are never masked: they are the boundaries of spans touching
      the ends ([CLS] and [SEP] in nlpx examples, which SpanBERT also uses as boundaries).
    """
    input_ids = np.asarray(input_ids)
    special = np.array(special_mask, dtype=bool)
    _check_shapes(input_ids, special)
    length = input_ids.size
    if length:
        special[0] = special[-1] = True
    masked = input_ids.astype(np.int64, copy=True)
    out = {"input_ids": masked, "labels": np.full(length, IGNORE_INDEX, dtype=np.int64),
           **{k: np.full(length, -1, dtype=np.int64) for k in ("sbo_left", "sbo_right", "sbo_pos")}}
    starts, ends = word_bounds(special, word_start)
    n_words = starts.size
    if n_words == 0:
        return out
    target = cfg.ratio * int((~special).sum())
    # free[k]: how many consecutive words from word k a new span may cover (same run, no span)
    run_break = np.append(ends[:-1] != starts[1:], True)
    run_end = np.flatnonzero(run_break) + 1
    free = run_end[np.cumsum(np.append(0, run_break[:-1]))] - np.arange(n_words)
    pmf = span_length_pmf(float(cfg.span_p), int(cfg.span_max))
    cdf = np.cumsum(pmf)
    sizes = np.arange(1, pmf.size + 1) * float((ends - starts).sum() / n_words)  # S per length
    mean_size = float(pmf @ sizes)
    spans: list[tuple[int, int]] = []  # token positions [a, b)
    n_masked = 0
    while n_masked < target:
        longest = int(free.max())
        if longest == 0:
            break
        missing = target - n_masked
        if spans and missing < sizes[-1]:  # the next span may overshoot: draw it with q(d)
            q = missing / (mean_size + float(pmf @ np.maximum(missing - sizes, 0.0)))
            if rng.random() >= q:
                break
        fit = min(int(cfg.span_max), longest)
        words = min(int(np.searchsorted(cdf[:fit] / cdf[fit - 1], rng.random(), side="right")) + 1, fit)
        where = np.flatnonzero(free >= words)
        w = int(where[rng.integers(where.size)])
        a, b = int(starts[w]), int(ends[w + words - 1])
        spans.append((a, b))
        n_masked += b - a
        # block the span and its neighbouring words in the same run
        lo = w - 1 if w > 0 and ends[w - 1] == a else w
        hi = w + words + 1 if w + words < n_words and starts[w + words] == b else w + words
        free[lo:hi] = 0
        free[:lo] = np.minimum(free[:lo], lo - np.arange(lo))

    total = cfg.mask + cfg.random + cfg.keep
    fates = rng.random(len(spans)) * total
    random_ids = np.asarray(random_ids)
    for (a, b), u in zip(spans, fates.tolist()):
        out["labels"][a:b] = input_ids[a:b]
        out["sbo_left"][a:b] = a - 1
        out["sbo_right"][a:b] = b
        out["sbo_pos"][a:b] = np.arange(b - a)
        if u < cfg.mask:
            masked[a:b] = mask_id
        elif u < cfg.mask + cfg.random:
            if random_ids.size == 0:
                raise ValueError("mask_spans: random_ids is empty but the config asks for random replacements")
            masked[a:b] = random_ids[rng.integers(0, random_ids.size, size=b - a)]
    return out


def mask_example(input_ids: np.ndarray, rng: np.random.Generator, cfg: MaskingConfig, *, mask_id: int,
                 special_mask: np.ndarray, random_ids: np.ndarray,
                 word_start: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The masked fields of one example for ``cfg.strategy``: ``input_ids`` and ``labels``, plus
    ``sbo_left`` / ``sbo_right`` / ``sbo_pos`` for span."""
    kwargs = {"mask_id": mask_id, "special_mask": special_mask, "random_ids": random_ids,
              "word_start": word_start}
    if cfg.strategy == "span":
        return mask_spans(input_ids, rng, cfg, **kwargs)
    masked, labels = mask_tokens(input_ids, rng, cfg, **kwargs)
    return {"input_ids": masked, "labels": labels}
