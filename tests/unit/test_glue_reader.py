"""GLUE reader on tiny files with the quirks of the real ones, plus one real-data check."""

from __future__ import annotations

import pathlib

import pytest

from nlpx.errors import UserError
from nlpx.eval.glue_reader import Example, available_splits, read_file, read_split
from nlpx.eval.glue_tasks import TASKS, get_task
from tests.conftest import data_dir

BOM = b"\xef\xbb\xbf"


def write(path: pathlib.Path, data: str | bytes) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def tsv(*rows: tuple, end: str = "\n") -> str:
    return "".join("\t".join(map(str, r)) + end for r in rows)


def user_error(fn, *args) -> str:
    with pytest.raises(UserError) as e:
        fn(*args)
    return str(e.value)


MNLI_DEV_HEADER = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                   "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
                   "label1", "label2", "label3", "label4", "label5", "gold_label")


def mnli_row(i, s1, s2, gold):
    # parse columns deliberately hold other text, so picking columns by position would show
    return (i, 100 + i, f"{i}e", "fiction", f"( ( {s1} ) )", f"( {s2} )", f"(ROOT (S {s1}))", f"(ROOT {s2})",
            s1, s2, "neutral", "neutral", gold, gold, gold, gold)


# ---- the quirks, one task each ----

def test_mrpc_bom_header_bare_quotes_and_unlabelled_test(tmp_path):
    write(tmp_path / "MRPC" / "train.tsv", BOM + tsv(
        ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
        (1, 702876, 702977, 'He said "hi', '"The witness", he said.'),
        (0, 3, 4, "A 'b", 'C"'),
    ).encode())
    write(tmp_path / "MRPC" / "test.tsv", tsv(
        ("index", "#1 ID", "#2 ID", "#1 String", "#2 String"), (7, 5, 6, "x", "y")))
    assert read_split(tmp_path, "mrpc", "train") == [
        Example("mrpc-train-0", 'He said "hi', '"The witness", he said.', 1, None),
        Example("mrpc-train-1", "A 'b", 'C"', 0, None),
    ]
    assert read_split(tmp_path, "mrpc", "test") == [Example("mrpc-test-0", "x", "y", None, 7)]


def test_cola_without_header_and_without_final_newline(tmp_path):
    write(tmp_path / "CoLA" / "dev.tsv", "gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tHe said \"hi")
    write(tmp_path / "CoLA" / "test.tsv", tsv(("index", "sentence"), (0, "Bill whistled."), (1, "Who?")))
    assert read_split(tmp_path, "cola", "dev") == [
        Example("cola-dev-0", "The sailors rode.", None, 1, None),
        Example("cola-dev-1", 'He said "hi', None, 0, None),
    ]
    assert read_split(tmp_path, "cola", "test") == [
        Example("cola-test-0", "Bill whistled.", None, None, 0),
        Example("cola-test-1", "Who?", None, None, 1),
    ]


def test_qnli_feff_inside_a_sentence_is_removed(tmp_path):
    write(tmp_path / "QNLI" / "dev.tsv", tsv(
        ("index", "question", "sentence", "label"),
        (0, "Where?", "47\u00b039\u2032N\ufeff / \ufeff47.650", "entailment"),
        (1, "Why\ufeff?", "Because.", "not_entailment")))
    assert read_split(tmp_path, "qnli", "dev") == [
        Example("qnli-dev-0", "Where?", "47\u00b039\u2032N / 47.650", 0, 0),
        Example("qnli-dev-1", "Why?", "Because.", 1, 1),
    ]


def test_mnli_columns_by_header_name_both_dev_splits_and_crlf(tmp_path):
    write(tmp_path / "MNLI" / "dev_matched.tsv", tsv(
        MNLI_DEV_HEADER, mnli_row(0, "A man.", "A person.", "entailment"),
        mnli_row(1, "A dog.", "A cat.", "contradiction")))
    write(tmp_path / "MNLI" / "dev_mismatched.tsv", tsv(
        MNLI_DEV_HEADER, mnli_row(5, "It rains.", "It is wet.", "neutral"), end="\r\n"))
    write(tmp_path / "MNLI" / "test_matched.tsv", tsv(
        MNLI_DEV_HEADER[:10], mnli_row(9, "Hi.", "Hello.", "-")[:10], end="\r\n"))
    assert list(available_splits(tmp_path, "mnli")) == ["dev_matched", "dev_mismatched", "test_matched"]
    assert read_split(tmp_path, "mnli", "dev_matched") == [
        Example("mnli-dev_matched-0", "A man.", "A person.", 0, 0),
        Example("mnli-dev_matched-1", "A dog.", "A cat.", 2, 1),
    ]
    assert read_split(tmp_path, "mnli", "dev_mismatched") == [
        Example("mnli-dev_mismatched-0", "It rains.", "It is wet.", 1, 5)]
    assert read_split(tmp_path, "mnli", "test_matched") == [
        Example("mnli-test_matched-0", "Hi.", "Hello.", None, 9)]


