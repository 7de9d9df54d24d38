"""The on-disk cache of a tokenizer and a tokenized corpus, keyed by everything that affects them.

A second run with the same sources and tokenizer settings memory-maps the arrays and goes
straight to training. Entries are built in a temporary folder and renamed into place, so a
crash never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlpx.data.corpus import TokenizedCorpus
from nlpx.errors import UserError

log = logging.getLogger("nlpx.data")
CACHE_VERSION = 3  # 2: at least two validation documents; 3: word_starts.bin
SPLITS = ("train", "val")
_ENCODE_BATCH = 1 << 19  # characters of text per batch of documents (about 4,000 sentences of prose)
_LOCAL_BATCHES = 1  # batches encoded in this process before worker processes start (a tiny corpus never starts them)


@dataclass
class PreparedCorpus:
    tokenizer: object
    train: TokenizedCorpus
    val: TokenizedCorpus
    path: Path
    meta: dict


def cache_key(spec: dict) -> str:
    blob = json.dumps({"version": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def prepare(corpus, *, cache_dir: str | Path, val_fraction: float, tokenizer_spec: dict,
            make_tokenizer, workers: int | None = None, word_segmenter: str | None = None) -> PreparedCorpus:
    """Return the cached corpus for (corpus, tokenizer spec), building it on a miss.

    `make_tokenizer(sentences)` returns a fast tokenizer (trained or loaded); `sentences()` gives a
    fresh iterator over the corpus's sentences each time it is called. `workers`: processes that
    encode (None: one per CPU this process may use; 1: this process only). `word_segmenter`: the
    words of whole-word masking come from it, not the tokenizer (nlpx/data/segmenters.py).
    """
    from nlpx.data.segmenters import segmenter_spec

    workers = len(os.sched_getaffinity(0)) if workers is None else workers
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction={val_fraction}: must be in (0, 1)")
    spec = {"corpus": corpus.fingerprint(), "tokenizer": tokenizer_spec, "val_fraction": val_fraction}
    if word_segmenter is not None:  # (absent otherwise: the keys of existing entries stay as they were)
        spec["word_segmenter"] = segmenter_spec(word_segmenter)
    root = Path(cache_dir).expanduser()
    entry = root / cache_key(spec)
    if not (entry / "meta.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        _remove_dead_builds(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{os.getpid()}-", dir=root))
        try:
            _build(tmp, corpus, spec, val_fraction, make_tokenizer, workers, word_segmenter)
            try:
                os.replace(tmp, entry)
            except OSError:  # another process finished the same entry first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("corpus cached at %s", entry)
    else:
        log.info("corpus cache hit: %s", entry)
    return load(entry)


class _Encoder:
    """Documents (lists of sentences) -> token ids, word-start flags and each sentence's length.

    Where the tokenizer allows it, a document is encoded as one text and cut back into its
    sentences: one `Encoding` a document instead of one a sentence, which is much of the cost of
    encoding short sentences (the tokenizers library hands each Encoding over as Python objects).
    Two ways, each used only where a probe document shows it exact for this tokenizer (see
    `_joining_is_exact`), the first where both are:

    - spaced: the sentences joined by one space, cut where each sentence's first character's
      token begins (`char_to_token`). Exact where the pre-tokenizer splits at whitespace and
      nothing reads across it (WordPiece's); the cheapest, since the text has nothing added. A
      document where a sentence does not begin a token of its own (its first character is
      normalized away, or it has no token) goes the next way.
    - separated: joined by the tokenizer's separator token and cut back at that token. The
      tokenizers library splits a text at its special tokens before it normalizes and
      pre-tokenizes the pieces, so each sentence is tokenized as if alone (byte-level BPE, whose
      tokens carry the space before a word, needs this). A document with the separator's text
      inside a sentence is encoded sentence by sentence.

    Every other document, every document of a tokenizer where neither is exact, and every
    document whose words come from a word segmenter (which reads each sentence's own text) is
    encoded sentence by sentence.
    """

    def __init__(self, backend, from_offsets: bool, separator: str | None, join: bool | None = None,
                 split=None, space: bool | None = None, segmenter: str | None = None):
        from nlpx.data.segmenters import segmenter as word_segmenter

        self.backend, self.from_offsets, self.separator, self.split = backend, from_offsets, separator, split
        self.segmenter, self.word_begins = segmenter, word_segmenter(segmenter)
        self.sep_id = backend.token_to_id(separator) if separator is not None else None
        if self.word_begins is not None:
            space = join = False
        if space is None:
            space = not from_offsets and _joining_is_exact(self, self._spaced)
        if join is None:
            join = self.sep_id is not None and not from_offsets and _joining_is_exact(self, self._joined)
        self.space, self.join = space, join

    def documents(self, docs: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Documents as the corpus read them (their lines, cut into sentences here by `split`,
        where given): this call's encoding and each document's number of sentences."""
        docs = [self.split(d) for d in docs] if self.split is not None else docs
        return (*self(docs), np.fromiter(map(len, docs), dtype=np.int64, count=len(docs)))

    def __call__(self, docs: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(token ids, word-start flags) of all the sentences end to end, and each one's length."""
        parts = [None] * len(docs)
        for way, on in ((self._spaced, self.space), (self._joined, self.join), (self._alone, True)):
            redo = [i for i, part in enumerate(parts) if part is None]
            if on and redo:
                for i, part in zip(redo, way([docs[i] for i in redo])):
                    parts[i] = part
        return _concatenated(parts)

    def _alone(self, docs):
        texts = [t for d in docs for t in d]
        encoded = iter(self.backend.encode_batch(texts, add_special_tokens=False) if texts else [])
        out = []
        for doc in docs:
            es = [next(encoded) for _ in doc]
            out.append(_concatenated([(np.asarray(e.ids, dtype=np.int32),
                                       word_start_flags(e, t, from_offsets=self.from_offsets,
                                                        word_begins=self.word_begins),
                                       np.array([len(e)], dtype=np.int64)) for e, t in zip(es, doc)]))
        return out

    def _spaced(self, docs):
        """Each document's (ids, word starts, lengths) from its encoding joined by spaces, or None
        where a sentence does not begin a token of its own."""
        encoded = self.backend.encode_batch([" ".join(d) for d in docs], add_special_tokens=False)
        parts = []
        for doc, e in zip(docs, encoded):
            cuts, at = [0], 0
            for sentence in doc[:-1]:
                at += len(sentence) + 1
                t = e.char_to_token(at)
                if t is None or e.token_to_chars(t)[0] != at:
                    break
                cuts.append(t)
            else:
                lengths = np.diff(np.array([*cuts, len(e)], dtype=np.int64))
                if np.all(lengths > 0):  # (an empty sentence: cut sentence by sentence)
                    parts.append((np.array(e.ids, dtype=np.int32), word_start_flags(e), lengths))
                    continue
            parts.append(None)
        return parts

    def _joined(self, docs):
        """Each document's (ids, word starts, lengths) from its joined encoding, or None where the
        separator's text occurs in a sentence."""
        sep = self.separator
        texts = [sep.join(d) for d in docs]
        whole = [i for i, t in enumerate(texts) if t.count(sep) == len(docs[i]) - 1]  # none inside a sentence
        encoded = self.backend.encode_batch([texts[i] for i in whole], add_special_tokens=False) if whole else []
        parts = [None] * len(docs)
        for i, e in zip(whole, encoded):
            ids = np.array(e.ids, dtype=np.int32)
            cuts = np.flatnonzero(ids == self.sep_id)
            if cuts.size == len(docs[i]) - 1:
                keep = ids != self.sep_id
                lengths = np.diff(np.concatenate([[-1], cuts, [ids.size]])) - 1
                parts[i] = ids[keep], word_start_flags(e)[keep], lengths
        return parts


def _concatenated(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, word starts, sentence lengths) parts end to end; empty arrays for none."""
    if not parts:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


_PROBE = ("Tom's 2nd café, (naïve) x-rays.", "Über 42  quirks; ok?", "é", "end ...", "\u00ad",
          "two\nlines", "\x07 bell")


def _joining_is_exact(encoder, way) -> bool:
    """Whether `way` (a joined encoding cut back) gives exactly the tokens and word starts of
    each sentence encoded alone, checked on a probe document with this tokenizer (its sentences
    that every way must take, then all of them, where a way may send some documents on): false,
    for instance, for a Metaspace (SentencePiece) tokenizer that prefixes "▁" to the first word
    of a text only, and spaced for byte-level BPE."""
    plain = [s for s in _PROBE if s.isprintable()]
    docs = [plain, list(_PROBE)]
    alone, joined = encoder._alone(docs), way(docs)
    return joined[0] is not None and all(
        j is None or all(np.array_equal(a, b) for a, b in zip(a_, j)) for a_, j in zip(alone, joined))


def _encode_all(batches, backend, from_offsets: bool, separator: str | None, workers: int, split=None,
                segmenter: str | None = None):
    """(batch, its encoding) for every batch of documents, in order, with a bounded number in
    flight. The first batches are encoded here, on a thread (the tokenizers library encodes a
    batch on every core, without the GIL, while this thread reads on); a corpus with more than
    `_LOCAL_BATCHES` batches goes on in `workers` processes, each encoding on one core, because
    cutting documents into sentences and word starts is Python work that a thread cannot spread
    over the cores (a small corpus does not pay for starting them)."""
    encoder = _Encoder(backend, from_offsets, separator, split=split, segmenter=segmenter)
    queue: deque = deque()
    pool = None

    def done(keep: int):
        """Yield the oldest batches' results until at most `keep` are in flight."""
        while len(queue) > keep:
            pending_, future = queue.popleft()
            yield pending_, future.result()

    with ThreadPoolExecutor(max_workers=1) as local:
        try:
            for i, pending in enumerate(batches):
                docs = [d for _, d in pending]
                if workers > 1 and i >= _LOCAL_BATCHES:
                    if pool is None:
                        # the platform's start method, as torch's DataLoader and datasets' num_proc
                        # use (fork on Linux: no re-import of the caller's script); forked only once
                        # this process's own encoding is done, so that no thread of it is busy
                        yield from done(0)
                        pool = ProcessPoolExecutor(workers, initializer=_start_worker,
                                                   initargs=(backend.to_str(), from_offsets, separator, encoder.join,
                                                             encoder.space, split, segmenter))
                    queue.append((pending, pool.submit(_encode_in_worker, docs)))
                else:
                    queue.append((pending, local.submit(encoder.documents, docs)))
                yield from done(2 * max(workers, 1))
            yield from done(0)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


_worker_encoder = None


def _start_worker(backend_json: str, from_offsets: bool, separator: str | None, join: bool, space: bool,
                  split, segmenter: str | None) -> None:
    # Ctrl-C and SIGTERM reach the whole process group: the parent handles them (it stops, and
    # shuts the pool down once the running batches are done)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core each: the processes are the parallelism
    from tokenizers import Tokenizer

    global _worker_encoder
    _worker_encoder = _Encoder(Tokenizer.from_str(backend_json), from_offsets, separator, join=join, split=split,
                               space=space, segmenter=segmenter)


def _encode_in_worker(docs):
    return _worker_encoder.documents(docs)


def plain_backend(tokenizer):
    """The tokenizer's backend without the padding and truncation its tokenizer.json may carry
    (sentence-transformers exports pad and cut every input to 128): the corpus keeps every token
    of every sentence, and no padding."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def _remove_dead_builds(root: Path) -> None:
    """Build folders left by a process that was killed (its pid is gone): never an entry, since an
    entry appears only by the final rename, but disk space."""
    for folder in root.glob(".build-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(entry: Path) -> PreparedCorpus:
    from nlpx.data.tokenizer import load_tokenizer

    meta = json.loads((entry / "meta.json").read_text())
    splits = {s: _load_split(entry / s) for s in SPLITS}
    return PreparedCorpus(load_tokenizer(entry / "tokenizer"), splits["train"], splits["val"],
                          entry, meta)


def _load_split(folder: Path) -> TokenizedCorpus:
    tokens = np.memmap(folder / "tokens.bin", dtype=np.int32, mode="r")
    word_starts = np.memmap(folder / "word_starts.bin", dtype=np.bool_, mode="r")
    # memory-mapped like the tokens: a gigabyte corpus has tens of millions of sentence offsets
    return TokenizedCorpus(tokens, np.load(folder / "sent_offsets.npy", mmap_mode="r"),
                           np.load(folder / "doc_sents.npy", mmap_mode="r"), word_starts)


def word_start_flags(encoding, text: str | None = None, *, from_offsets: bool = False,
                     word_begins=None) -> np.ndarray:
    """bool per token of one sentence's encoding (no special tokens): True where a word starts.

    Words are the tokenizer's own, read from ``encoding.word_ids`` (the pieces its pre-tokenizer
    cut: whitespace and punctuation for WordPiece, the regex pieces of byte-level BPE, the
    "▁"-separated pieces of a Metaspace tokenizer), never from token strings ("##", "Ġ", "▁"),
    which differ between tokenizer kinds. A token starts a word when its word id differs from the
    previous token's; a token without a word id is a word of its own.

    ``from_offsets``: for a tokenizer with no pre-tokenizer (e.g. a Llama-style SentencePiece
    conversion), word_ids put a whole sentence in word 0. Words are then the whitespace-separated
    runs of ``text``, and a token belongs to the first word starting at or after its first
    character, read from ``encoding.offsets`` (so a whitespace-only or "▁"-prefixed token joins
    the word after it).

    ``word_begins``: a word segmenter (text -> bool per character, True where a word begins): a
    token starts a word when its first character does (a token inside a segmented word, or a
    WordPiece continuation, continues it); the first token always starts one.
    """
    if word_begins is not None:
        begins = np.append(word_begins(text), True)
        first = np.fromiter((s for s, _ in encoding.offsets), dtype=np.int64, count=len(encoding))
        flags = begins[np.minimum(first, len(text))]
        if flags.size:
            flags[0] = True
        return flags
    if from_offsets:
        n = len(text)
        nonspace = np.fromiter((not c.isspace() for c in text), dtype=bool, count=n)
        begins = nonspace.copy()
        begins[1:] &= ~nonspace[:-1]
        last_begun = np.cumsum(begins) - 1  # the word a character is in, or last left
        char_word = np.append(np.where(nonspace, last_begun, last_begun + 1), int(begins.sum()))
        first = np.fromiter((s for s, _ in encoding.offsets), dtype=np.int64, count=len(encoding))
        words = char_word[np.minimum(first, n)]
    else:
        try:  # without special tokens every token has a word id: a list numpy converts in C
            words = np.array(encoding.word_ids, dtype=np.int64)
        except TypeError:  # some None (a token of no word)
            words = np.fromiter((-1 if w is None else w for w in encoding.word_ids), dtype=np.int64,
                                count=len(encoding))
    flags = np.ones(words.size, dtype=bool)
    flags[1:] = (words[1:] != words[:-1]) | (words[1:] < 0)
    return flags


def _doc_hash(n: int) -> np.ndarray:
    """A fixed pseudo-random score per document index (splitmix64), for a stable val split."""
    x = np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _build(tmp: Path, corpus, spec: dict, val_fraction: float, make_tokenizer, workers: int,
           word_segmenter: str | None = None) -> None:
    counter = {"docs": None}

    def sentences():
        n = 0
        for doc in corpus.documents():
            n += 1
            yield from doc
        counter["docs"] = n  # only a pass that reached the end counts (a sample may stop early)

    tokenizer = make_tokenizer(sentences)  # pass 1: train (or only count) over the corpus
    # a loaded tokenizer does not read the corpus: count its documents (the split needs the number)
    n_docs = corpus.count_documents() if counter["docs"] is None else counter["docs"]
    corpus.check_empty(n_docs)
    if n_docs < 2:
        raise UserError("data: the corpus has one document; a validation split needs at least two "
                        "(use data.doc_split=blank_line or give more files)")
    # at least two validation documents where the corpus allows it: NSP's "random next"
    # segments must come from another document of the same split
    n_val = max(min(2, n_docs - 1), round(val_fraction * n_docs))
    is_val = np.zeros(n_docs, dtype=bool)
    is_val[np.argsort(_doc_hash(n_docs), kind="stable")[:n_val]] = True

    writers = {s: _SplitWriter(tmp / s) for s in SPLITS}
    backend = plain_backend(tokenizer)
    from_offsets = backend.pre_tokenizer is None
    if from_offsets:
        log.info("the tokenizer has no pre-tokenizer: word boundaries come from whitespace in the "
                 "text, through the token offsets")

    splitter = corpus.sentence_splitter()

    def batches():
        """Documents as read (their lines where the corpus lets the encoder cut sentences: that
        Python work then runs in the worker processes, not in this reading one)."""
        pending, n = [], 0
        for d, doc in enumerate(corpus.documents(split=splitter is None)):
            pending.append((d, doc))
            n += sum(map(len, doc))
            if n >= _ENCODE_BATCH:
                yield pending
                pending, n = [], 0
        if pending:
            yield pending

    def write(pending, encoded):
        """A batch's documents, each run of consecutive documents of one split at once."""
        ids, starts, lengths, sents = encoded
        docs = np.array([d for d, _ in pending], dtype=np.int64)
        sent_at = np.concatenate([[0], np.cumsum(sents)])
        tok_at = np.concatenate([[0], np.cumsum(lengths)])
        split = is_val[docs]
        bounds = np.concatenate([[0], np.flatnonzero(split[1:] != split[:-1]) + 1, [docs.size]])
        for a, b in zip(bounds[:-1], bounds[1:]):
            s0, s1 = sent_at[a], sent_at[b]
            writers["val" if split[a] else "train"].add(ids[tok_at[s0]:tok_at[s1]], starts[tok_at[s0]:tok_at[s1]],
                                                       lengths[s0:s1], sents[a:b])

    # pass 2: tokenize and write, in document order
    for pending, encoded in _encode_all(batches(), backend, from_offsets, tokenizer.sep_token, workers, splitter,
                                        word_segmenter):
        write(pending, encoded)
    counts = {s: w.close() for s, w in writers.items()}
    for s, (docs, _) in counts.items():
        if docs == 0:
            raise UserError(f"data: the {s} split has no text after tokenization")
    wanted = spec["tokenizer"].get("vocab_size")
    if wanted and len(tokenizer) < wanted:
        log.warning("data.vocab_size=%d: the corpus supports only %d tokens; the tokenizer has %d",
                    wanted, len(tokenizer), len(tokenizer))
    tokenizer.save_pretrained(str(tmp / "tokenizer"))
    meta = {"spec": spec, "vocab_size": len(tokenizer), "documents": n_docs,
            **{f"{s}_docs": c[0] for s, c in counts.items()},
            **{f"{s}_tokens": c[1] for s, c in counts.items()}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))


class _SplitWriter:
    """Appends documents to tokens.bin and their word-start flags (one byte per token) to
    word_starts.bin, and the sentence lengths and per-document sentence counts to files of their
    own, so that memory does not grow with the corpus; close() turns those into the offset arrays."""

    _FLUSH = 1 << 16  # lengths buffered before a write

    def __init__(self, folder: Path):
        folder.mkdir(parents=True)
        self.folder = folder
        self.file = open(folder / "tokens.bin", "wb")
        self.starts_file = open(folder / "word_starts.bin", "wb")
        self.lens_file = open(folder / "sent_lens.tmp", "wb")
        self.docs_file = open(folder / "doc_sents.tmp", "wb")
        self.sent_lens: list[np.ndarray] = []
        self.doc_ends: list[np.ndarray] = []
        self.n_sents = self.n_docs = self.buffered = 0

    def add(self, ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, doc_sents: np.ndarray) -> None:
        """Consecutive documents: their sentences' token ids and word-start flags end to end, the
        sentences' lengths and each document's number of sentences. Empty sentences are dropped,
        and a document left without any is skipped."""
        kept = lengths > 0
        doc_sents = doc_sents[doc_sents > 0]  # (reduceat reads a zero-length segment as one element)
        per_doc = np.add.reduceat(kept.astype(np.int64), np.cumsum(doc_sents) - doc_sents) if doc_sents.size else \
            np.zeros(0, dtype=np.int64)  # each document's non-empty sentences
        per_doc = per_doc[per_doc > 0]
        if not per_doc.size:
            return
        self.file.write(np.ascontiguousarray(ids, dtype=np.int32).tobytes())
        self.starts_file.write(np.ascontiguousarray(starts, dtype=np.bool_).tobytes())
        self.sent_lens.append(lengths[kept].astype(np.int64))
        self.doc_ends.append(self.n_sents + np.cumsum(per_doc))
        self.n_sents += int(per_doc.sum())
        self.n_docs += int(per_doc.size)
        self.buffered += int(per_doc.sum())
        if self.buffered >= self._FLUSH:
            self._flush()

    def _flush(self) -> None:
        for f, parts in ((self.lens_file, self.sent_lens), (self.docs_file, self.doc_ends)):
            if parts:
                f.write(np.concatenate(parts).astype(np.int64).tobytes())
        self.sent_lens, self.doc_ends, self.buffered = [], [], 0

    def close(self) -> tuple[int, int]:
        self._flush()
        for f in (self.file, self.starts_file, self.lens_file, self.docs_file):
            f.close()
        offsets = np.lib.format.open_memmap(self.folder / "sent_offsets.npy", mode="w+", dtype=np.int64,
                                            shape=(self.n_sents + 1,))
        offsets[0] = 0
        if self.n_sents:
            np.cumsum(np.memmap(self.folder / "sent_lens.tmp", dtype=np.int64, mode="r"), out=offsets[1:])
        total = int(offsets[-1])
        offsets.flush()
        del offsets
        doc_sents = np.lib.format.open_memmap(self.folder / "doc_sents.npy", mode="w+", dtype=np.int64,
                                              shape=(self.n_docs + 1,))
        doc_sents[0] = 0
        if self.n_docs:
            doc_sents[1:] = np.memmap(self.folder / "doc_sents.tmp", dtype=np.int64, mode="r")
        doc_sents.flush()
        del doc_sents
        (self.folder / "sent_lens.tmp").unlink()
        (self.folder / "doc_sents.tmp").unlink()
        return self.n_docs, total
