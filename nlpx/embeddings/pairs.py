"""Scored sentence pairs: STS-B from a GLUE folder and .tsv/.jsonl files of (sentence1, sentence2,
score), read and checked line by line (`nlpx eval sts` evaluates on them; objective=angle trains on
them). Every malformed line is a UserError naming file:line and the column or key."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from nlpx.data.files import text_lines
from nlpx.data.jsonl import json_objects
from nlpx.errors import UserError

SPLITS = ("train", "dev", "test", "none")
FORMATS = (".tsv", ".jsonl")
ROLES = ("sentence1", "sentence2", "score")
NO_SPLIT = ("none", "null", "")



@dataclass(frozen=True)
class Pair:
    sentence1: str
    sentence2: str
    score: float


@dataclass
class PairSet:
    name: str    # the row name: stsb-dev, or the file's stem
    source: str  # the file read
    pairs: list[Pair]


# -- reading ------------------------------------------------------------------------------------

def read_pairs(path: str | Path, columns: dict[str, str] | None = None, group: str = "eval") -> list[Pair]:
    """The scored pairs of a .tsv (header row naming the columns) or .jsonl file (one object a line).

    Any malformed line is a UserError naming file:line and the column or key; blank lines of a
    jsonl file are skipped. `group`: the config group whose keys the messages name (eval, data).
    """
    columns = {**{r: r for r in ROLES}, **(columns or {})}
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{group}.files: {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"{group}.files: {path}: unknown format '{suffix}' (give a .tsv file with a header row "
                        f"or a .jsonl file, with {_needs(columns, group)})")
    needs = _needs(columns, group)
    pairs = _read_jsonl(path, columns, needs) if suffix == ".jsonl" else _read_tsv(path, columns, needs)
    if len(pairs) < 2:
        raise UserError(f"{path}: {len(pairs)} scored pair(s); a correlation needs at least 2")
    return pairs


def _needs(columns: dict[str, str], group: str) -> str:
    return f"{', '.join(repr(columns[r]) for r in ROLES)} ({group}.columns names them)"


def _score(value, path: Path, lineno: int, key: str) -> float:
    number = math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if not math.isfinite(number):
        raise UserError(f"{path}:{lineno}: '{key}' is not a finite number: {value!r}")
    return number


def _text(value, path: Path, lineno: int, key: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{path}:{lineno}: '{key}' is not a string: {value!r}")
    return value.replace("\ufeff", "")


def _read_jsonl(path: Path, columns: dict[str, str], needs: str) -> list[Pair]:
    pairs = []
    for lineno, obj in json_objects(path, f"keys {needs}"):
        for role in ROLES:
            if columns[role] not in obj:
                raise UserError(f"{path}:{lineno}: no key '{columns[role]}' (each line needs {needs})")
        pairs.append(Pair(_text(obj[columns["sentence1"]], path, lineno, columns["sentence1"]),
                          _text(obj[columns["sentence2"]], path, lineno, columns["sentence2"]),
                          _score(obj[columns["score"]], path, lineno, columns["score"])))
    return pairs


def _read_tsv(path: Path, columns: dict[str, str], needs: str) -> list[Pair]:
    """Split on tabs by hand (no quote processing), as nlpx's GLUE reader: STS texts hold quotes."""
    lines = text_lines(path)
    if not lines:
        raise UserError(f"{path}: empty file (expected a header row with columns {needs})")
    header = lines[0].split("\t")
    missing = [columns[r] for r in ROLES if columns[r] not in header]
    if missing:
        raise UserError(f"{path}:1: header has no column {', '.join(repr(c) for c in missing)} "
                        f"(a scored-pairs .tsv needs a header row with {needs})")
    pos = {r: header.index(columns[r]) for r in ROLES}
    pairs = []
    for lineno, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise UserError(f"{path}:{lineno}: expected {len(header)} tab-separated columns (as in the header: "
                            f"{', '.join(header)}), found {len(cells)}")
        pairs.append(Pair(cells[pos["sentence1"]].replace("\ufeff", ""), cells[pos["sentence2"]].replace("\ufeff", ""),
                          _score(cells[pos["score"]], path, lineno, columns["score"])))
    return pairs


def read_stsb(glue_dir: str | Path, split: str, group: str = "eval") -> PairSet:
    """STS-B train, dev (or a test file with gold scores) from a GLUE folder, through nlpx's GLUE
    reader; `group`: the config group whose split/files keys the messages name."""
    from nlpx.eval.glue_reader import available_splits, read_file, read_split

    glue_dir = Path(glue_dir)
    if not glue_dir.is_dir():
        raise UserError(f"data.glue_dir={glue_dir}: no such folder ({group}.split=none reads only {group}.files)")
    if split not in ("train", "dev", "test"):
        raise UserError(f"{group}.split={split}: unknown split (valid: {', '.join(SPLITS)})")
    path = available_splits(glue_dir, "stsb").get(split)
    if path is None:
        try:
            read_split(glue_dir, "stsb", split)  # the reader's message: where it looked
        except UserError as e:
            raise UserError(f"{group}.split={split}: {e} ({group}.split=none reads only {group}.files)") from None
        raise UserError(f"{group}.split={split}: no STS-B {split} data under {glue_dir}")
    header = (text_lines(path)[:1] or [""])[0].split("\t") if path.suffix == ".tsv" else []
    if split == "test" and "score" in header:
        examples = read_file(path, "stsb", "dev")  # a labelled test file: the dev layout
    else:
        examples = read_split(glue_dir, "stsb", split)
    if any(e.label is None for e in examples):
        raise UserError(f"{group}.split={split}: {path} has no gold scores (GLUE's STS-B test set is "
                        f"unlabelled); use {group}.split=dev, or give a labelled file in {group}.files")
    return PairSet(f"stsb-{split}", str(path), [Pair(e.text_a, e.text_b, float(e.label)) for e in examples])


def as_list(value) -> list[str]:
    """eval.files: a list, or one path given as a plain string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def read_datasets(ev, glue_dir, group: str = "eval") -> list[PairSet]:
    """Every data set of `ev` (split, files, columns), read and checked: STS-B (split) first, then
    the files; `group` names ev's keys in the messages."""
    split = "none" if ev.split is None else str(ev.split)
    files = as_list(ev.files)
    columns = {r: str(ev.columns[r]) for r in ROLES}
    if split in NO_SPLIT and not files:
        raise UserError(f"{group}.split=none and no {group}.files: no scored pairs to read")
    sets = [] if split in NO_SPLIT else [read_stsb(glue_dir, split, group)]
    for f in files:
        sets.append(PairSet(Path(f).stem, f, read_pairs(f, columns, group)))
    names = [s.name for s in sets]
    for s in sets:  # two files with the same stem: each row named by its path
        if names.count(s.name) > 1:
            s.name = s.source
    return sets