def test_stsb_float_scores_and_unlabelled_test(tmp_path):
    head = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
    meta = ("main-captions", "MSRvid", "2012test", "0001", "none", "none")
    write(tmp_path / "STS-B" / "dev.tsv", tsv((*head, "score"), (0, *meta, "A plane.", "An air plane.", "5.000"),
                                              (1, *meta, "A man.", "A dog.", "0.250")))
    write(tmp_path / "STS-B" / "test.tsv", tsv(head, (3, *meta, "A girl.", "A boy.")))
    assert read_split(tmp_path, "stsb", "dev") == [
        Example("stsb-dev-0", "A plane.", "An air plane.", 5.0, 0),
        Example("stsb-dev-1", "A man.", "A dog.", 0.25, 1),
    ]
    assert read_split(tmp_path, "stsb", "test") == [Example("stsb-test-0", "A girl.", "A boy.", None, 3)]


def test_lines_split_only_on_newline_and_texts_kept_verbatim(tmp_path):
    # U+2028, U+0085, a form feed and a lone CR are inside sentences, not line ends (str.splitlines
    # would break on all of them); SST-2's trailing space stays.
    write(tmp_path / "SST-2" / "dev.tsv", tsv(("sentence", "label"), ("a\u2028b\x85c\x0cd\re ", 1), ("f ", 0)))
    assert read_split(tmp_path, "sst2", "dev") == [
        Example("sst2-dev-0", "a\u2028b\x85c\x0cd\re ", None, 1, None),
        Example("sst2-dev-1", "f ", None, 0, None),
    ]


def test_ax_in_the_glue_download_layout_or_as_ax_tsv(tmp_path):
    rows = tsv(("index", "sentence1", "sentence2"), (0, "The cat sat.", "The cat did not sit."))
    expected = [Example("ax-test-0", "The cat sat.", "The cat did not sit.", None, 0)]
    write(tmp_path / "a" / "diagnostic" / "diagnostic.tsv", rows)
    write(tmp_path / "b" / "AX" / "AX.tsv", rows)
    assert available_splits(tmp_path / "a", "ax") == {"test": tmp_path / "a" / "diagnostic" / "diagnostic.tsv"}
    assert available_splits(tmp_path / "b", "ax") == {"test": tmp_path / "b" / "AX" / "AX.tsv"}
    assert read_split(tmp_path / "a", "ax", "test") == expected
    assert read_split(tmp_path / "b", "ax", "test") == expected


# ---- file presence ----

def test_available_splits_lists_present_files_in_table_order(tmp_path):
    write(tmp_path / "QNLI" / "test.tsv", tsv(("index", "question", "sentence")))
    write(tmp_path / "QNLI" / "dev.tsv", tsv(("index", "question", "sentence", "label")))
    assert available_splits(tmp_path, "qnli") == {"dev": tmp_path / "QNLI" / "dev.tsv",
                                                  "test": tmp_path / "QNLI" / "test.tsv"}
    assert read_split(tmp_path, "qnli", "test") == []  # header only: no rows


def test_absent_task_folder_or_glue_dir_has_no_splits(tmp_path):
    assert available_splits(tmp_path, "rte") == {}
    assert available_splits(tmp_path / "nowhere", "rte") == {}
    assert user_error(read_split, tmp_path, "rte", "dev") == \
        f"{tmp_path}: no GLUE rte dev file (looked for RTE/dev.tsv)"


def test_unknown_task_or_split_lists_the_valid_ones(tmp_path):
    assert user_error(available_splits, tmp_path, "sst-2") == \
        "unknown GLUE task 'sst-2' (valid: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax)"
    assert user_error(read_split, tmp_path, "mnli", "dev") == (
        "GLUE task mnli: unknown split 'dev' "
        "(valid: train, dev_matched, dev_mismatched, test_matched, test_mismatched)")


# ---- malformed files: one line naming file:line and what is valid ----

def test_wrong_column_count_without_header(tmp_path):
    f = write(tmp_path / "CoLA" / "train.tsv", "gj04\t1\t\tFine.\ngj04\t1\tNo mark column.\n")
    assert user_error(read_split, tmp_path, "cola", "train") == (
        f"{f}:2: expected 4 tab-separated columns "
        "(no header row: source, label, original-mark, sentence), found 3")


def test_qqp_row_with_missing_columns_is_an_error(tmp_path):
    f = write(tmp_path / "QQP" / "train.tsv", tsv(
        ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        (0, 1, 2, "How?", "How so?", 0), (1, 3, 4, "What is this question"), (2, 5, 6, "a", "b", 1)))
    assert user_error(read_split, tmp_path, "qqp", "train") == (
        f"{f}:3: expected 6 tab-separated columns "
        "(as in the header: id, qid1, qid2, question1, question2, is_duplicate), found 4")


def test_extra_column_and_blank_line_are_errors(tmp_path):
    f = write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\nok\t1\nbad\t0\textra\n")
    assert user_error(read_split, tmp_path, "sst2", "train").startswith(f"{f}:3: expected 2 tab-separated")
    f = write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\nok\t1\n\nok\t0\n")
    assert user_error(read_split, tmp_path, "sst2", "train") == (
        f"{f}:3: expected 2 tab-separated columns (as in the header: sentence, label), found 1")


