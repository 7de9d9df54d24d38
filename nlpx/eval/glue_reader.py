"""Read GLUE: the official TSV files as they really are, or the Hugging Face ``nyu-mll/glue`` layout.

``glue_dir`` may hold either layout, per split:
- the GLUE download's TSV files (``glue_dir/CoLA/train.tsv``, ``glue_dir/MNLI/dev_matched.tsv`` ...,
  see nlpx.eval.glue_tasks), read here;
- when a split's TSV file is absent, the Hugging Face datasets layout of ``nyu-mll/glue`` under
  ``glue_dir/<HF config>/`` (``cola``, ``sst2``, ``mnli`` ...): a ``DatasetDict.save_to_disk``
  folder (``mnli/validation_matched/data-00000-of-00001.arrow`` ...) or the hub's Parquet files
  (``mnli/validation_matched-00000-of-00001.parquet``), read by nlpx.eval.glue_hf. Split names stay
  the TSV ones (``dev`` reads HF ``validation``), labels are the same class ids, and
  Example.index is the HF ``idx`` column in every split.
TSV wins when both layouts hold a split.

Rules for the TSV files, each forced by the real files:
- no quote processing: lines are split on "\\t" by hand, because GLUE text holds bare and
  unbalanced quotes (MRPC, QNLI, SST-2) that csv's quoting would merge across rows;
- lines end at "\\n" only (a trailing "\\r" is dropped): str.splitlines() would also break on
  U+2028, U+0085, form feeds ... which may occur inside sentences;
- a UTF-8 BOM at the file start is dropped (MRPC train/dev start with one, before the header),
  and U+FEFF is removed from texts (QNLI dev has it inside a sentence);
- texts are otherwise kept verbatim (SST-2's trailing spaces included);
- a missing final newline is fine (CoLA dev); any other empty line is a malformed row;
- a row with the wrong number of columns, or an unknown label, is a UserError naming
  file:line, never skipped: silently dropping rows would change the official dev sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from nlpx.data.files import text_lines
from nlpx.errors import UserError
from nlpx.eval.glue_tasks import SplitSpec, TaskSpec, get_task

STSB_RANGE = (0.0, 5.0)


@dataclass(frozen=True)
class Example:
    guid: str  # "<task>-<split>-<row>", row counted from 0 over data rows
    text_a: str
    text_b: str | None
    label: int | float | None  # class id (position in TaskSpec.labels), STS-B score, or None (test)
    index: int | None  # the file's index column where the split has one (all test splits; every HF split)
    # the row's pieces a prompt is built from where text_a is not enough (nlpx.eval.clue_tasks:
    # CLUEWSC's text and spans, ChID's text and candidates)
    parts: dict | None = field(default=None, compare=False)


def available_splits(glue_dir: str | Path, task: str) -> dict[str, Path]:
    """The splits of ``task`` present in either layout, in table order; {} when there are none.

    Each maps to its TSV file or, for a split without one, to its HF save_to_disk split folder or
    its first HF parquet shard.
    """
    from nlpx.eval import glue_hf

    spec = get_task(task)
    out: dict[str, Path] = {}
    for split in spec.splits:
        path = _find(Path(glue_dir), spec, split) or glue_hf.find_split(glue_dir, task, split.name)
        if path is not None:
            out[split.name] = path
    return out


def dev_split_names(task: str) -> dict[str, str]:
    """{dev split: the name it is scored under} (nlpx.eval.glue_metrics): MNLI's two, else {"dev": task}."""
    from nlpx.eval.glue_metrics import MNLI_SPLITS

    if task == "mnli":
        return {split: name for name, split in MNLI_SPLITS.items()}
    return {"dev": task}


def present_splits(glue_dir, task: str) -> dict[str, list[str]]:
    """{"train": [...], "dev": [...], "test": [...]}: the splits of `task` whose data is there."""
    have = available_splits(glue_dir, task)
    dev = list(dev_split_names(task))
    return {"train": [s for s in ("train",) if s in have], "dev": [s for s in dev if s in have],
            "test": [s for s in have if s.startswith("test")]}


