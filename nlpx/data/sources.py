"""Local text corpora: expand ``data.paths`` into files and stream them as documents.

A document is ``list[str]``: its sentences, stripped and non-empty. Files are read one at a
time (jsonl line by line) so memory does not grow with the corpus.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pathlib
import re
from typing import Iterable, Iterator

from nlpx.errors import UserError

log = logging.getLogger("nlpx.data")

DOC_SPLITS = ("blank_line", "file", "heading")
SENTENCE_MODES = ("punct", "lines")
_COUNT = "count"  # count_documents' mode: one empty "sentence" a document
_RAW = "raw"  # read_documents' mode for a cache build: a document's lines, split later (split_sentences)

# surrogateescape turns each undecodable byte into one lone surrogate U+DC80..U+DCFF, which
# valid UTF-8 can never produce: counting them counts the invalid bytes exactly, per file,
# without a global codec error handler.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")

# Sentence end: . ! ? (repeated, e.g. "?!" or "...") plus any closing quotes/brackets, then
# whitespace; or Chinese 。！？ (repeated) plus closing quotes/brackets, with or without whitespace
# (Chinese text has none between sentences). Deliberately simple; known limits: abbreviations
# ("Mr. Smith", "e.g. this") and initials split too early; a sentence without final punctuation
# runs into the next one; a lowercase continuation after "..." is split anyway. Good enough for
# pretraining text.
_SENTENCE_END = re.compile(r"((?:[.!?]+[\"'\u201d\u2019\u00bb)\]]*(?=\s))|(?:[\u3002\uff01\uff1f]+"
                           r"[\u201d\u2019\u300d\u300f\uff09)\]]*))\s*")


FORMATS = ".txt, .jsonl, .json (each also .gz or .zst), .parquet or .arrow files, datasets save_to_disk folders"


def expand_paths(paths: list[str]) -> list[pathlib.Path]:
    """Files named by ``data.paths``: corpus files (nlpx/data/corpus_files.py), folders (their
    corpus files, recursively, or a `datasets` save_to_disk folder's shards) and globs."""
    if isinstance(paths, (str, os.PathLike)):  # `data.paths=a.txt` without brackets
        paths = [paths]
    if not paths:
        raise UserError(f"data.paths is empty: data=text needs data.paths=[...] ({FORMATS}, or globs)")
    files: list[pathlib.Path] = []
    seen: set[pathlib.Path] = set()
    for entry in paths:
        for f in _expand_entry(str(entry)):
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files


def _expand_entry(entry: str) -> list[pathlib.Path]:
    from nlpx.data.corpus_files import kind_of, saved_dataset_files

    path = pathlib.Path(os.path.expanduser(entry))
    if path.is_file():  # named explicitly: read as text unless its name says another format
        return [path]
    matches = [path] if path.is_dir() else [pathlib.Path(m) for m in sorted(glob.glob(str(path), recursive=True))]
    if not matches:
        raise UserError(f"data.paths: '{entry}' does not exist (give {FORMATS}, or globs)")
    files: list[pathlib.Path] = []
    for m in matches:
        if m.is_dir():
            saved = saved_dataset_files(m)
            files.extend(saved if saved is not None else
                         sorted(f for f in m.rglob("*") if f.is_file() and kind_of(f) is not None))
        elif m.is_file() and kind_of(m) is not None:
            files.append(m)
    if not files:
        raise UserError(f"data.paths: '{entry}' contains no corpus files ({FORMATS})")
    return files


def fingerprint(files: list[pathlib.Path]) -> list[tuple[str, int, int]]:
    """(absolute path, size, mtime_ns) per file: changes whenever a file is edited, for cache keys."""
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f.resolve()), st.st_size, st.st_mtime_ns))
    return out


def read_documents(files: list[pathlib.Path], *, doc_split: str = "blank_line", sentences: str = "punct",
                   text_field: str = "text", split: bool = True, heading: str | None = None) -> Iterator[list[str]]:
    """Stream the documents of ``files`` in order; .jsonl records are one document each.

    doc_split="heading": in a text file, a line that the regular expression `heading` matches at
    its start (re.match) begins a new document (a book's chapter headings); blank lines do not
    split. split=False: each document as its lines, for `split_sentences(lines, sentences)` to cut
    elsewhere (a cache build's worker processes); the same documents, in the same order."""
    # Checked here, not inside the generator, so a bad option fails at the call, not at first use.
    starts = _check_options(doc_split, sentences, heading)
    return _iter_documents(files, doc_split, sentences if split else _RAW, text_field, starts)


def count_documents(files: list[pathlib.Path], *, doc_split: str = "blank_line", text_field: str = "text",
                    heading: str | None = None) -> int:
    """How many documents `read_documents` yields, read without splitting sentences (a document
    is yielded in either mode exactly when it has a non-blank line), for a cache build whose
    tokenizer did not read the corpus."""
    starts = _check_options(doc_split, "punct", heading)
    return sum(1 for _ in _iter_documents(files, doc_split, _COUNT, text_field, starts))


def _check_options(doc_split: str, sentences: str, heading: str | None = None):
    """The compiled heading pattern's match for doc_split=heading, else None."""
    if doc_split not in DOC_SPLITS:
        raise UserError(f"data.doc_split: '{doc_split}' is not valid (valid: {', '.join(DOC_SPLITS)})")
    if sentences not in SENTENCE_MODES:
        raise UserError(f"data.sentences: '{sentences}' is not valid (valid: {', '.join(SENTENCE_MODES)})")
    if doc_split != "heading":
        if heading is not None:
            raise UserError(f"data.heading={heading}: not read with data.doc_split={doc_split} (give "
                            "data.doc_split=heading)")
        return None
    if not heading:
        raise UserError("data.doc_split=heading: give data.heading, a regular expression matching the lines "
                        r"that start a document (e.g. '第[0-9一二三四五六七八九十百]+[章回]' or 'CHAPTER \w+')")
    try:
        return re.compile(str(heading)).match
    except re.error as e:
        raise UserError(f"data.heading={heading}: not a valid regular expression ({e})") from None


