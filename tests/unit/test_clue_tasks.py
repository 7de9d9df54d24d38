"""The CLUE / FewCLUE task tables and readers: the official JSON-lines layouts with their quirks."""

from __future__ import annotations

import json

import pytest

from nlpx.errors import UserError
from nlpx.eval.benchmarks import get_benchmark, majority_score
from nlpx.eval.clue_tasks import TASKS, get_task, mark_wsc, read_split
from tests.conftest import data_dir


def test_the_tables_name_every_task_in_order():
    assert list(TASKS["clue"]) == ["afqmc", "tnews", "iflytek", "cmnli", "ocnli", "cluewsc2020", "csl"]
    assert list(TASKS["fewclue"]) == ["eprstmt", "bustm", "ocnli", "csldcp", "tnews", "iflytek", "csl", "cluewsc",
                                      "chid"]
    assert get_task("clue", "tnews").labels == ("100", "101", "102", "103", "104", "106", "107", "108", "109", "110",
                                                "112", "113", "114", "115", "116")
    assert get_task("clue", "iflytek").labels == tuple(str(i) for i in range(119))
    assert get_task("clue", "cluewsc2020").submission_file == "cluewsc11_predict.json"
    assert get_task("clue", "afqmc").submission_file == "afqmc_predict.json"
    assert get_task("fewclue", "eprstmt").splits == {"train": ("train_few_all.json",), "dev": ("dev_few_all.json",),
                                                     "test": ("test_public.json",)}
    assert get_benchmark("fewclue").reported == "test" and get_benchmark("clue").reported == "dev"
    with pytest.raises(UserError, match="unknown CLUE task 'sst2' .valid: afqmc, tnews"):
        get_task("clue", "sst2")


def test_cluewsc_marks_the_noun_phrase_and_the_pronoun_as_clues_baselines_do():
    text = "裂开的伤口涂满尘土，我小心翼翼把它们剔除出去。"
    target = {"span1_index": 3, "span1_text": "伤口", "span2_index": 16, "span2_text": "它们"}
    assert mark_wsc(text, target, "f:1") == "裂开的_伤口_涂满尘土，我小心翼翼把[它们]剔除出去。"
    # the pronoun first (a cataphora): still each span in its own marks
    target = {"span1_index": 16, "span1_text": "它们", "span2_index": 3, "span2_text": "伤口"}
    assert mark_wsc(text, target, "f:1") == "裂开的[伤口]涂满尘土，我小心翼翼把_它们_剔除出去。"
    with pytest.raises(UserError, match=r"f:7: target.span2_text '它们' is not at span2_index 15 .*'把它'"):
        mark_wsc(text, {"span1_index": 3, "span1_text": "伤口", "span2_index": 15, "span2_text": "它们"}, "f:7")
    with pytest.raises(UserError, match="f:2: the two spans of target overlap"):
        mark_wsc(text, {"span1_index": 3, "span1_text": "伤口涂", "span2_index": 4, "span2_text": "口"}, "f:2")


def test_reading_the_clue_layout(clue):
    afqmc = get_task("clue", "afqmc")
    dev = read_split(afqmc, clue, "dev")
    rows = [json.loads(line) for line in (clue / "afqmc" / "dev.json").read_text().splitlines()]
    assert [(e.text_a, e.text_b, e.label, e.index) for e in dev.examples] == \
        [(r["sentence1"], r["sentence2"], int(r["label"]), r["idx"]) for r in rows]  # dev is keyed by idx
    assert all(e.label is None for e in read_split(afqmc, clue, "test").examples)  # CLUE's test is unlabelled
    ocnli = read_split(get_task("clue", "ocnli"), clue, "dev")
    assert ocnli.skipped == 1 and len(ocnli.examples) == len(rows) - 1  # the "-" row, and only it
    wsc = read_split(get_task("clue", "cluewsc2020"), clue, "train").examples[0]
    assert "_" in wsc.text_a and "[it]" in wsc.text_a and wsc.text_b is None


