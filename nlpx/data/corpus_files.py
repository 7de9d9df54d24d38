"""The file formats a pretraining corpus can come in, and how each is read as a stream.

- lines of text: .txt, and .txt.gz / .txt.zst;
- JSON lines, one record (document) a line: .jsonl / .json, .jsonl.gz / .json.gz,
  .jsonl.zst / .json.zst and a bare .zst (as The Pile ships);
- tables, one row a document: .parquet (pyarrow), .arrow shards (Arrow IPC, as `datasets` writes
  them), and a folder saved by `datasets.Dataset.save_to_disk` (its shards, in order).

Nothing is read whole: lines and record batches stream, so memory does not grow with the file.
A file that cannot be decompressed or parsed is one line naming it (and the line or row).
"""

from __future__ import annotations

import gzip
import io
import json
import pathlib
from collections.abc import Iterator

from nlpx.errors import UserError

COMPRESSIONS = (".gz", ".zst")
LINE_SUFFIXES = (".txt",)
RECORD_SUFFIXES = (".jsonl", ".json")
TABLE_SUFFIXES = (".parquet", ".arrow")


def kind_of(path: pathlib.Path) -> str | None:
    """'text' | 'jsonl' | 'parquet' | 'arrow' for a corpus file, None for any other file."""
    name = path.name.lower()
    stem, compressed = name, None
    for c in COMPRESSIONS:
        if name.endswith(c):
            stem, compressed = name[: -len(c)], c
    suffix = pathlib.PurePath(stem).suffix
    if suffix in LINE_SUFFIXES:
        return "text"
    if suffix in RECORD_SUFFIXES or (compressed == ".zst" and suffix == ""):
        return "jsonl"
    if compressed is None and suffix in TABLE_SUFFIXES:
        return suffix[1:]
    return None


def saved_dataset_files(folder: pathlib.Path) -> list[pathlib.Path] | None:
    """The Arrow shards of a `datasets.save_to_disk` folder in their order; None if it is not one."""
    state = folder / "state.json"
    if (folder / "dataset_dict.json").is_file():
        splits = ", ".join(sorted(p.name for p in folder.iterdir() if p.is_dir()))
        raise UserError(f"data.paths: {folder} is a DatasetDict; give one split's folder ({splits})")
    if not state.is_file() or not (folder / "dataset_info.json").is_file():
        return None
    try:
        names = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"data.paths: {state}: not a datasets state file ({e})") from None
    return [folder / n for n in names]


def open_lines(path: pathlib.Path) -> io.TextIOBase:
    """A text stream of the file, decompressed: UTF-8 with a BOM dropped, CRLF/CR read as LF, and
    each invalid byte as a lone surrogate (counted and replaced by the caller)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline=None)
    if name.endswith(".zst"):
        raw = io.BufferedReader(_ZstdReader(path), buffer_size=1 << 20)
        return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline=None)
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline=None)


class _ZstdReader(io.RawIOBase):
    """Decompressed bytes of a .zst file, frame after frame. zstandard's own stream_reader returns
    the first part of a truncated file without an error; this one checks that the last frame ends."""

    def __init__(self, path: pathlib.Path):
        import zstandard

        self._file = open(path, "rb")
        self._zstd = zstandard.ZstdDecompressor()
        self._frame, self._fed, self._pending, self._done = self._zstd.decompressobj(), False, b"", False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._done:
            chunk = self._file.read(1 << 20)
            if not chunk:
                if self._fed and not self._frame.eof:
                    raise OSError("truncated zstd data: the last frame does not end")
                self._done = True
                break
            out = []
            while chunk:
                if self._frame.eof:  # the next frame of a multi-frame file
                    self._frame, self._fed = self._zstd.decompressobj(), False
                out.append(self._frame.decompress(chunk))
                self._fed = True
                chunk = self._frame.unused_data if self._frame.eof else b""
            self._pending = b"".join(out)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def unreadable(path: pathlib.Path, e: Exception) -> UserError:
    what = str(e).splitlines()[0] if str(e) else type(e).__name__
    return UserError(f"{path}: cannot be read ({what}); the file is damaged or not the format its "
                     "name says")


def read_errors() -> tuple[type[BaseException], ...]:
    """What decompressors and Arrow raise for a damaged file."""
    import pyarrow as pa

    errors: list[type[BaseException]] = [OSError, EOFError, pa.ArrowException]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def table_texts(path: pathlib.Path, kind: str, text_field: str) -> Iterator[tuple[int, str | None]]:
    """(row number from 1, text or None) of a .parquet file or an .arrow shard, in record batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if kind == "parquet":
            source = pq.ParquetFile(path)
            columns = source.schema_arrow.names
            batches = source.iter_batches(columns=[text_field], batch_size=4096) if text_field in columns else None
        else:
            stream = pa.memory_map(str(path))
            try:  # datasets writes the streaming format; the file format is read too
                reader = pa.ipc.open_stream(stream)
                schema, batches = reader.schema, iter(reader)
            except pa.ArrowInvalid:
                whole = pa.ipc.open_file(stream)
                schema, batches = whole.schema, (whole.get_batch(i) for i in range(whole.num_record_batches))
            columns = schema.names
            batches = batches if text_field in columns else None
        if batches is None:
            raise UserError(f"{path}: no column '{text_field}' (columns: {', '.join(columns)}); set "
                            "data.text_field to the column holding the text")
        row = 0
        for batch in batches:
            for value in batch.column(batch.schema.get_field_index(text_field)).to_pylist():
                row += 1
                if value is not None and not isinstance(value, str):
                    raise UserError(f"{path}: row {row}: column '{text_field}' holds a {type(value).__name__}, "
                                    "not a string")
                yield row, value
    except read_errors() as e:
        raise unreadable(path, e) from None
