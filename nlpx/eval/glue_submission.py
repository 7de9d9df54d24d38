"""Write GLUE test-set predictions in the files the GLUE server accepts, and zip them.

The server (gluebenchmark.com) takes one zip holding, at its top level, one TSV per test set
(CoLA.tsv, ..., MNLI-m.tsv, MNLI-mm.tsv, ..., AX.tsv) with a header row ``index<TAB>prediction``
and one row per test example. Predictions are written as the test files' own label strings:
words for the NLI tasks (MNLI/AX: entailment/neutral/contradiction; QNLI/RTE:
entailment/not_entailment), 0/1 for CoLA, SST-2, MRPC, QQP and WNLI (their label strings in
the task table are "0"/"1"), and the STS-B score as a number.

Inputs come from nlpx's own code (the reader's Examples and the model's predictions), so a
wrong count or a class id out of range is a bug: ValueError, with its traceback. A task or
split name can come from the command line: UserError.
"""

from __future__ import annotations

import io
import math
import numbers
import operator
import zipfile
from pathlib import Path
from typing import Sequence

from nlpx.errors import UserError
from nlpx.rundir import atomic_write_bytes
from nlpx.eval.glue_reader import STSB_RANGE, Example
from nlpx.eval.glue_tasks import SUBMISSION_FILES, get_task

ZIP_NAME = "submission.zip"
HEADER = "index\tprediction\n"
# A fixed timestamp makes the zip depend on the files' contents only, so re-packing the same
# predictions gives the same bytes (1980-01-01 is the earliest date a zip can hold).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def submission_file(task: str, split: str) -> str:
    """The server's file name for ``task``'s ``split``; UserError for names a user could mistype."""
    spec = get_task(task)
    spec.split(split)  # an unknown split names the valid ones
    try:
        return SUBMISSION_FILES[(task, split)]
    except KeyError:
        tests = [s for (t, s) in SUBMISSION_FILES if t == task]
        raise UserError(f"GLUE task {task}: split '{split}' is not submitted to the GLUE server "
                        f"(test splits: {', '.join(tests)})") from None


def write_predictions(out_dir: str | Path, task: str, split: str, examples: list[Example],
                      predictions: Sequence) -> Path:
    """Write ``out_dir/<server file name>``: the header, then one row per example in file order.

    ``predictions[i]`` belongs to ``examples[i]``: a class id (position in the task's labels) for
    classification, a score for STS-B. The row's index is ``Example.index``, or the row number
    where the example has none.
    """
    name = submission_file(task, split)
    spec = get_task(task)
    if len(predictions) != len(examples):
        raise ValueError(f"GLUE {task} {split}: {len(predictions)} predictions for {len(examples)} examples")
    fmt = _format_score if spec.is_regression else _label_formatter(task, spec.labels)
    lines = [HEADER]
    for row, (example, prediction) in enumerate(zip(examples, predictions)):
        index = row if example.index is None else example.index
        try:
            lines.append(f"{index}\t{fmt(prediction)}\n")
        except ValueError as e:
            raise ValueError(f"GLUE {task} {split}, row {row} (index {index}): {e}") from None
    path = Path(out_dir) / name
    atomic_write_bytes(path, "".join(lines).encode("utf-8"))
    return path


def write_dev_predictions(path: str | Path, task: str, examples: list[Example], predictions: Sequence) -> Path:
    """A dev split's predictions next to its gold labels: ``index  prediction  label``, file order,
    label strings as in the files (scores with 6 decimals, unclipped, so metrics can be recomputed)."""
    spec = get_task(task)
    if len(predictions) != len(examples):
        raise ValueError(f"GLUE {task} dev: {len(predictions)} predictions for {len(examples)} examples")
    fmt = (lambda x: f"{float(x):.6f}") if spec.is_regression else _label_formatter(task, spec.labels)
    lines = ["index\tprediction\tlabel\n"]
    for row, (example, prediction) in enumerate(zip(examples, predictions)):
        index = row if example.index is None else example.index
        lines.append(f"{index}\t{fmt(prediction)}\t{fmt(example.label)}\n")
    atomic_write_bytes(Path(path), "".join(lines).encode("utf-8"))
    return Path(path)


def pack_submission(out_dir: str | Path, zip_path: str | Path | None = None) -> Path:
    """Zip the GLUE submission files present in ``out_dir`` into ``zip_path`` (``out_dir/submission.zip``),
    in SUBMISSION_FILES order. Files still missing are simply left out: which tasks to submit is
    the caller's choice."""
    out_dir = Path(out_dir)
    present = [name for name in SUBMISSION_FILES.values() if (out_dir / name).is_file()]
    if not present:
        raise UserError(f"{out_dir}: no GLUE submission files to pack "
                        f"(expected some of {', '.join(SUBMISSION_FILES.values())})")
    return pack_files(out_dir, present, Path(zip_path) if zip_path is not None else out_dir / ZIP_NAME)


def pack_files(out_dir: str | Path, names: list[str], zip_path: str | Path) -> Path:
    """Zip ``out_dir/<name>`` for each name, in that order, at the zip's top level (the GLUE and
    CLUE servers do not look into folders)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # a plain readable file once unpacked, whatever the umask
            zf.writestr(info, (Path(out_dir) / name).read_bytes())
    atomic_write_bytes(Path(zip_path), buf.getvalue())
    return Path(zip_path)


def _label_formatter(task: str, labels: tuple[str, ...]):
    def fmt(prediction) -> str:
        # operator.index accepts Python and numpy integers but refuses floats: a float here means
        # logits or probabilities were passed instead of argmax ids.
        try:
            class_id = operator.index(prediction)
        except TypeError:
            raise ValueError(f"prediction {prediction!r} is not a class id (an integer)") from None
        if not 0 <= class_id < len(labels):
            raise ValueError(f"class id {class_id} out of range for {task} "
                             f"(0..{len(labels) - 1}: {', '.join(labels)})")
        # the label string as the test files spell it; for the binary tasks that is "0"/"1"
        return labels[class_id]
    return fmt


def _format_score(prediction) -> str:
    # numbers.Real takes Python and numpy numbers but not strings, which float() would parse
    if not isinstance(prediction, numbers.Real) or not math.isfinite(float(prediction)):
        raise ValueError(f"STS-B prediction {prediction!r} is not a finite number")
    lo, hi = STSB_RANGE
    # A regression head can leave the gold range; the server scores correlations, so clipping to
    # [0, 5] only removes values no gold score can have. "+ 0.0" turns -0.0 into 0.0, which
    # would otherwise print as "-0.000".
    return f"{min(max(float(prediction), lo), hi) + 0.0:.3f}"