def test_unknown_label_names_the_valid_labels(tmp_path):
    f = write(tmp_path / "RTE" / "dev.tsv", tsv(
        ("index", "sentence1", "sentence2", "label"), (0, "a", "b", "entailment"), (1, "c", "d", "neutral")))
    assert user_error(read_split, tmp_path, "rte", "dev") == (
        f"{f}:3: unknown label 'neutral' in column 'label' (valid: entailment, not_entailment)")
    f = write(tmp_path / "CoLA" / "dev.tsv", "gj04\t2\t\tHm.\n")
    assert user_error(read_split, tmp_path, "cola", "dev") == \
        f"{f}:1: unknown label '2' in column 'label' (valid: 0, 1)"


def test_bad_stsb_score_and_bad_index(tmp_path):
    head = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
            "score")
    meta = ("g", "f", "y", "o", "s1", "s2", "A.", "B.")
    f = write(tmp_path / "STS-B" / "train.tsv", tsv(head, (0, *meta, "5.5")))
    assert user_error(read_split, tmp_path, "stsb", "train") == \
        f"{f}:2: score '5.5' in column 'score' is not a number from 0 to 5"
    write(f, tsv(head, (0, *meta, "nan")))
    assert user_error(read_split, tmp_path, "stsb", "train") == \
        f"{f}:2: score 'nan' in column 'score' is not a number from 0 to 5"
    write(f, tsv(head, ("x1", *meta, "1.0")))
    assert user_error(read_split, tmp_path, "stsb", "train") == \
        f"{f}:2: index 'x1' in column 'index' is not an integer"


def test_header_without_a_needed_column(tmp_path):
    f = write(tmp_path / "WNLI" / "dev.tsv", tsv(("index", "sentence1", "sentence_2", "label"), (0, "a", "b", 1)))
    assert user_error(read_split, tmp_path, "wnli", "dev") == (
        f"{f}:1: header has no column 'sentence2' (GLUE wnli dev needs index, sentence1, sentence2, label)")
    f = write(tmp_path / "WNLI" / "test.tsv", b"")
    assert user_error(read_split, tmp_path, "wnli", "test") == \
        f"{f}: empty file (expected a header row with columns index, sentence1, sentence2)"


def test_invalid_utf8_names_the_line(tmp_path):
    f = write(tmp_path / "WNLI" / "dev.tsv", b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n1\tcaf\xe9\tb\t0\n")
    assert user_error(read_split, tmp_path, "wnli", "dev") == \
        f"{f}:3: not valid UTF-8 (byte 0xe9); GLUE files are UTF-8"


def test_read_file_reads_a_file_outside_the_layout(tmp_path):
    f = write(tmp_path / "my_rte_dev.tsv", tsv(("index", "sentence1", "sentence2", "label"),
                                               (4, "a", "b", "not_entailment")))
    assert read_file(f, "rte", "dev") == [Example("rte-dev-0", "a", "b", 1, 4)]


def test_label_orders():
    assert {name: t.labels for name, t in TASKS.items()} == {
        "cola": ("0", "1"), "sst2": ("0", "1"), "mrpc": ("0", "1"), "stsb": None, "qqp": ("0", "1"),
        "mnli": ("entailment", "neutral", "contradiction"), "qnli": ("entailment", "not_entailment"),
        "rte": ("entailment", "not_entailment"), "wnli": ("0", "1"),
        "ax": ("entailment", "neutral", "contradiction")}
    assert get_task("stsb").is_regression and not get_task("ax").in_glue_score


# ---- the real files (../shared/data or $NLPX_DATA); skips when absent ----

REAL_COUNTS = {
    "cola": {"train": 8551, "dev": 1043, "test": 1063},
    "sst2": {"train": 67349, "dev": 872, "test": 1821},
    "mrpc": {"train": 3668, "dev": 408, "test": 1725},
    "stsb": {"train": 5749, "dev": 1500, "test": 1379},
    "wnli": {"train": 635, "dev": 71, "test": 146},
    "qnli": {"dev": 5463, "test": 5463},
}


def _real_glue() -> pathlib.Path | None:
    root = data_dir()
    return root / "glue" if root is not None and (root / "glue").is_dir() else None


@pytest.mark.skipif(_real_glue() is None, reason="real GLUE not found: set NLPX_DATA to the shared data folder")
def test_real_glue_row_counts_and_qnli_feff():
    glue = _real_glue()
    counts = {task: {split: len(read_split(glue, task, split)) for split in available_splits(glue, task)}
              for task in REAL_COUNTS}
    assert counts == REAL_COUNTS
    raw = (glue / "QNLI" / "dev.tsv").read_text(encoding="utf-8").split("\n")[61].split("\t")
    assert raw[0] == "60" and "\ufeff" in raw[2]  # the quirk is really there ...
    row = read_split(glue, "qnli", "dev")[60]
    assert row.index == 60 and row.text_b == raw[2].replace("\ufeff", "")  # ... and gone after reading
    assert "\ufeff" not in row.text_a + row.text_b
