"""Training examples cut from a TokenizedCorpus: the input formats of RoBERTa's ablation (Liu et al.
2019, section 4.2) and ALBERT's sentence-order pairs.

- ``PackedInstances``          full_sentences     contiguous text, may cross documents
- ``DocSentencesInstances``    doc_sentences      contiguous text of one document
- ``SegmentPairInstances``     segment_pair_nsp   BERT segment pairs + next-sentence prediction
- ``SentencePairInstances``    sentence_pair_nsp  single natural sentences + NSP
- ``SentenceOrderInstances``   segment_pair_sop   ALBERT sentence-order prediction

Builders return unpadded int64 arrays (the collator pads) and ``word_start``, a bool array
aligned with ``input_ids``: True where a word starts, from the tokenizer's word boundaries stored
in the corpus (special tokens are words of their own, and the first token of every segment starts
a word even where a cut fell inside one). Whole-word and span masking read it; the collator
drops it. ``seq_len`` always counts the special tokens. Randomness comes only from the ``rng``
argument of ``get`` (derived by the caller from seed, epoch and example index); ``__init__`` is
deterministic so that ``len`` and example indices do not depend on the seed.

Tokens per batch: the formats whose examples are short by construction (sentence_pair_nsp,
doc_sentences) set ``short_examples`` and expose ``mean_length``, the expected non-pad tokens
per example; the datamodule scales their batch size so that a batch holds as many tokens as a
full one (see nlpx.train.datamodule.batch_size_for).
"""

from __future__ import annotations

import numpy as np

from nlpx.data.corpus import TokenizedCorpus
from nlpx.errors import UserError


def _check_index(idx: int, n: int) -> int:
    if not 0 <= idx < n:
        raise IndexError(f"example index {idx} out of range [0, {n})")
    return int(idx)


