"""Word segmenters for whole-word masking where the tokenizer's own words are too small (`data.word_segmenter`).

BERT's tokenizers put every Chinese character in a word of its own, so whole-word masking on
their words is character masking. BERT-wwm (Cui et al. 2019) takes the words of a Chinese word
segmenter instead: all characters (tokens) of a segmented word are masked together. Theirs was
LTP; nlpx uses jieba (the package index's standard Chinese segmenter). A segmenter maps a
sentence to one bool per character, True where a word begins; the corpus cache turns that into
word starts per token (nlpx/data/cache.py, word_start_flags), and the segmenter's name and
version are part of the cache key.
"""

from __future__ import annotations

import numpy as np

from nlpx.errors import UserError


def jieba_word_begins(text: str) -> np.ndarray:
    import jieba

    begins = np.zeros(len(text), dtype=bool)
    for _, start, _end in jieba.tokenize(text):
        begins[start] = True
    return begins


def _jieba_version() -> str:
    import jieba

    jieba.setLogLevel(60)  # its dictionary-loading messages are not nlpx's to print
    return str(jieba.__version__)


# data.word_segmenter -> (the segmenter, its version for the cache key)
SEGMENTERS = {"jieba": (jieba_word_begins, _jieba_version)}


def segmenter(name: str | None):
    """The word_begins function of `name` (None: the tokenizer's own words)."""
    if name is None:
        return None
    if name not in SEGMENTERS:
        raise UserError(f"data.word_segmenter={name}: unknown (valid: {', '.join(SEGMENTERS)}, or null for the "
                        "tokenizer's own words)")
    return SEGMENTERS[name][0]


def segmenter_spec(name: str | None) -> dict | None:
    """What the cache key records of `name`: its name and installed version."""
    if name is None:
        return None
    segmenter(name)
    try:
        return {"name": name, "version": SEGMENTERS[name][1]()}
    except ImportError:
        raise UserError(f"data.word_segmenter={name}: {name} is not installed (pip install {name})") from None
