"""Read GLUE in the Hugging Face datasets layout of ``nyu-mll/glue``, with pyarrow only.

Two layouts, both with one folder per HF config name (``glue_dir/sst2``, ``glue_dir/mnli`` ...):

- ``DatasetDict.save_to_disk``: ``glue_dir/<config>/<hf split>/`` holding ``state.json`` (its
  ``"_data_files"`` lists the shards in order), ``dataset_info.json`` and the shards
  ``data-0000k-of-0000N.arrow`` in Arrow IPC *stream* format;
- the hub repo's Parquet files: ``glue_dir/<config>/<hf split>-0000k-of-0000N.parquet``.

When both are there for one split, the save_to_disk folder wins. HF split names map to the
nlpx (TSV) ones: ``validation`` -> ``dev``, ``validation_matched`` -> ``dev_matched``,
``validation_mismatched`` -> ``dev_mismatched``; the others are the same.

Rules:
- the texts, ``label`` and ``idx`` columns are read by name; other columns are ignored;
- a class label is the HF ClassLabel id, which is the position in TaskSpec.labels for every task
  (checked against the ClassLabel names stored in the file, when the file has them);
- test splits hold label -1 in HF: their label is None and the label column is not read;
- a label outside the task's classes in a labelled split (-1 in train, say), a non-finite or
  out-of-range STS-B score, a null text or idx is a UserError naming the file and the row
  (counted from 0 within the file), never a dropped row;
- STS-B scores are float32 in HF: each is read as the shortest decimal that gives that float32
  (3.8, not 3.799999952316284), i.e. the score the TSV file holds, except for the few with more
  digits than a float32 keeps (STS-B train's 2.11111111111111 reads 2.1111112);
- U+FEFF is removed from texts, as in the TSV reader;
- Example.index is the ``idx`` column for every split, Example.guid is
  ``<task>-<nlpx split>-<row>`` with rows counted from 0 over the whole split (all shards).

pyarrow is imported only when a file is read: finding splits needs no pyarrow.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from nlpx.errors import UserError
from nlpx.eval.glue_reader import STSB_RANGE, Example
from nlpx.eval.glue_tasks import DESCRIPTIONS, get_task

INDEX_COLUMN = "idx"
LABEL_COLUMN = "label"


@dataclass(frozen=True)
class HFConfig:
    """How one nlpx task is stored in ``nyu-mll/glue``."""

    name: str  # the HF config name: the folder under glue_dir
    text_a: str
    text_b: str | None
    label_names: tuple[str, ...] | None  # the ClassLabel names, in id order; None: regression (float)


def _hf_config(hf: dict) -> HFConfig:
    labels = hf["labels"]
    return HFConfig(hf["config"], hf["text_a"], hf["text_b"], None if labels is None else tuple(labels))


# from the `hf` block of each task's file (conf/task/glue/_data)
HF_CONFIGS: dict[str, HFConfig] = {name: _hf_config(task["hf"]) for name, task in DESCRIPTIONS.items()}

_HF_SPLIT = {"dev": "validation", "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched"}


def hf_split_name(split: str) -> str:
    """The HF split name of an nlpx split name (``dev`` -> ``validation`` ...)."""
    return _HF_SPLIT.get(split, split)


def get_config(task: str) -> HFConfig:
    get_task(task)  # the usual error for an unknown task
    return HF_CONFIGS[task]


def looked_for(task: str, split: str) -> list[str]:
    """The places searched for ``split`` of ``task``, relative to glue_dir (for error messages)."""
    config, hf_split = get_config(task).name, hf_split_name(split)
    return [f"{config}/{hf_split}/state.json", f"{config}/{hf_split}-*-of-*.parquet"]


def find_split(glue_dir: str | Path, task: str, split: str) -> Path | None:
    """Where ``split`` of ``task`` lies in an HF layout under glue_dir, or None.

    The save_to_disk split folder (one holding state.json), else the split's first parquet shard.
    ``split`` is the nlpx split name and must be one of the task's splits.
    """
    get_task(task).split(split)
    folder = Path(glue_dir) / get_config(task).name
    hf_split = hf_split_name(split)
    if (folder / hf_split / "state.json").is_file():
        return folder / hf_split
    shards = _parquet_shards(folder, hf_split)
    return min(shards, key=lambda p: _shard_key(p, hf_split)) if shards else None


def split_files(glue_dir: str | Path, task: str, split: str) -> list[Path]:
    """The data files of ``split`` in order (arrow or parquet shards); [] when the split is absent.

    A UserError names the file when a shard is missing or state.json cannot be read.
    """
    found = find_split(glue_dir, task, split)
    if found is None:
        return []
    if found.is_dir():
        return _arrow_files(found)
    return _complete_shards(found.parent, hf_split_name(split))


def read_split(glue_dir: str | Path, task: str, split: str) -> list[Example]:
    """Read ``split`` (an nlpx split name) of ``task`` from the HF layout under glue_dir."""
    if find_split(glue_dir, task, split) is None:
        looked = ", ".join(looked_for(task, split))
        raise UserError(f"{glue_dir}: no GLUE {task} {split} data in the Hugging Face layout (looked for {looked})")
    examples: list[Example] = []
    for path in split_files(glue_dir, task, split):
        examples.extend(read_hf_file(path, task, split, first_row=len(examples)))
    return examples


def read_hf_file(path: str | Path, task: str, split: str, *, first_row: int = 0) -> list[Example]:
    """Read one ``.arrow`` (IPC stream) or ``.parquet`` file laid out like HF's ``task`` ``split``.

    ``first_row`` is the row number of the file's first row in the split (for the guids).
    """
    spec = get_task(task)
    labelled = spec.split(split).label is not None
    config = get_config(task)
    path = Path(path)
    table = _read_table(path)
    needed = [c for c in (config.text_a, config.text_b, LABEL_COLUMN if labelled else None, INDEX_COLUMN) if c]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise UserError(f"{path}: no column {', '.join(repr(c) for c in missing)} "
                        f"(found: {', '.join(table.column_names) or 'none'}; "
                        f"GLUE {task} {hf_split_name(split)} needs {', '.join(needed)})")
    text_a = _texts(table, config.text_a, path)
    text_b = _texts(table, config.text_b, path) if config.text_b else None
    index = _ints(table, INDEX_COLUMN, path)
    labels: list[int | float | None]
    if not labelled:
        labels = [None] * table.num_rows
    elif config.label_names is None:
        labels = _scores(table, path)
    else:
        _check_class_names(table, path, task, config.label_names, spec.labels)
        labels = _class_ids(table, path, task, len(config.label_names))
    return [Example(guid=f"{task}-{split}-{first_row + row}", text_a=text_a[row],
                    text_b=text_b[row] if text_b is not None else None,
                    label=labels[row], index=index[row])
            for row in range(table.num_rows)]


# ---- finding files ----

def _parquet_shards(folder: Path, hf_split: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if _shard_match(p.name, hf_split) and p.is_file()]


def _shard_match(name: str, hf_split: str) -> re.Match | None:
    return re.fullmatch(rf"{re.escape(hf_split)}-(\d+)-of-(\d+)\.parquet", name)


def _shard_key(path: Path, hf_split: str) -> tuple[int, int, str]:
    m = _shard_match(path.name, hf_split)
    assert m is not None
    return int(m.group(2)), int(m.group(1)), path.name


def _complete_shards(folder: Path, hf_split: str) -> list[Path]:
    shards = sorted(_parquet_shards(folder, hf_split), key=lambda p: _shard_key(p, hf_split))
    totals = sorted({_shard_key(p, hf_split)[0] for p in shards})
    if len(totals) > 1:
        raise UserError(f"{folder}: parquet shards of split {hf_split} from different downloads "
                        f"({', '.join(p.name for p in shards)}); keep one set")
    numbers = [_shard_key(p, hf_split)[1] for p in shards]
    total = totals[0]
    width = len(_shard_match(shards[0].name, hf_split).group(2))  # type: ignore[union-attr]
    for k in range(total):
        if k not in numbers:
            raise UserError(f"{folder / f'{hf_split}-{k:0{width}d}-of-{total:0{width}d}.parquet'}: "
                            f"missing parquet shard (found {', '.join(p.name for p in shards)})")
    extra = [p.name for p, k in zip(shards, numbers) if k >= total]
    if extra:
        raise UserError(f"{folder / extra[0]}: shard number out of range (the split has {total} shards)")
    return shards


def _arrow_files(split_dir: Path) -> list[Path]:
    state = split_dir / "state.json"
    try:
        data_files = json.loads(state.read_text(encoding="utf-8"))["_data_files"]
        names = [entry["filename"] for entry in data_files]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{state}: not a readable datasets state.json with '_data_files' "
                        f"({type(e).__name__}: {_one_line(e)})") from None
    files = [split_dir / name for name in names]
    for path in files:
        if not path.is_file():
            raise UserError(f"{path}: data file listed in {state.name} is missing")
    return files


# ---- reading columns ----

def _read_table(path: Path):
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet

    try:
        if path.suffix == ".parquet":
            return pyarrow.parquet.read_table(path)
        with pa.OSFile(str(path)) as source:  # OSFile copies: the table outlives the file handle
            return pyarrow.ipc.open_stream(source).read_all()
    except (OSError, pa.ArrowException) as e:
        kind = "Parquet" if path.suffix == ".parquet" else "Arrow IPC stream"
        raise UserError(f"{path}: not a readable {kind} file ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _first_null(values: list, path: Path, column: str) -> None:
    for row, v in enumerate(values):
        if v is None:
            raise UserError(f"{path}: row {row}: column '{column}' is null")


def _texts(table, column: str, path: Path) -> list[str]:
    import pyarrow as pa

    col = table.column(column)
    is_string_view = getattr(pa.types, "is_string_view", lambda t: False)  # pyarrow >= 16
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or is_string_view(col.type)):
        raise UserError(f"{path}: column '{column}' holds {col.type}, not text")
    values = col.to_pylist()
    _first_null(values, path, column)
    return [v.replace("\ufeff", "") for v in values]


def _ints(table, column: str, path: Path) -> list[int]:
    import pyarrow as pa

    col = table.column(column)
    if not pa.types.is_integer(col.type):
        raise UserError(f"{path}: column '{column}' holds {col.type}, not integers")
    values = col.to_pylist()
    _first_null(values, path, column)
    return values


def _class_ids(table, path: Path, task: str, n: int) -> list[int]:
    values = _ints(table, LABEL_COLUMN, path)
    for row, v in enumerate(values):
        if not 0 <= v < n:
            raise UserError(f"{path}: row {row}: label {v} is not a class id of GLUE {task} "
                            f"(valid: {', '.join(map(str, range(n)))})")
    return values


def _check_class_names(table, path: Path, task: str, hf_names: tuple[str, ...],
                       tsv_names: tuple[str, ...] | None) -> None:
    """The ClassLabel names stored in the file (if any) must give the ids the GLUE order."""
    try:
        meta = json.loads(table.schema.metadata[b"huggingface"])
        feature = meta["info"]["features"][LABEL_COLUMN]
        names = feature["names"] if feature.get("_type") == "ClassLabel" else None
    except (TypeError, KeyError, ValueError, AttributeError):
        return  # no HF features stored: ids are taken as they are
    if names is None or tuple(names) in (hf_names, tsv_names):
        return
    raise UserError(f"{path}: column '{LABEL_COLUMN}' has class names {', '.join(map(str, names))}; "
                    f"GLUE {task} needs the ids in the order {', '.join(hf_names)}")


def _scores(table, path: Path) -> list[float]:
    import pyarrow as pa

    col = table.column(LABEL_COLUMN)
    if pa.types.is_float32(col.type):
        # the shortest decimal of each float32: the score as written in the TSV file (when it fits)
        values = [None if s is None else float(s) for s in col.cast(pa.string()).to_pylist()]
    elif pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        values = [None if v is None else float(v) for v in col.to_pylist()]
    else:
        raise UserError(f"{path}: column '{LABEL_COLUMN}' holds {col.type}, not scores")
    _first_null(values, path, LABEL_COLUMN)
    lo, hi = STSB_RANGE
    for row, v in enumerate(values):
        if not (math.isfinite(v) and lo <= v <= hi):
            raise UserError(f"{path}: row {row}: score {v!r} in column '{LABEL_COLUMN}' is not a number "
                            f"from {lo:g} to {hi:g}")
    return values