def read_split(glue_dir: str | Path, task: str, split: str) -> list[Example]:
    """Read ``split`` of ``task`` from its TSV file, else from the Hugging Face layout."""
    from nlpx.eval import glue_hf

    spec = get_task(task)
    split_spec = spec.split(split)
    path = _find(Path(glue_dir), spec, split_spec)
    if path is not None:
        return read_file(path, task, split)
    if glue_hf.find_split(glue_dir, task, split) is not None:
        return glue_hf.read_split(glue_dir, task, split)
    looked = [f"{folder}/{name}" for folder in spec.folders for name in split_spec.files]
    if (Path(glue_dir) / glue_hf.get_config(task).name).is_dir():  # an HF layout for the task, without this split
        looked += glue_hf.looked_for(task, split)
    raise UserError(f"{glue_dir}: no GLUE {task} {split} file (looked for {', '.join(looked)})")


def read_file(path: str | Path, task: str, split: str) -> list[Example]:
    """Read one GLUE file laid out like ``task``'s ``split`` (for files outside the GLUE layout)."""
    spec = get_task(task)
    split_spec = spec.split(split)
    path = Path(path)
    lines = text_lines(path)
    if split_spec.has_header:
        if not lines:
            raise UserError(f"{path}: empty file (expected a header row with columns "
                            f"{', '.join(_needed(split_spec))})")
        header = lines[0].split("\t")
        missing = [c for c in _needed(split_spec) if c not in header]
        if missing:
            raise UserError(f"{path}:1: header has no column {', '.join(repr(c) for c in missing)} "
                            f"(GLUE {task} {split} needs {', '.join(_needed(split_spec))})")
        first_line = 2
        rows = lines[1:]
    else:
        header = list(split_spec.columns)
        first_line = 1
        rows = lines
    pos = {name: header.index(name) for name in _needed(split_spec)}
    label_ids = {s: i for i, s in enumerate(spec.labels)} if spec.labels is not None else None
    where = "as in the header" if split_spec.has_header else "no header row"

    examples: list[Example] = []
    for row, line in enumerate(rows):
        lineno = first_line + row
        cells = line.split("\t")
        if len(cells) != len(header):
            raise UserError(f"{path}:{lineno}: expected {len(header)} tab-separated columns ({where}: "
                            f"{', '.join(header)}), found {len(cells)}")
        text_b = cells[pos[split_spec.text_b]].replace("\ufeff", "") if split_spec.text_b else None
        examples.append(Example(
            guid=f"{task}-{split}-{row}",
            text_a=cells[pos[split_spec.text_a]].replace("\ufeff", ""),
            text_b=text_b,
            label=(_label(cells[pos[split_spec.label]], label_ids, path, lineno, split_spec.label)
                   if split_spec.label else None),
            index=_index(cells[pos[split_spec.index]], path, lineno, split_spec.index) if split_spec.index else None,
        ))
    return examples


def _find(glue_dir: Path, spec: TaskSpec, split: SplitSpec) -> Path | None:
    for folder in spec.folders:
        for name in split.files:
            path = glue_dir / folder / name
            if path.is_file():
                return path
    return None


def _needed(split: SplitSpec) -> list[str]:
    return [c for c in (split.index, split.text_a, split.text_b, split.label) if c]


def _label(cell: str, label_ids: dict[str, int] | None, path: Path, lineno: int, column: str) -> int | float:
    if label_ids is not None:
        try:
            return label_ids[cell]
        except KeyError:
            raise UserError(f"{path}:{lineno}: unknown label {cell!r} in column '{column}' "
                            f"(valid: {', '.join(label_ids)})") from None
    lo, hi = STSB_RANGE
    try:
        score = float(cell)
    except ValueError:
        score = math.nan
    if not lo <= score <= hi:  # also rejects nan
        raise UserError(f"{path}:{lineno}: score {cell!r} in column '{column}' is not a number "
                        f"from {lo:g} to {hi:g}")
    return score


def _index(cell: str, path: Path, lineno: int, column: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise UserError(f"{path}:{lineno}: index {cell!r} in column '{column}' is not an integer") from None