def _framed(cls_id: int, sep_id: int, segments: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """``[CLS] s_1 [SEP] ... s_k [SEP]`` from (token ids, word starts) per segment, with
    token_type_ids 0 up to the first [SEP] and 1 after it."""
    one = np.ones(1, dtype=bool)
    ids, starts, types = [np.array([cls_id])], [one], [np.zeros(1, dtype=np.int64)]
    for k, (seg, seg_starts) in enumerate(segments):
        seg_starts = np.array(seg_starts, dtype=bool)  # a copy: the corpus may be a read-only memmap
        if seg_starts.size:
            seg_starts[0] = True  # a cut inside a word leaves its tail as a word of the example
        ids += [seg, np.array([sep_id])]
        starts += [seg_starts, one]
        types.append(np.full(seg.size + 1, min(k, 1), dtype=np.int64))
    return {"input_ids": np.concatenate(ids).astype(np.int64, copy=False),
            "token_type_ids": np.concatenate(types),
            "word_start": np.concatenate(starts)}


class PackedInstances:
    """FULL-SENTENCES packing: the split is read as one stream ``doc0 SEP doc1 SEP ... docN-1 SEP``
    and example i is ``[CLS] stream[i*L:(i+1)*L] [SEP]`` with ``L = seq_len - 2``.

    The stream is never materialised (the corpus may be a large memmap); the separator after
    every document (empty ones included) marks the document boundary for the model.
    """

    short_examples = False

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

    def _stream_positions(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(is_sep, corpus token index) of ``stream[start:stop]``; the index is -1 at separators."""
        start, stop = max(0, int(start)), min(int(stop), self.stream_length)
        pos = np.arange(start, max(stop, start), dtype=np.int64)
        doc = np.searchsorted(self._stream_starts, pos, side="right") - 1
        local = pos - self._stream_starts[doc]
        is_sep = local == self._doc_lens[doc]
        index = np.where(is_sep, -1, self._doc_offsets[doc] + local)
        return is_sep, index

    def stream_slice(self, start: int, stop: int) -> np.ndarray:
        """int64 copy of ``stream[start:stop]`` (clipped to the stream like a Python slice)."""
        return self._stream_segment(start, stop)[0]

    def _stream_segment(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        is_sep, index = self._stream_positions(start, stop)
        ids = np.full(index.size, self.sep_id, dtype=np.int64)
        ids[~is_sep] = self.corpus.tokens[index[~is_sep]]
        starts = np.ones(index.size, dtype=bool)
        starts[~is_sep] = self.corpus.starts_word(index[~is_sep])
        return ids, starts

    def get(self, idx: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Example ``idx``; ``rng`` is accepted for a uniform builder interface and ignored."""
        idx = _check_index(idx, len(self))
        segment = self._stream_segment(idx * self._span, (idx + 1) * self._span)
        return _framed(self.cls_id, self.sep_id, [segment])


class DocSentencesInstances:
    """DOC-SENTENCES: as full_sentences (``PackedInstances``), but an example never crosses a
    document boundary. Document d is cut into consecutive pieces of ``L = seq_len - 2`` tokens,
    each ``[CLS] piece [SEP]``; the last piece of a document ends at the document end and is
    shorter (the collator pads it). Cut at fixed lengths like full_sentences, so the two formats
    differ only in crossing documents. Empty documents give no example.

    Tokens per batch: RoBERTa kept them comparable to FULL-SENTENCES by growing the batch where
    inputs end early. Here the batch size is fixed per run (the stream sampler resumes and splits
    across ranks by batch index, which a per-batch size would break) and scaled by the exact
    ``mean_length`` below: ``batch_size x seq_len / mean_length`` examples hold on average the
    tokens of a full batch (``nlpx.train.datamodule.batch_size_for``).
    """

    short_examples = True

    def __init__(self, corpus: TokenizedCorpus, seq_len: int, cls_id: int, sep_id: int):
        if seq_len < 3:
            raise UserError(f"seq_len must be >= 3 for doc_sentences examples ([CLS] x [SEP]), got {seq_len}")
        self.corpus = corpus
        self.seq_len, self.cls_id, self.sep_id = int(seq_len), int(cls_id), int(sep_id)
        L = self.seq_len - 2
        offsets = np.asarray(corpus.doc_offsets, dtype=np.int64)
        pieces = -(-np.diff(offsets) // L)
        self.example_doc = np.repeat(np.arange(corpus.num_docs, dtype=np.int64), pieces)
        first_of_doc = np.cumsum(pieces) - pieces
        k = np.arange(self.example_doc.size, dtype=np.int64) - first_of_doc[self.example_doc]
        self.example_start = offsets[self.example_doc] + k * L
        self.example_stop = np.minimum(self.example_start + L, offsets[self.example_doc + 1])

    def __len__(self) -> int:
        return int(self.example_doc.size)

    @property
    def mean_length(self) -> float:
        """Exact mean of ``len(input_ids)`` over the examples (specials included)."""
        if not len(self):
            return float(self.seq_len)
        return float(self.corpus.num_tokens + 2 * len(self)) / len(self)

    def get(self, idx: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Example ``idx``; ``rng`` is accepted for a uniform builder interface and ignored."""
        idx = _check_index(idx, len(self))
        a, b = int(self.example_start[idx]), int(self.example_stop[idx])
        piece = np.asarray(self.corpus.tokens[a:b], dtype=np.int64)
        return _framed(self.cls_id, self.sep_id, [(piece, self.corpus.starts_word(slice(a, b)))])


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


def truncation_windows(len_a: int, len_b: int, max_total: int,
                       rng: np.random.Generator) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((front_a, keep_a), (front_b, keep_b))``: what truncate_seq_pair keeps of each segment.
    Each removed token comes off the front or the back with probability 1/2, so the front count
    per segment is Binomial(removed, 1/2) (one draw per segment that loses tokens, A first)."""
    out = []
    for size, keep in zip((len_a, len_b), truncated_pair_lengths(len_a, len_b, max_total)):
        removed = size - keep
        out.append((int(rng.binomial(removed, 0.5)) if removed else 0, keep))
    return out[0], out[1]


def truncate_pair(a: np.ndarray, b: np.ndarray, max_total: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """truncate_seq_pair without the per-token loop (see ``truncation_windows``)."""
    (fa, ka), (fb, kb) = truncation_windows(a.size, b.size, max_total, rng)
    return a[fa:fa + ka], b[fb:fb + kb]


def greedy_chunks(sent_offsets: np.ndarray, doc_sents: np.ndarray,
                  budget: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(doc, first sentence, end sentence) of BERT's chunks: each document cut greedily into runs
    of whole consecutive sentences of at most ``budget`` tokens (an over-long sentence alone),
    in corpus order; chunks without text are dropped."""
    # Greedy per document, but vectorised across documents: each round cuts the next chunk of
    # every unfinished document, so there are (max chunks in one document) rounds.
    so, L = sent_offsets, budget
    starts, ends = doc_sents[:-1].copy(), doc_sents[1:]
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


class _RandomText:
    """Uniform choices among the documents with text other than a given one (NSP negatives)."""

    def __init__(self, corpus: TokenizedCorpus, negative_prob: float):
        if not (0.0 <= negative_prob <= 1.0):
            raise UserError(f"negative_prob must be in [0, 1], got {negative_prob}")
        self.text_docs = np.flatnonzero(np.diff(np.asarray(corpus.doc_offsets)) > 0)
        if negative_prob > 0 and self.text_docs.size < 2:
            raise UserError("next-sentence prediction needs a corpus with at least 2 non-empty "
                            f"documents, this one has {self.text_docs.size}")

    def other_doc(self, not_doc: int, rng: np.random.Generator) -> int:
        pick = int(rng.integers(0, self.text_docs.size - 1))
        own = int(np.searchsorted(self.text_docs, not_doc))
        return int(self.text_docs[pick + (pick >= own)])  # skip A's document


class SegmentPairInstances:
    """BERT SEGMENT-PAIR + next-sentence prediction: ``[CLS] A [SEP] B [SEP]``.

    Each document is cut (deterministically) into chunks of whole consecutive sentences of at
    most ``L = seq_len - 3`` tokens; one example per chunk. Label 0 = B continues A (the rest of
    the chunk), 1 = B is random text from another document (HF BertForPreTraining convention).
    ``get_with_source`` also returns the document B came from, for tests and debugging; ``get``
    does not, so the collator only sees model inputs.
    """

    short_examples = False

    def __init__(self, corpus: TokenizedCorpus, seq_len: int, cls_id: int, sep_id: int,
                 negative_prob: float = 0.5):
        if seq_len < 5:
            raise UserError(f"seq_len must be >= 5 for segment pairs ([CLS] A [SEP] B [SEP]), got {seq_len}")
        self.corpus = corpus
        self.seq_len, self.cls_id, self.sep_id = int(seq_len), int(cls_id), int(sep_id)
        self.negative_prob = float(negative_prob)
        self._budget = self.seq_len - 3
        self._so = np.asarray(corpus.sent_offsets, dtype=np.int64)
        self._doc_sents = np.asarray(corpus.doc_sents, dtype=np.int64)
        # Random B must come from a document with text; A's own document is always one of these.
        self._random = _RandomText(corpus, self.negative_prob)
        self._text_docs = self._random.text_docs
        self.chunk_doc, self.chunk_start_sent, self.chunk_end_sent = greedy_chunks(
            self._so, self._doc_sents, self._budget)

    def __len__(self) -> int:
        return int(self.chunk_doc.size)

    def get(self, idx: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.get_with_source(idx, rng)[0]

    def get_with_source(self, idx: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], int]:
        """``(example, b_doc)``: the example dict of ``get`` and the document id B was taken from."""
        idx = _check_index(idx, len(self))
        so = self._so
        doc = int(self.chunk_doc[idx])
        s0, s1 = int(self.chunk_start_sent[idx]), int(self.chunk_end_sent[idx])
        t0, t1 = int(so[s0]), int(so[s1])
        if s1 - s0 >= 2:
            cut = int(so[rng.integers(s0 + 1, s1)])  # a sentence boundary strictly inside
        elif t1 - t0 >= 2:
            cut = t0 + int(rng.integers(1, t1 - t0))  # one sentence: split inside it
        else:
            cut = t1  # a one-token chunk: nothing is left to continue A
        is_random = rng.random() < self.negative_prob or (cut == t1 and self.negative_prob > 0)
        if is_random:
            b_doc, b0, b1 = self._random_segment(doc, self._budget - (cut - t0), rng)
        else:
            b_doc, b0, b1 = doc, cut, t1
        (fa, ka), (fb, kb) = truncation_windows(cut - t0, b1 - b0, self._budget, rng)
        example = _framed(self.cls_id, self.sep_id, [_segment(self.corpus, t0 + fa, ka),
                                                      _segment(self.corpus, b0 + fb, kb)])
        example["next_sentence_label"] = np.array(int(is_random), dtype=np.int64)
        return example, b_doc

    def _random_segment(self, not_doc: int, budget: int, rng: np.random.Generator) -> tuple[int, int, int]:
        """(doc, first token, end token) of whole consecutive sentences from a random start in a
        uniformly random other document, as many as fit ``budget`` (at least one; truncation
        handles an over-long one)."""
        other = self._random.other_doc(not_doc, rng)
        first, end = int(self._doc_sents[other]), int(self._doc_sents[other + 1])
        start = int(rng.integers(first, end))
        stop = int(np.searchsorted(self._so, self._so[start] + max(budget, 0), side="right")) - 1
        stop = max(min(stop, end), start + 1)
        return other, int(self._so[start]), int(self._so[stop])


def _segment(corpus: TokenizedCorpus, start: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(int64 token ids, word starts) of ``corpus.tokens[start:start + size]``."""
    return (np.asarray(corpus.tokens[start:start + size], dtype=np.int64),
            corpus.starts_word(slice(start, start + size)))


class SentencePairInstances:
    """RoBERTa SENTENCE-PAIR + NSP: ``[CLS] A [SEP] B [SEP]`` where A is one natural sentence and B
    is the next sentence of its document (label 0) or, with probability ``negative_prob``, one
    random sentence of another document (label 1: a uniformly random other document with text,
    then a uniformly random sentence of it with text). One example per sentence with text whose
    successor in the document has text; a document's last sentence serves only as a random B.
    A pair longer than ``seq_len - 3`` is truncated like a segment pair.

    Tokens per batch: these inputs are much shorter than ``seq_len``, and RoBERTa increased the
    batch size so that a batch keeps about the tokens of the segment-pair format. nlpx uses one
    rule for its short formats: the batch size is scaled so that the expected non-pad tokens per
    batch equal a full batch, ``data.batch_size x data.seq_len``; the scale comes from
    ``mean_length``, the expected example length (``nlpx.train.datamodule.batch_size_for``).
    """

    short_examples = True

    def __init__(self, corpus: TokenizedCorpus, seq_len: int, cls_id: int, sep_id: int,
                 negative_prob: float = 0.5):
        if seq_len < 5:
            raise UserError(f"seq_len must be >= 5 for sentence pairs ([CLS] A [SEP] B [SEP]), got {seq_len}")
        self.corpus = corpus
        self.seq_len, self.cls_id, self.sep_id = int(seq_len), int(cls_id), int(sep_id)
        self.negative_prob = float(negative_prob)
        self._budget = self.seq_len - 3
        self._random = _RandomText(corpus, self.negative_prob)
        self._so = np.asarray(corpus.sent_offsets, dtype=np.int64)
        doc_sents = np.asarray(corpus.doc_sents, dtype=np.int64)
        lens = np.diff(self._so)
        sent_doc = np.repeat(np.arange(corpus.num_docs, dtype=np.int64), np.diff(doc_sents))
        first = np.arange(max(lens.size - 1, 0), dtype=np.int64)
        ok = (sent_doc[first] == sent_doc[first + 1]) & (lens[first] > 0) & (lens[first + 1] > 0)
        self.first_sent = first[ok]
        # the sentences with text, and each document's range in that list, for random B
        self._text_sents = np.flatnonzero(lens > 0)
        self._doc_text = np.searchsorted(self._text_sents, doc_sents)
        self._sent_doc = sent_doc

    def __len__(self) -> int:
        return int(self.first_sent.size)

    @property
    def mean_length(self) -> float:
        """Expected ``len(input_ids)`` over examples and labels. Exact but for the truncation of
        a random B (taken at its expected length), which only matters for sentences near seq_len."""
        if not len(self):
            return float(self.seq_len)
        lens = np.diff(self._so)
        a, nxt = lens[self.first_sent], lens[self.first_sent + 1]
        # mean sentence length of a random other document: documents uniform, then sentences
        counts = np.diff(self._doc_text)
        sums = np.add.reduceat(np.append(lens[self._text_sents], 0), self._doc_text[:-1])
        sums = np.where(counts > 0, sums, 0)
        docs = self._random.text_docs
        doc_mean = np.zeros(counts.size)
        doc_mean[docs] = sums[docs] / counts[docs]
        k = docs.size
        own = doc_mean[self._sent_doc[self.first_sent]]
        rand = (doc_mean.sum() - own) / max(k - 1, 1)
        full = self.seq_len
        length = ((1 - self.negative_prob) * np.minimum(a + nxt + 3, full)
                  + self.negative_prob * np.minimum(a + rand + 3, full))
        return float(length.mean())

    def get(self, idx: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.get_with_source(idx, rng)[0]

    def get_with_source(self, idx: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], int]:
        """``(example, b_sentence)``: the example and the global index of B's sentence."""
        idx = _check_index(idx, len(self))
        a_sent = int(self.first_sent[idx])
        is_random = rng.random() < self.negative_prob
        if is_random:
            doc = self._random.other_doc(int(self._sent_doc[a_sent]), rng)
            lo, hi = int(self._doc_text[doc]), int(self._doc_text[doc + 1])
            b_sent = int(self._text_sents[rng.integers(lo, hi)])
        else:
            b_sent = a_sent + 1
        so = self._so
        a0, a1, b0, b1 = int(so[a_sent]), int(so[a_sent + 1]), int(so[b_sent]), int(so[b_sent + 1])
        (fa, ka), (fb, kb) = truncation_windows(a1 - a0, b1 - b0, self._budget, rng)
        example = _framed(self.cls_id, self.sep_id, [_segment(self.corpus, a0 + fa, ka),
                                                      _segment(self.corpus, b0 + fb, kb)])
        example["next_sentence_label"] = np.array(int(is_random), dtype=np.int64)
        return example, b_sent


class SentenceOrderInstances:
    """ALBERT SENTENCE-ORDER prediction (segment_pair_sop): two consecutive segments A, B of one
    document, cut as in segment_pair_nsp: the chunks of ``SegmentPairInstances`` (whole sentences,
    at most ``seq_len - 3`` tokens), split at a random sentence boundary strictly inside the chunk
    (inside the sentence for a one-sentence chunk). With probability ``swap_prob`` the example is
    ``[CLS] B [SEP] A [SEP]`` (label 1), else ``[CLS] A [SEP] B [SEP]`` (label 0), in
    ``next_sentence_label`` so that the NSP head and collator handle it unchanged. Truncation
    (an over-long single sentence only) happens before the swap, so a swapped example is exactly
    the in-order one with its two segments exchanged. Chunks of one token cannot make two
    segments and give no example (ALBERT pairs those with a random document instead, which would
    mix NSP into SOP).
    """

    short_examples = False

    def __init__(self, corpus: TokenizedCorpus, seq_len: int, cls_id: int, sep_id: int,
                 swap_prob: float = 0.5):
        if seq_len < 5:
            raise UserError(f"seq_len must be >= 5 for segment pairs ([CLS] A [SEP] B [SEP]), got {seq_len}")
        if not (0.0 <= swap_prob <= 1.0):
            raise UserError(f"swap_prob must be in [0, 1], got {swap_prob}")
        self.corpus = corpus
        self.seq_len, self.cls_id, self.sep_id = int(seq_len), int(cls_id), int(sep_id)
        self.swap_prob = float(swap_prob)
        self._budget = self.seq_len - 3
        self._so = np.asarray(corpus.sent_offsets, dtype=np.int64)
        doc, first, end = greedy_chunks(self._so, np.asarray(corpus.doc_sents, dtype=np.int64),
                                        self._budget)
        two = self._so[end] - self._so[first] >= 2
        self.chunk_doc, self.chunk_start_sent, self.chunk_end_sent = doc[two], first[two], end[two]

    def __len__(self) -> int:
        return int(self.chunk_doc.size)

    def get(self, idx: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = _check_index(idx, len(self))
        so = self._so
        s0, s1 = int(self.chunk_start_sent[idx]), int(self.chunk_end_sent[idx])
        t0, t1 = int(so[s0]), int(so[s1])
        inner = np.unique(so[s0 + 1:s1])
        inner = inner[(inner > t0) & (inner < t1)]  # boundaries that leave text on both sides
        cut = int(inner[rng.integers(inner.size)]) if inner.size else t0 + int(rng.integers(1, t1 - t0))
        swapped = rng.random() < self.swap_prob
        (fa, ka), (fb, kb) = truncation_windows(cut - t0, t1 - cut, self._budget, rng)
        a, b = _segment(self.corpus, t0 + fa, ka), _segment(self.corpus, cut + fb, kb)
        example = _framed(self.cls_id, self.sep_id, [b, a] if swapped else [a, b])
        example["next_sentence_label"] = np.array(int(swapped), dtype=np.int64)
        return example
