"""GLUE in the Hugging Face layout of nyu-mll/glue: save_to_disk folders and the hub's parquet files.

The save_to_disk fixtures are written by the real ``datasets`` library; the parquet ones by pyarrow,
with and without the HF features metadata the hub files carry.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from nlpx.errors import UserError
from nlpx.eval import glue_hf
from nlpx.eval.glue_reader import Example, available_splits, read_split
from nlpx.eval.glue_tasks import TASKS

datasets = pytest.importorskip("datasets")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

datasets.disable_progress_bars()

NLI3 = ["entailment", "neutral", "contradiction"]


def user_error(fn, *args) -> str:
    with pytest.raises(UserError) as e:
        fn(*args)
    return str(e.value)


def features(text_columns: list[str], label) -> datasets.Features:
    return datasets.Features({**{c: datasets.Value("string") for c in text_columns}, "label": label,
                              "idx": datasets.Value("int32")})


def save(root: pathlib.Path, config: str, feats: datasets.Features, splits: dict[str, dict],
         **save_kwargs) -> pathlib.Path:
    dd = datasets.DatasetDict({name: datasets.Dataset.from_dict(cols, features=feats) for name, cols in splits.items()})
    dd.save_to_disk(str(root / config), **save_kwargs)
    return root / config


def write_parquet(path: pathlib.Path, columns: dict[str, list], types: dict[str, object] | None = None,
                  class_names: list[str] | None = None) -> pathlib.Path:
    """A parquet file; with ``class_names``, carrying the HF features metadata as the hub files do."""
    types = types or {}
    schema = pa.schema([(c, types.get(c, pa.int64() if c in ("label", "idx") else pa.string())) for c in columns])
    if class_names is not None:
        feats = {c: {"dtype": "string", "_type": "Value"} for c in columns}
        feats["label"] = {"names": class_names, "_type": "ClassLabel"}
        feats["idx"] = {"dtype": "int32", "_type": "Value"}
        schema = schema.with_metadata({"huggingface": json.dumps({"info": {"features": feats}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


def rte_columns(s1: list[str], s2: list[str], label: list[int], idx: list[int]) -> dict[str, list]:
    return {"sentence1": s1, "sentence2": s2, "label": label, "idx": idx}


# ---- save_to_disk, written by datasets ----

@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("hf_glue")
    save(root, "sst2", features(["sentence"], datasets.ClassLabel(names=["negative", "positive"])), {
        "train": {"sentence": ["a gem ", "dull\ufeff"], "label": [1, 0], "idx": [0, 1]},
        "validation": {"sentence": ["fine"], "label": [1], "idx": [0]},
        "test": {"sentence": ["who knows", "maybe"], "label": [-1, -1], "idx": [0, 1]},
    }, num_shards={"train": 2, "validation": 1, "test": 1})
    mnli = features(["premise", "hypothesis"], datasets.ClassLabel(names=NLI3))
    save(root, "mnli", mnli, {
        "train": {"premise": ["A man.", "A dog."], "hypothesis": ["A person.", "A cat."],
                  "label": [0, 2], "idx": [0, 1]},
        "validation_matched": {"premise": ["It rains."], "hypothesis": ["It is wet."], "label": [1], "idx": [0]},
        "validation_mismatched": {"premise": ["Hi."], "hypothesis": ["Bye."], "label": [2], "idx": [0]},
        "test_matched": {"premise": ["P."], "hypothesis": ["H."], "label": [-1], "idx": [0]},
        "test_mismatched": {"premise": ["Q."], "hypothesis": ["R."], "label": [-1], "idx": [7]},
    })
    save(root, "stsb", features(["sentence1", "sentence2"], datasets.Value("float32")), {
        "train": {"sentence1": ["A plane.", "A man."], "sentence2": ["An air plane.", "A dog."],
                  "label": [5.0, 0.25], "idx": [0, 1]},
        "validation": {"sentence1": ["A cat."], "sentence2": ["A kitten."], "label": [3.8], "idx": [0]},
        "test": {"sentence1": ["A girl."], "sentence2": ["A boy."], "label": [-1.0], "idx": [3]},
    })
    return root


def test_save_to_disk_sst2_dev_reads_validation_and_test_labels_are_none(hf_dir):
    # train was saved in two shards: state.json's order, guids counted over the whole split
    state = json.loads((hf_dir / "sst2" / "train" / "state.json").read_text())
    assert [f["filename"] for f in state["_data_files"]] == ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    assert available_splits(hf_dir, "sst2") == {s: hf_dir / "sst2" / hf for s, hf in
                                                 (("train", "train"), ("dev", "validation"), ("test", "test"))}
    assert read_split(hf_dir, "sst2", "train") == [
        Example("sst2-train-0", "a gem ", None, 1, 0),
        Example("sst2-train-1", "dull", None, 0, 1),  # U+FEFF removed, as in the TSV reader
    ]
    assert read_split(hf_dir, "sst2", "dev") == [Example("sst2-dev-0", "fine", None, 1, 0)]
    assert read_split(hf_dir, "sst2", "test") == [
        Example("sst2-test-0", "who knows", None, None, 0),
        Example("sst2-test-1", "maybe", None, None, 1),
    ]


def test_save_to_disk_mnli_five_splits_in_table_order(hf_dir):
    assert list(available_splits(hf_dir, "mnli")) == [
        "train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched"]
    assert available_splits(hf_dir, "mnli")["dev_mismatched"] == hf_dir / "mnli" / "validation_mismatched"
    assert {s: read_split(hf_dir, "mnli", s) for s in TASKS["mnli"].split_names} == {
        "train": [Example("mnli-train-0", "A man.", "A person.", 0, 0),
                  Example("mnli-train-1", "A dog.", "A cat.", 2, 1)],
        "dev_matched": [Example("mnli-dev_matched-0", "It rains.", "It is wet.", 1, 0)],
        "dev_mismatched": [Example("mnli-dev_mismatched-0", "Hi.", "Bye.", 2, 0)],
        "test_matched": [Example("mnli-test_matched-0", "P.", "H.", None, 0)],
        "test_mismatched": [Example("mnli-test_mismatched-0", "Q.", "R.", None, 7)],
    }


def test_save_to_disk_stsb_float32_scores_read_as_written(hf_dir):
    assert read_split(hf_dir, "stsb", "train") == [
        Example("stsb-train-0", "A plane.", "An air plane.", 5.0, 0),
        Example("stsb-train-1", "A man.", "A dog.", 0.25, 1),
    ]
    # float32(3.8) is 3.799999952316284: read back as 3.8, the score of the TSV file
    assert read_split(hf_dir, "stsb", "dev") == [Example("stsb-dev-0", "A cat.", "A kitten.", 3.8, 0)]
    assert read_split(hf_dir, "stsb", "test") == [Example("stsb-test-0", "A girl.", "A boy.", None, 3)]


def test_tasks_absent_from_the_hf_folder_have_no_splits(hf_dir):
    assert available_splits(hf_dir, "rte") == {}
    assert available_splits(hf_dir / "nowhere", "sst2") == {}


# ---- the hub's parquet files ----

def test_parquet_rte_with_and_without_hf_metadata(tmp_path):
    write_parquet(tmp_path / "rte" / "train-00000-of-00001.parquet",
                  rte_columns(["A.", "B."], ["C.", "D."], [1, 0], [0, 1]), class_names=["entailment", "not_entailment"])
    write_parquet(tmp_path / "rte" / "validation-00000-of-00001.parquet",
                  rte_columns(["E."], ["F."], [1], [0]))
    # a test file without a label column at all is fine: test labels are not read
    write_parquet(tmp_path / "rte" / "test-00000-of-00001.parquet", {"sentence1": ["G."], "sentence2": ["H."],
                                                                    "idx": [5]})
    assert available_splits(tmp_path, "rte") == {
        "train": tmp_path / "rte" / "train-00000-of-00001.parquet",
        "dev": tmp_path / "rte" / "validation-00000-of-00001.parquet",
        "test": tmp_path / "rte" / "test-00000-of-00001.parquet",
    }
    assert read_split(tmp_path, "rte", "train") == [Example("rte-train-0", "A.", "C.", 1, 0),
                                                    Example("rte-train-1", "B.", "D.", 0, 1)]
    assert read_split(tmp_path, "rte", "dev") == [Example("rte-dev-0", "E.", "F.", 1, 0)]
    assert read_split(tmp_path, "rte", "test") == [Example("rte-test-0", "G.", "H.", None, 5)]


def test_parquet_qqp_shards_in_number_order(tmp_path):
    folder = tmp_path / "qqp"

    def qqp(q1, q2, label, idx):
        return {"question1": q1, "question2": q2, "label": label, "idx": idx}

    write_parquet(folder / "train-00001-of-00002.parquet", qqp(["How 3?"], ["Why 3?"], [0], [2]))
    write_parquet(folder / "train-00000-of-00002.parquet", qqp(["How 1?", "How 2?"], ["Why 1?", "Why 2?"],
                                                               [1, 0], [0, 1]))
    write_parquet(folder / "test-00000-of-00001.parquet", qqp(["Q?"], ["R?"], [-1], [9]))
    assert available_splits(tmp_path, "qqp") == {"train": folder / "train-00000-of-00002.parquet",
                                                 "test": folder / "test-00000-of-00001.parquet"}
    assert glue_hf.split_files(tmp_path, "qqp", "train") == [folder / "train-00000-of-00002.parquet",
                                                              folder / "train-00001-of-00002.parquet"]
    assert read_split(tmp_path, "qqp", "train") == [
        Example("qqp-train-0", "How 1?", "Why 1?", 1, 0),
        Example("qqp-train-1", "How 2?", "Why 2?", 0, 1),
        Example("qqp-train-2", "How 3?", "Why 3?", 0, 2),
    ]
    assert read_split(tmp_path, "qqp", "test") == [Example("qqp-test-0", "Q?", "R?", None, 9)]


# ---- which layout wins ----

def test_tsv_wins_over_hf_split_by_split(tmp_path):
    tsv = tmp_path / "RTE" / "dev.tsv"
    tsv.parent.mkdir()
    tsv.write_text("index\tsentence1\tsentence2\tlabel\n4\tFrom\tTSV\tnot_entailment\n")
    write_parquet(tmp_path / "rte" / "validation-00000-of-00001.parquet", rte_columns(["From"], ["HF"], [0], [0]))
    write_parquet(tmp_path / "rte" / "train-00000-of-00001.parquet", rte_columns(["Train"], ["HF"], [0], [0]))
    assert available_splits(tmp_path, "rte") == {"train": tmp_path / "rte" / "train-00000-of-00001.parquet",
                                                 "dev": tsv}
    assert read_split(tmp_path, "rte", "dev") == [Example("rte-dev-0", "From", "TSV", 1, 4)]
    assert read_split(tmp_path, "rte", "train") == [Example("rte-train-0", "Train", "HF", 0, 0)]


def test_save_to_disk_wins_over_parquet(tmp_path):
    feats = features(["sentence1", "sentence2"], datasets.ClassLabel(names=["not_entailment", "entailment"]))
    save(tmp_path, "wnli", feats, {"validation": {"sentence1": ["Arrow"], "sentence2": ["."], "label": [1], "idx": [0]}})
    write_parquet(tmp_path / "wnli" / "validation-00000-of-00001.parquet", rte_columns(["Parquet"], ["."], [0], [0]))
    assert available_splits(tmp_path, "wnli") == {"dev": tmp_path / "wnli" / "validation"}
    assert read_split(tmp_path, "wnli", "dev") == [Example("wnli-dev-0", "Arrow", ".", 1, 0)]


# ---- errors: one line naming the file (and the row, counted from 0 in the file) ----

def test_missing_column_names_found_and_needed(tmp_path):
    f = write_parquet(tmp_path / "rte" / "validation-00000-of-00001.parquet",
                      {"sentence1": ["a"], "sentence_2": ["b"], "label": [0], "idx": [0]})
    assert user_error(read_split, tmp_path, "rte", "dev") == (
        f"{f}: no column 'sentence2' (found: sentence1, sentence_2, label, idx; "
        "GLUE rte validation needs sentence1, sentence2, label, idx)")
    f = write_parquet(tmp_path / "sst2" / "test-00000-of-00001.parquet", {"sentence": ["a"], "label": [-1]})
    assert user_error(read_split, tmp_path, "sst2", "test") == (
        f"{f}: no column 'idx' (found: sentence, label; GLUE sst2 test needs sentence, idx)")


def test_label_outside_the_classes_in_a_labelled_split(tmp_path):
    f = write_parquet(tmp_path / "rte" / "train-00000-of-00001.parquet",
                      rte_columns(["a", "b", "c"], ["d", "e", "f"], [0, 1, -1], [0, 1, 2]))
    assert user_error(read_split, tmp_path, "rte", "train") == \
        f"{f}: row 2: label -1 is not a class id of GLUE rte (valid: 0, 1)"
    f = write_parquet(tmp_path / "mnli" / "validation_matched-00000-of-00001.parquet",
                      {"premise": ["p"], "hypothesis": ["h"], "label": [3], "idx": [0]})
    assert user_error(read_split, tmp_path, "mnli", "dev_matched") == \
        f"{f}: row 0: label 3 is not a class id of GLUE mnli (valid: 0, 1, 2)"


def test_label_minus_one_in_a_save_to_disk_train_split_is_an_error(tmp_path):
    feats = features(["sentence"], datasets.ClassLabel(names=["negative", "positive"]))
    save(tmp_path, "sst2", feats, {"train": {"sentence": ["ok", "unlabelled"], "label": [1, -1], "idx": [0, 1]}})
    f = tmp_path / "sst2" / "train" / "data-00000-of-00001.arrow"
    assert user_error(read_split, tmp_path, "sst2", "train") == \
        f"{f}: row 1: label -1 is not a class id of GLUE sst2 (valid: 0, 1)"


@pytest.mark.parametrize("score, shown", [(float("nan"), "nan"), (5.5, "5.5"), (-1.0, "-1.0"),
                                           (float("inf"), "inf")])
def test_bad_stsb_score(tmp_path, score, shown):
    f = write_parquet(tmp_path / "stsb" / "train-00000-of-00001.parquet",
                      rte_columns(["a", "b"], ["c", "d"], [1.0, score], [0, 1]), types={"label": pa.float32()})
    assert user_error(read_split, tmp_path, "stsb", "train") == \
        f"{f}: row 1: score {shown} in column 'label' is not a number from 0 to 5"


def test_unreadable_arrow_and_parquet_files(tmp_path):
    save(tmp_path, "mnli", features(["premise", "hypothesis"], datasets.ClassLabel(names=NLI3)),
         {"validation_matched": {"premise": ["p"], "hypothesis": ["h"], "label": [0], "idx": [0]}})
    f = tmp_path / "mnli" / "validation_matched" / "data-00000-of-00001.arrow"
    f.write_bytes(f.read_bytes()[:40])  # truncated
    message = user_error(read_split, tmp_path, "mnli", "dev_matched")
    assert message.startswith(f"{f}: not a readable Arrow IPC stream file (") and "\n" not in message
    f = tmp_path / "cola" / "train-00000-of-00001.parquet"
    f.parent.mkdir()
    f.write_bytes(b"PAR1 not really parquet")
    message = user_error(read_split, tmp_path, "cola", "train")
    assert message.startswith(f"{f}: not a readable Parquet file (") and "\n" not in message


def test_missing_data_files(tmp_path):
    save(tmp_path, "mnli", features(["premise", "hypothesis"], datasets.ClassLabel(names=NLI3)),
         {"train": {"premise": ["p", "q"], "hypothesis": ["h", "i"], "label": [0, 1], "idx": [0, 1]}},
         num_shards={"train": 2})
    (tmp_path / "mnli" / "train" / "data-00001-of-00002.arrow").unlink()
    assert user_error(read_split, tmp_path, "mnli", "train") == \
        f"{tmp_path / 'mnli' / 'train' / 'data-00001-of-00002.arrow'}: data file listed in state.json is missing"
    (tmp_path / "mnli" / "train" / "state.json").write_text("{}")
    assert user_error(read_split, tmp_path, "mnli", "train") == (
        f"{tmp_path / 'mnli' / 'train' / 'state.json'}: not a readable datasets state.json with '_data_files' "
        "(KeyError: '_data_files')")
    write_parquet(tmp_path / "qqp" / "validation-00000-of-00003.parquet",
                  {"question1": ["a"], "question2": ["b"], "label": [0], "idx": [0]})
    write_parquet(tmp_path / "qqp" / "validation-00002-of-00003.parquet",
                  {"question1": ["c"], "question2": ["d"], "label": [1], "idx": [2]})
    assert user_error(read_split, tmp_path, "qqp", "dev") == (
        f"{tmp_path / 'qqp' / 'validation-00001-of-00003.parquet'}: missing parquet shard "
        "(found validation-00000-of-00003.parquet, validation-00002-of-00003.parquet)")


def test_null_text_and_wrong_class_names(tmp_path):
    # class names as in nyu-mll/glue, or as the TSV files write the labels, are both fine
    write_parquet(tmp_path / "cola" / "train-00000-of-00001.parquet", {"sentence": ["a", "b"], "label": [0, 1],
                                                                      "idx": [0, 1]}, class_names=["0", "1"])
    write_parquet(tmp_path / "cola" / "validation-00000-of-00001.parquet", {"sentence": ["c"], "label": [1],
                                                                           "idx": [0]},
                  class_names=["unacceptable", "acceptable"])
    assert [e.label for e in read_split(tmp_path, "cola", "train")] == [0, 1]
    assert [e.label for e in read_split(tmp_path, "cola", "dev")] == [1]
    f = write_parquet(tmp_path / "rte" / "validation-00000-of-00001.parquet",
                      rte_columns(["a", "b"], ["c", None], [0, 1], [0, 1]))
    assert user_error(read_split, tmp_path, "rte", "dev") == f"{f}: row 1: column 'sentence2' is null"
    # ids in another order than GLUE's would silently swap the classes
    f = write_parquet(tmp_path / "qnli" / "train-00000-of-00001.parquet",
                      {"question": ["q"], "sentence": ["s"], "label": [0], "idx": [0]},
                      class_names=["not_entailment", "entailment"])
    assert user_error(read_split, tmp_path, "qnli", "train") == (
        f"{f}: column 'label' has class names not_entailment, entailment; "
        "GLUE qnli needs the ids in the order entailment, not_entailment")


def test_absent_split_lists_both_layouts_when_the_hf_folder_exists(tmp_path):
    assert user_error(read_split, tmp_path, "rte", "dev") == \
        f"{tmp_path}: no GLUE rte dev file (looked for RTE/dev.tsv)"
    write_parquet(tmp_path / "mnli" / "train-00000-of-00001.parquet",
                  {"premise": ["p"], "hypothesis": ["h"], "label": [0], "idx": [0]})
    assert user_error(read_split, tmp_path, "mnli", "dev_mismatched") == (
        f"{tmp_path}: no GLUE mnli dev_mismatched file (looked for MNLI/dev_mismatched.tsv, "
        "mnli/validation_mismatched/state.json, mnli/validation_mismatched-*-of-*.parquet)")
    assert user_error(glue_hf.read_split, tmp_path, "mnli", "dev_mismatched") == (
        f"{tmp_path}: no GLUE mnli dev_mismatched data in the Hugging Face layout (looked for "
        "mnli/validation_mismatched/state.json, mnli/validation_mismatched-*-of-*.parquet)")


# ---- the mapping table ----

def test_hf_configs_cover_every_task_with_the_glue_class_count():
    assert list(glue_hf.HF_CONFIGS) == list(TASKS)
    assert {t: c.name for t, c in glue_hf.HF_CONFIGS.items()} == {t: t for t in TASKS}
    assert {t: len(c.label_names) if c.label_names else None for t, c in glue_hf.HF_CONFIGS.items()} == \
        {t: len(s.labels) if s.labels else None for t, s in TASKS.items()}
    assert [glue_hf.hf_split_name(s) for s in TASKS["mnli"].split_names] == [
        "train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"]
    assert [glue_hf.hf_split_name(s) for s in TASKS["rte"].split_names] == ["train", "validation", "test"]
