"""Training examples cut from a TokenizedCorpus: RoBERTa packing and BERT segment pairs (NSP).

Builders return unpadded int64 arrays (the collator pads). ``seq_len`` always counts the special
tokens. Randomness comes only from the ``rng`` argument of ``get`` (derived by the caller from
seed, epoch and example index); ``__init__`` is deterministic so that ``len`` and example
indices do not depend on the seed.
"""

from __future__ import annotations

import numpy as np

from nlpx.data.corpus import TokenizedCorpus
from nlpx.errors import UserError


def _check_index(idx: int, n: int) -> int:
    if not 0 <= idx < n:
        raise IndexError(f"example index {idx} out of range [0, {n})")
    return int(idx)


class PackedInstances:
    """FULL-SENTENCES packing: the split is read as one stream ``doc0 SEP doc1 SEP ... docN-1 SEP``
    and example i is ``[CLS] stream[i*L:(i+1)*L] [SEP]`` with ``L = seq_len - 2``.

    The stream is never materialised (the corpus may be a large memmap); the separator after
    every document (empty ones included) marks the document boundary for the model.
    """

    def __init__(self, corpus: TokenizedCorpus, seq_len: int, cls_id: int, sep_id: int):
        if seq_len < 3:
            raise UserError(f"seq_len must be >= 3 for packed examples ([CLS] x [SEP]), got {seq_len}")
        self.corpus = corpus
        self.seq_len, self.cls_id, self.sep_id = int(seq_len), int(cls_id), int(sep_id)
        self._span = self.seq_len - 2
        self._doc_offsets = np.asarray(corpus.doc_offsets, dtype=np.int64)
        # Doc d starts after d earlier separators; starts are strictly increasing because every
        # document occupies at least its separator, so searchsorted maps a position to one doc.
        self._stream_starts = self._doc_offsets[:-1] + np.arange(corpus.num_docs, dtype=np.int64)
        self._doc_lens = np.diff(self._doc_offsets)
        self.stream_length = corpus.num_tokens + corpus.num_docs

    def __len__(self) -> int:
        return -(-self.stream_length // self._span)

    def stream_slice(self, start: int, stop: int) -> np.ndarray:
        """int64 copy of ``stream[start:stop]`` (clipped to the stream like a Python slice)."""
        start, stop = max(0, int(start)), min(int(stop), self.stream_length)
        if stop <= start:
            return np.zeros(0, dtype=np.int64)
        pos = np.arange(start, stop, dtype=np.int64)
        doc = np.searchsorted(self._stream_starts, pos, side="right") - 1
        local = pos - self._stream_starts[doc]
        is_sep = local == self._doc_lens[doc]
        out = np.full(pos.size, self.sep_id, dtype=np.int64)
        out[~is_sep] = self.corpus.tokens[self._doc_offsets[doc[~is_sep]] + local[~is_sep]]
        return out

    def get(self, idx: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Example ``idx``; ``rng`` is accepted for a uniform builder interface and ignored."""
        idx = _check_index(idx, len(self))
        body = self.stream_slice(idx * self._span, (idx + 1) * self._span)
        input_ids = np.concatenate(([self.cls_id], body, [self.sep_id])).astype(np.int64)
        return {"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids)}


def truncated_pair_lengths(len_a: int, len_b: int, max_total: int) -> tuple[int, int]:
    """Lengths BERT's truncate_seq_pair leaves: one token at a time off the longer segment
    (B on a tie, as in the reference implementation), until the pair fits ``max_total``."""
    excess = len_a + len_b - max_total
    if excess <= 0:
        return len_a, len_b
    cut_a = min(excess, max(len_a - len_b, 0))
    cut_b = min(excess, max(len_b - len_a, 0))
    rest = excess - cut_a - cut_b  # removed alternately once equal, B first
    cut_b += (rest + 1) // 2
    cut_a += rest // 2
    return len_a - cut_a, len_b - cut_b


def truncate_pair(a: np.ndarray, b: np.ndarray, max_total: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """truncate_seq_pair without the per-token loop: each removed token comes off the front or
    the back with probability 1/2, so the front count per segment is Binomial(removed, 1/2)."""
    new_a, new_b = truncated_pair_lengths(a.size, b.size, max_total)
    out = []
    for seg, keep in ((a, new_a), (b, new_b)):
        removed = seg.size - keep
        front = int(rng.binomial(removed, 0.5)) if removed else 0
        out.append(seg[front:front + keep])
    return out[0], out[1]


class SegmentPairInstances:
    """BERT SEGMENT-PAIR + next-sentence prediction: ``[CLS] A [SEP] B [SEP]``.

    Each document is cut (deterministically) into chunks of whole consecutive sentences of at
    most ``L = seq_len - 3`` tokens; one example per chunk. Label 0 = B continues A (the rest of
    the chunk), 1 = B is random text from another document (HF BertForPreTraining convention).
    ``get_with_source`` also returns the document B came from, for tests and debugging; ``get``
    does not, so the collator only sees model inputs.
    """

    def __init__(self, corpus: TokenizedCorpus, seq_len: int, cls_id: int, sep_id: int,
                 negative_prob: float = 0.5):
        if seq_len < 5:
            raise UserError(f"seq_len must be >= 5 for segment pairs ([CLS] A [SEP] B [SEP]), got {seq_len}")
        if not (0.0 <= negative_prob <= 1.0):
            raise UserError(f"negative_prob must be in [0, 1], got {negative_prob}")
        self.corpus = corpus
        self.seq_len, self.cls_id, self.sep_id = int(seq_len), int(cls_id), int(sep_id)
        self.negative_prob = float(negative_prob)
        self._budget = self.seq_len - 3
        self._so = np.asarray(corpus.sent_offsets, dtype=np.int64)
        self._doc_sents = np.asarray(corpus.doc_sents, dtype=np.int64)
        # Random B must come from a document with text; A's own document is always one of these.
        self._text_docs = np.flatnonzero(np.diff(np.asarray(corpus.doc_offsets)) > 0)
        if self.negative_prob > 0 and self._text_docs.size < 2:
            raise UserError("next-sentence prediction needs a corpus with at least 2 non-empty "
                            f"documents, this one has {self._text_docs.size}")
        self.chunk_doc, self.chunk_start_sent, self.chunk_end_sent = self._cut_chunks()

    def _cut_chunks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Greedy per document, but vectorised across documents: each round cuts the next chunk of
        # every unfinished document, so there are (max chunks in one document) rounds.
        so, L = self._so, self._budget
        starts, ends = self._doc_sents[:-1].copy(), self._doc_sents[1:]
        docs, firsts, lasts = [], [], []
        active = np.flatnonzero(starts < ends)
        while active.size:
            s = starts[active]
            e = np.searchsorted(so, so[s] + L, side="right") - 1  # last boundary within budget
            e = np.maximum(np.minimum(e, ends[active]), s + 1)  # an over-long sentence alone
            docs.append(active)
            firsts.append(s)
            lasts.append(e)
            starts[active] = e
            active = active[starts[active] < ends[active]]
        if not docs:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        doc, first, last = (np.concatenate(x).astype(np.int64) for x in (docs, firsts, lasts))
        has_text = so[last] > so[first]  # a chunk of empty sentences cannot make a pair
        order = np.argsort(first[has_text], kind="stable")  # sentence order = document order
        return doc[has_text][order], first[has_text][order], last[has_text][order]

    def __len__(self) -> int:
        return int(self.chunk_doc.size)

    def get(self, idx: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.get_with_source(idx, rng)[0]

    def get_with_source(self, idx: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], int]:
        """``(example, b_doc)``: the example dict of ``get`` and the document id B was taken from."""
        idx = _check_index(idx, len(self))
        so, tokens = self._so, self.corpus.tokens
        doc = int(self.chunk_doc[idx])
        s0, s1 = int(self.chunk_start_sent[idx]), int(self.chunk_end_sent[idx])
        t0, t1 = int(so[s0]), int(so[s1])
        if s1 - s0 >= 2:
            cut = int(so[rng.integers(s0 + 1, s1)])  # a sentence boundary strictly inside
        elif t1 - t0 >= 2:
            cut = t0 + int(rng.integers(1, t1 - t0))  # one sentence: split inside it
        else:
            cut = t1  # a one-token chunk: nothing is left to continue A
        a = tokens[t0:cut]
        is_random = rng.random() < self.negative_prob or (cut == t1 and self.negative_prob > 0)
        if is_random:
            b_doc, b = self._random_segment(doc, self._budget - a.size, rng)
        else:
            b_doc, b = doc, tokens[cut:t1]
        a, b = truncate_pair(a, b, self._budget, rng)
        input_ids = np.concatenate(([self.cls_id], a, [self.sep_id], b, [self.sep_id])).astype(np.int64)
        token_type_ids = np.zeros(input_ids.size, dtype=np.int64)
        token_type_ids[a.size + 2:] = 1
        example = {"input_ids": input_ids, "token_type_ids": token_type_ids,
                   "next_sentence_label": np.array(int(is_random), dtype=np.int64)}
        return example, b_doc

    def _random_segment(self, not_doc: int, budget: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """Whole consecutive sentences from a random start in a uniformly random other document,
        as many as fit ``budget`` (at least one; truncation handles an over-long one)."""
        pick = int(rng.integers(0, self._text_docs.size - 1))
        own = int(np.searchsorted(self._text_docs, not_doc))
        other = int(self._text_docs[pick + (pick >= own)])  # skip A's document
        first, end = int(self._doc_sents[other]), int(self._doc_sents[other + 1])
        start = int(rng.integers(first, end))
        stop = int(np.searchsorted(self._so, self._so[start] + max(budget, 0), side="right")) - 1
        stop = max(min(stop, end), start + 1)
        return other, self.corpus.tokens[self._so[start]:self._so[stop]]