def require_nonempty(n_docs: int, files: list[pathlib.Path]) -> None:
    if n_docs == 0:
        names = [str(f) for f in files]
        shown = ", ".join(names[:5]) + (f", ... and {len(names) - 5} more" if len(names) > 5 else "")
        raise UserError(f"data.paths: no text found in {len(names)} file(s): {shown}")


def _iter_documents(files, doc_split, sentences, text_field, starts=None) -> Iterator[list[str]]:
    from nlpx.data.corpus_files import kind_of

    for f in files:
        stats = _ReadStats()
        kind = kind_of(f)
        if kind == "jsonl":
            docs = _jsonl_documents(f, sentences, text_field, stats)
        elif kind in ("parquet", "arrow"):
            docs = _table_documents(f, kind, sentences, text_field, stats)
        else:
            docs = _text_documents(f, doc_split, sentences, stats, starts)
        yield from docs
        if stats.bad_bytes:
            _warn_once(f, "%s: %d invalid UTF-8 byte(s) replaced with U+FFFD", f, stats.bad_bytes)
        if not stats.has_text:
            _warn_once(f, "%s: empty or whitespace-only file, skipped", f)


_warned: set[tuple] = set()


def _warn_once(f: pathlib.Path, message: str, *args) -> None:
    """Building the cache reads the corpus twice (tokenizer, then tokens): warn once per file state."""
    st = f.stat()
    key = (str(f.resolve()), st.st_size, st.st_mtime_ns, message)
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


class _ReadStats:
    def __init__(self) -> None:
        self.bad_bytes = 0
        self.has_text = False


def _lines(path: pathlib.Path, stats: _ReadStats) -> Iterator[str]:
    """Decoded lines without line endings; BOM stripped, CRLF/CR read as LF, bad bytes -> U+FFFD;
    .gz and .zst decompressed as they stream."""
    from nlpx.data.corpus_files import open_lines, read_errors, unreadable

    try:
        with open_lines(path) as fh:
            for line in fh:
                line = line.rstrip("\n")
                if not line.isascii():  # (a flag of the string: no scan) only then can it hold escaped bytes
                    line, n_bad = _ESCAPED_BYTE.subn("\ufffd", line)
                    stats.bad_bytes += n_bad
                if line and not line.isspace():
                    stats.has_text = True
                yield line
    except read_errors() as e:
        raise unreadable(path, e) from None


def _table_documents(path, kind, sentences, text_field, stats) -> Iterator[list[str]]:
    """One document per row of a .parquet file or .arrow shard (empty or null text: skipped)."""
    from nlpx.data.corpus_files import table_texts

    for _, text in table_texts(path, kind, text_field):
        if text and text.strip():
            stats.has_text = True
            doc = _split_sentences(text.splitlines(), sentences)
            if doc:
                yield doc


def _text_documents(path, doc_split, sentences, stats, starts=None) -> Iterator[list[str]]:
    doc_lines: list[str] = []
    for line in _lines(path, stats):
        if starts is not None and doc_lines and starts(line):
            yield _split_sentences(doc_lines, sentences)
            doc_lines = []
        if line.strip():
            doc_lines.append(line)
        elif doc_split == "blank_line" and doc_lines:
            yield _split_sentences(doc_lines, sentences)
            doc_lines = []
    if doc_lines:
        yield _split_sentences(doc_lines, sentences)


def _jsonl_documents(path, sentences, text_field, stats) -> Iterator[list[str]]:
    for lineno, line in enumerate(_lines(path, stats), start=1):
        if not line or line.isspace():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                            f".jsonl needs one JSON object per line") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object with a '{text_field}' field, "
                            f"got a {type(record).__name__}")
        text = record.get(text_field)
        if not isinstance(text, str):
            keys = ", ".join(repr(k) for k in record) or "none"
            if text_field not in record:
                raise UserError(f"{path}:{lineno}: no field '{text_field}' (keys present: {keys}); "
                                f"set data.text_field to the field holding the text")
            raise UserError(f"{path}:{lineno}: field '{text_field}' is a {type(text).__name__}, not a string "
                            f"(keys present: {keys})")
        # Records with empty text carry no sentences; a zero-sentence document is useless downstream.
        doc = _split_sentences(text.splitlines(), sentences)
        if doc:
            yield doc


def split_sentences(lines: list[str], mode: str) -> list[str]:
    """A document's sentences from its lines (read_documents(..., split=False)), as
    read_documents(..., sentences=mode) gives them."""
    return _split_sentences(lines, mode)


def _split_sentences(lines: Iterable[str], mode: str) -> list[str]:
    if mode == _COUNT:  # a document exactly when some line is not blank; its sentences unread
        return [""] if any(line and not line.isspace() for line in lines) else []
    if mode == _RAW:  # a document exactly when some line is not blank (then it has a sentence)
        return lines if any(line and not line.isspace() for line in lines) else []
    stripped = [s for s in map(str.strip, lines) if s]
    if mode == "lines":
        return stripped
    # Joining first lets hard-wrapped prose (e.g. Gutenberg books) split across line breaks.
    # split() keeps the captured sentence ends: [text, end, text, end, ..., text]
    parts = _SENTENCE_END.split(" ".join(stripped))
    ends = list(map(str.__add__, parts[0::2], parts[1::2]))
    ends.append(parts[-1])
    return [s for s in map(str.strip, ends) if s]
