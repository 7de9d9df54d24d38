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
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlpx.data.corpus import TokenizedCorpus
from nlpx.errors import UserError

log = logging.getLogger("nlpx.data")
CACHE_VERSION = 2  # 2: at least two validation documents
SPLITS = ("train", "val")
_ENCODE_BATCH = 4096  # sentences per tokenizers.encode_batch call


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
            make_tokenizer) -> PreparedCorpus:
    """Return the cached corpus for (corpus, tokenizer spec), building it on a miss.

    `make_tokenizer(sentences_iterable)` returns a fast tokenizer (trained or loaded).
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction={val_fraction}: must be in (0, 1)")
    spec = {"corpus": corpus.fingerprint(), "tokenizer": tokenizer_spec, "val_fraction": val_fraction}
    root = Path(cache_dir).expanduser()
    entry = root / cache_key(spec)
    if not (entry / "meta.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            _build(tmp, corpus, spec, val_fraction, make_tokenizer)
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


def load(entry: Path) -> PreparedCorpus:
    from nlpx.data.tokenizer import load_tokenizer

    meta = json.loads((entry / "meta.json").read_text())
    splits = {s: _load_split(entry / s) for s in SPLITS}
    return PreparedCorpus(load_tokenizer(entry / "tokenizer"), splits["train"], splits["val"],
                          entry, meta)


def _load_split(folder: Path) -> TokenizedCorpus:
    tokens = np.memmap(folder / "tokens.bin", dtype=np.int32, mode="r")
    return TokenizedCorpus(tokens, np.load(folder / "sent_offsets.npy"),
                           np.load(folder / "doc_sents.npy"))


def _doc_hash(n: int) -> np.ndarray:
    """A fixed pseudo-random score per document index (splitmix64), for a stable val split."""
    x = np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _build(tmp: Path, corpus, spec: dict, val_fraction: float, make_tokenizer) -> None:
    counter = {"docs": 0}

    def sentences():
        counter["docs"] = 0
        for doc in corpus.documents():
            counter["docs"] += 1
            yield from doc

    tokenizer = make_tokenizer(sentences())  # pass 1: train (or only count) over the corpus
    if counter["docs"] == 0:  # a loaded tokenizer may not have consumed the iterator
        for _ in sentences():
            pass
    n_docs = counter["docs"]
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
    backend = tokenizer.backend_tokenizer
    pending: list[tuple[int, list[str]]] = []

    def flush():
        flat = [s for _, d in pending for s in d]
        encoded = backend.encode_batch(flat, add_special_tokens=False) if flat else []
        pos = 0
        for d, doc in pending:
            ids = [encoded[pos + i].ids for i in range(len(doc))]
            pos += len(doc)
            writers["val" if is_val[d] else "train"].add([s for s in ids if s])
        pending.clear()

    for d, doc in enumerate(corpus.documents()):  # pass 2: tokenize and write
        pending.append((d, doc))
        if sum(len(x) for _, x in pending) >= _ENCODE_BATCH:
            flush()
    flush()
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
    """Appends documents to tokens.bin; keeps only per-sentence lengths in memory."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True)
        self.folder = folder
        self.file = open(folder / "tokens.bin", "wb")
        self.sent_lens: list[int] = []
        self.doc_sents: list[int] = [0]

    def add(self, sentences: list[list[int]]) -> None:
        if not sentences:
            return
        for s in sentences:
            self.file.write(np.asarray(s, dtype=np.int32).tobytes())
            self.sent_lens.append(len(s))
        self.doc_sents.append(len(self.sent_lens))

    def close(self) -> tuple[int, int]:
        self.file.close()
        offsets = np.zeros(len(self.sent_lens) + 1, dtype=np.int64)
        np.cumsum(self.sent_lens, out=offsets[1:])
        np.save(self.folder / "sent_offsets.npy", offsets)
        np.save(self.folder / "doc_sents.npy", np.asarray(self.doc_sents, dtype=np.int64))
        return len(self.doc_sents) - 1, int(offsets[-1])
