"""A tokenized corpus split as flat token arrays with document and sentence offsets.

The arrays are numpy memmaps on disk (see cache.py), so memory does not grow with the corpus.
Layout (all offsets are global positions into ``tokens``):

- ``tokens``       int32 [N]     every token id of the split, documents back to back, no specials
- ``sent_offsets`` int64 [S + 1] sentence s = tokens[sent_offsets[s]:sent_offsets[s + 1]]
- ``doc_sents``    int64 [D + 1] document d = sentences doc_sents[d]:doc_sents[d + 1]
- ``word_starts``  bool  [N]     token starts a word, from the tokenizer's own word_ids() (see
                                 cache.word_start_flags); None means no word information, and
                                 every token then counts as a word of its own
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenizedCorpus:
    tokens: np.ndarray
    sent_offsets: np.ndarray
    doc_sents: np.ndarray
    word_starts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.word_starts is not None and self.word_starts.shape != self.tokens.shape:
            raise ValueError(f"word_starts has shape {self.word_starts.shape}, tokens {self.tokens.shape}")

    @classmethod
    def from_documents(cls, docs: list[list[list[int]]],
                       word_starts: list[list[list[bool]]] | None = None) -> "TokenizedCorpus":
        """Build an in-memory corpus from documents given as lists of tokenized sentences, with
        optional per-token word-start flags in the same nesting."""
        sent_lens = [len(s) for d in docs for s in d]
        sents_per_doc = [len(d) for d in docs]
        tokens = np.fromiter((t for d in docs for s in d for t in s), dtype=np.int32,
                             count=sum(sent_lens))
        sent_offsets = np.zeros(len(sent_lens) + 1, dtype=np.int64)
        np.cumsum(sent_lens, out=sent_offsets[1:])
        doc_sents = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(sents_per_doc, out=doc_sents[1:])
        starts = None
        if word_starts is not None:
            starts = np.fromiter((bool(f) for d in word_starts for s in d for f in s), dtype=bool)
        return cls(tokens, sent_offsets, doc_sents, starts)

    @property
    def num_docs(self) -> int:
        return len(self.doc_sents) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def doc_offsets(self) -> np.ndarray:
        """int64 [D + 1]: document d = tokens[doc_offsets[d]:doc_offsets[d + 1]]."""
        return self.sent_offsets[self.doc_sents]

    def doc(self, d: int) -> np.ndarray:
        return self.tokens[self.sent_offsets[self.doc_sents[d]]:self.sent_offsets[self.doc_sents[d + 1]]]

    def starts_word(self, index) -> np.ndarray:
        """bool copy of ``word_starts[index]`` (a slice or an index array); all True without word
        information."""
        if self.word_starts is None:
            if isinstance(index, slice):
                return np.ones(len(range(*index.indices(self.num_tokens))), dtype=bool)
            return np.ones(np.shape(index), dtype=bool)
        return np.array(self.word_starts[index], dtype=bool)
