"""GLUE submission files: names, exact contents, prediction formats, and the zip."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from nlpx.errors import UserError
from nlpx.eval.glue_reader import Example
from nlpx.eval.glue_submission import SUBMISSION_FILES, pack_submission, write_predictions
from nlpx.eval.glue_tasks import TASKS


def examples(task: str, split: str, indices) -> list[Example]:
    # built here, not read from GLUE files: the writer only uses the order and .index
    return [Example(f"{task}-{split}-{row}", f"text {row}", None, None, index)
            for row, index in enumerate(indices)]


def read(path) -> str:
    return path.read_bytes().decode("utf-8")


def test_submission_files_are_the_servers_names():
    # the order too (the task tables' order): list the items
    assert list(SUBMISSION_FILES.items()) == list({
        ("cola", "test"): "CoLA.tsv",
        ("sst2", "test"): "SST-2.tsv",
        ("mrpc", "test"): "MRPC.tsv",
        ("stsb", "test"): "STS-B.tsv",
        ("qqp", "test"): "QQP.tsv",
        ("mnli", "test_matched"): "MNLI-m.tsv",
        ("mnli", "test_mismatched"): "MNLI-mm.tsv",
        ("qnli", "test"): "QNLI.tsv",
        ("rte", "test"): "RTE.tsv",
        ("wnli", "test"): "WNLI.tsv",
        ("ax", "test"): "AX.tsv",
    }.items())


def test_submission_files_cover_exactly_the_unlabelled_splits_of_the_task_table():
    unlabelled = {(t.name, s.name) for t in TASKS.values() for s in t.splits if s.label is None}
    assert set(SUBMISSION_FILES) == unlabelled


# (task, split, class ids or scores, expected prediction column)
CASES = [
    ("cola", "test", [1, 0, 1], ["1", "0", "1"]),
    ("sst2", "test", [0, 1, 1], ["0", "1", "1"]),
    ("mrpc", "test", [1, 1, 0], ["1", "1", "0"]),
    ("stsb", "test", [3.14159, 0.0, 5.0], ["3.142", "0.000", "5.000"]),
    ("qqp", "test", [0, 0, 1], ["0", "0", "1"]),
    ("mnli", "test_matched", [0, 1, 2], ["entailment", "neutral", "contradiction"]),
    ("mnli", "test_mismatched", [2, 2, 0], ["contradiction", "contradiction", "entailment"]),
    ("qnli", "test", [1, 0, 1], ["not_entailment", "entailment", "not_entailment"]),
    ("rte", "test", [0, 1, 0], ["entailment", "not_entailment", "entailment"]),
    ("wnli", "test", [1, 1, 1], ["1", "1", "1"]),
    ("ax", "test", [1, 2, 0], ["neutral", "contradiction", "entailment"]),
]


def test_cases_cover_every_submission_file():
    assert {(task, split) for task, split, _, _ in CASES} == set(SUBMISSION_FILES)


@pytest.mark.parametrize("task, split, predictions, column", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_file_name_and_exact_contents(tmp_path, task, split, predictions, column):
    exs = examples(task, split, [0, 1, 2])
    path = write_predictions(tmp_path, task, split, exs, predictions)
    assert path == tmp_path / SUBMISSION_FILES[(task, split)]
    assert read(path) == "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(column))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left behind


def test_one_row_per_example_in_file_order_keyed_by_the_index_column(tmp_path):
    # test files need not be numbered 0..n-1 in order; the rows follow the examples, not the index
    exs = examples("rte", "test", [7, 3, 1000, 5, 4])
    path = write_predictions(tmp_path, "rte", "test", exs, [0, 1, 1, 0, 1])
    assert read(path) == ("index\tprediction\n7\tentailment\n3\tnot_entailment\n1000\tnot_entailment\n"
                          "5\tentailment\n4\tnot_entailment\n")
    assert len(read(path).splitlines()) == 1 + len(exs)


def test_row_number_when_examples_have_no_index(tmp_path):
    path = write_predictions(tmp_path, "sst2", "test", examples("sst2", "test", [None, None, None]), [1, 0, 1])
    assert read(path) == "index\tprediction\n0\t1\n1\t0\n2\t1\n"


def test_no_examples_gives_the_header_only(tmp_path):
    assert read(write_predictions(tmp_path, "cola", "test", [], [])) == "index\tprediction\n"


def test_numpy_predictions(tmp_path):
    exs = examples("mnli", "test_matched", [0, 1, 2])
    path = write_predictions(tmp_path, "mnli", "test_matched", exs, np.array([2, 0, 1], dtype=np.int64))
    assert read(path) == "index\tprediction\n0\tcontradiction\n1\tentailment\n2\tneutral\n"
    path = write_predictions(tmp_path, "stsb", "test", exs, np.array([0.5, 4.25, 2.0], dtype=np.float32))
    assert read(path) == "index\tprediction\n0\t0.500\n1\t4.250\n2\t2.000\n"


def test_stsb_is_clipped_to_0_5_with_three_decimals(tmp_path):
    preds = [-0.7, -0.0, -1e-9, 0.0004, 2.71828, 4.9996, 5.0001, 7.3, 3]
    path = write_predictions(tmp_path, "stsb", "test", examples("stsb", "test", range(len(preds))), preds)
    assert read(path) == ("index\tprediction\n0\t0.000\n1\t0.000\n2\t0.000\n3\t0.000\n4\t2.718\n"
                          "5\t5.000\n6\t5.000\n7\t5.000\n8\t3.000\n")


def test_rewriting_replaces_the_file(tmp_path):
    exs = examples("wnli", "test", [0, 1])
    write_predictions(tmp_path, "wnli", "test", exs, [0, 0])
    path = write_predictions(tmp_path, "wnli", "test", exs, [1, 1])
    assert read(path) == "index\tprediction\n0\t1\n1\t1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["WNLI.tsv"]


def test_creates_the_output_folder(tmp_path):
    path = write_predictions(tmp_path / "a" / "b", "cola", "test", examples("cola", "test", [0]), [1])
    assert path == tmp_path / "a" / "b" / "CoLA.tsv"
    assert read(path) == "index\tprediction\n0\t1\n"


@pytest.mark.parametrize("task, split, predictions, message", [
    ("cola", "test", [1, 0], "2 predictions for 3 examples"),
    ("cola", "test", [1, 0, 1, 1], "4 predictions for 3 examples"),
    ("mnli", "test_matched", [0, 3, 1], "row 1 (index 1): class id 3 out of range for mnli"),
    ("rte", "test", [0, 1, -1], "row 2 (index 2): class id -1 out of range for rte"),
    ("sst2", "test", [2, 0, 0], "class id 2 out of range for sst2"),
    ("qnli", "test", [0, 0.0, 1], "prediction 0.0 is not a class id"),
    ("stsb", "test", [1.0, float("nan"), 2.0], "STS-B prediction nan is not a finite number"),
    ("stsb", "test", [1.0, 2.0, float("inf")], "STS-B prediction inf is not a finite number"),
    ("stsb", "test", ["2.5", 1.0, 2.0], "STS-B prediction '2.5' is not a finite number"),
])
def test_bad_predictions_are_bugs_not_user_errors(tmp_path, task, split, predictions, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        write_predictions(tmp_path, task, split, examples(task, split, [0, 1, 2]), predictions)
    assert not isinstance(e.value, UserError)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a partial file


@pytest.mark.parametrize("task, split, message", [
    ("mnli", "test", "GLUE task mnli: unknown split 'test'"),
    ("sst2", "dev", "GLUE task sst2: split 'dev' is not submitted to the GLUE server (test splits: test)"),
    ("mnli", "dev_matched", "(test splits: test_matched, test_mismatched)"),
    ("glue", "test", "unknown GLUE task 'glue'"),
])
def test_names_a_user_can_mistype_are_user_errors(tmp_path, task, split, message):
    with pytest.raises(UserError) as e:
        write_predictions(tmp_path, task, split, [], [])
    assert message in str(e.value)


def write_all(out_dir) -> dict[str, bytes]:
    written = {}
    for task, split, predictions, _ in CASES:
        path = write_predictions(out_dir, task, split, examples(task, split, [0, 1, 2]), predictions)
        written[path.name] = path.read_bytes()
    return written


def zip_contents(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def test_zip_holds_every_file_flat_in_table_order(tmp_path):
    written = write_all(tmp_path)
    (tmp_path / "notes.txt").write_text("not a submission file\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "CoLA.tsv").write_text("index\tprediction\n")  # a folder is not looked into
    path = pack_submission(tmp_path)
    assert path == tmp_path / "submission.zip"
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == list(SUBMISSION_FILES.values())
    assert zip_contents(path) == written
    assert zip_contents(path)["MNLI-m.tsv"] == b"index\tprediction\n0\tentailment\n1\tneutral\n2\tcontradiction\n"


def test_zip_holds_only_the_files_present(tmp_path):
    write_predictions(tmp_path, "rte", "test", examples("rte", "test", [0, 1]), [1, 0])
    write_predictions(tmp_path, "cola", "test", examples("cola", "test", [0]), [1])
    path = pack_submission(tmp_path)
    assert zip_contents(path) == {"CoLA.tsv": b"index\tprediction\n0\t1\n",
                                  "RTE.tsv": b"index\tprediction\n0\tnot_entailment\n1\tentailment\n"}
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["CoLA.tsv", "RTE.tsv"]


def test_zip_is_deterministic_and_repacking_replaces_it(tmp_path):
    write_all(tmp_path / "a")
    write_all(tmp_path / "b")
    first = pack_submission(tmp_path / "a").read_bytes()
    assert pack_submission(tmp_path / "b").read_bytes() == first  # same predictions, same bytes
    assert pack_submission(tmp_path / "a").read_bytes() == first  # the old zip is not packed into itself
    write_predictions(tmp_path / "a", "wnli", "test", examples("wnli", "test", [0]), [0])
    assert zip_contents(pack_submission(tmp_path / "a"))["WNLI.tsv"] == b"index\tprediction\n0\t0\n"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted([*SUBMISSION_FILES.values(),
                                                                          "submission.zip"])


def test_nothing_to_pack_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x\n")
    with pytest.raises(UserError, match="no GLUE submission files to pack"):
        pack_submission(tmp_path)
    with pytest.raises(UserError, match="no GLUE submission files to pack"):
        pack_submission(tmp_path / "missing")
    assert not (tmp_path / "submission.zip").exists()