def test_reading_the_fewclue_layout(fewclue):
    # IFLYTEK: a raw U+2028 inside a text stays in it (str.splitlines would split the JSON line)
    iflytek = read_split(get_task("fewclue", "iflytek"), fewclue, "train").examples
    assert "\u2028" in iflytek[0].text_a and len(iflytek) == 16
    # numeric labels (TNEWS 100) are their strings; test_public is labelled
    tnews = get_task("fewclue", "tnews")
    test = read_split(tnews, fewclue, "test").examples
    rows = [json.loads(line) for line in (fewclue / "tnews" / "test_public.json").read_text().splitlines()]
    assert [e.label for e in test] == [tnews.labels.index(str(r["label"])) for r in rows]
    # CSLDCP's labels come from its labels_all.txt
    csldcp = get_task("fewclue", "csldcp")
    assert csldcp.labels is None and csldcp.resolved(fewclue).labels == ("材料科学与工程", "作物学")
    # CRLF lines read as lines
    assert len(read_split(get_task("fewclue", "eprstmt"), fewclue, "train").examples) == 16
    # ChID: one input per candidate, with it in the blank; the label is the answer's position
    chid = read_split(get_task("fewclue", "chid"), fewclue, "dev").examples[0]
    row = json.loads((fewclue / "chid" / "dev_few_all.json").read_text().splitlines()[0])
    assert chid.text_a == tuple(row["content"].replace("#idiom#", c) for c in row["candidates"])
    assert chid.label == row["answer"]


@pytest.mark.parametrize("line, message", [
    ('{"sentence1": "a", "sentence2": "b", "label": "7", "id": 0}', r"dev.json:2: label '7' is not one of afqmc's \(0, 1\)"),
    ('{"sentence1": "a", "label": "0", "id": 0}', "dev.json:2: key 'sentence2' must be a string"),
    ('{"sentence1": "a", "sentence2": "b", "id": 0}', "dev.json:2: no key 'label'"),
    ('[1, 2]', "dev.json:2: expected a JSON object"),
    ('{"sentence1": "a",', "dev.json:2: not valid JSON"),
])
def test_a_bad_row_names_its_file_and_line(tmp_path, line, message):
    good = '{"sentence1": "a", "sentence2": "b", "label": "1", "id": 0}'
    (tmp_path / "afqmc").mkdir()
    (tmp_path / "afqmc" / "dev.json").write_text(good + "\n" + line + "\n")
    with pytest.raises(UserError, match=message):
        read_split(get_task("clue", "afqmc"), tmp_path, "dev")


def test_the_spec_scores_and_writes_what_the_server_reads(tmp_path, clue):
    from nlpx.finetune.data import Split

    afqmc = get_task("clue", "afqmc")
    assert afqmc.split_metrics("afqmc", [0, 1, 1, 0], [0, 1, 0, 0]) == {"acc": 0.75}
    assert afqmc.score({"acc": 0.75}) == 0.75
    test = read_split(afqmc, clue, "test").examples
    path = afqmc.write_test(tmp_path, Split("afqmc", "test", None, test, None), [1] * len(test))
    assert path.name == "afqmc_predict.json"
    assert [json.loads(line) for line in path.read_text().splitlines()] == \
        [{"id": e.index, "label": "1"} for e in test]
    # the majority-class score: the training set's commonest class on the reported split
    m = majority_score(get_task("fewclue", "eprstmt"), [1, 1, 0], {"eprstmt": [1, 0, 1, 1]})
    assert m == {"score": 0.75, "metrics": {"acc": 0.75}, "prediction": "Positive"}
    assert majority_score(get_task("fewclue", "chid"), [0, 1], {"chid": [1]}) is None


@pytest.mark.skipif(data_dir() is None, reason="real data ($NLPX_DATA) absent")
def test_the_real_files_read_with_their_published_sizes():
    root = data_dir()
    sizes = {("clue", "afqmc", "dev"): (4316, 0), ("clue", "cluewsc2020", "train"): (1244, 0),
             ("clue", "cluewsc2020", "dev"): (304, 0), ("clue", "cluewsc2020", "test"): (290, 0),
             ("clue", "ocnli", "dev"): (2950, 50), ("clue", "ocnli", "test"): (3000, 0),
             ("fewclue", "eprstmt", "test"): (610, 0), ("fewclue", "ocnli", "test"): (2520, 0),
             ("fewclue", "csldcp", "train"): (2036, 0), ("fewclue", "tnews", "test"): (2010, 0),
             ("fewclue", "iflytek", "dev"): (1373, 0), ("fewclue", "iflytek", "test"): (1749, 0),
             ("fewclue", "cluewsc", "test"): (976, 0), ("fewclue", "chid", "test"): (2002, 0)}
    for (bench, name, split), (rows, skipped) in sizes.items():
        task = get_task(bench, name).resolved(root / bench)
        read = read_split(task, root / bench, split)
        assert (len(read.examples), read.skipped) == (rows, skipped), (bench, name, split)
    assert len(get_task("fewclue", "csldcp").resolved(root / "fewclue").labels) == 67
