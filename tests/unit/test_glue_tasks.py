"""The GLUE task table is data (conf/task/glue/_data/<task>.yaml): what those files give equals,
field for field, the Python table they replaced, captured below as it was."""

from __future__ import annotations

import pytest
import yaml

from nlpx.eval import glue_tasks
from nlpx.eval.glue_hf import HF_CONFIGS, HFConfig
from nlpx.eval.glue_tasks import TASKS, SplitSpec, TaskSpec, get_task

# nlpx.eval.glue_tasks.TASKS as the Python table had it (before the table moved to conf/task/glue/_data)
OLD_TASKS = {
    "cola": TaskSpec(name="cola", folders=("CoLA",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="sentence", text_b=None,
                  label="label", index=None, columns=("source", "label", "original-mark", "sentence")),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="sentence", text_b=None,
                  label="label", index=None, columns=("source", "label", "original-mark", "sentence")),
        SplitSpec(name="test", files=("test.tsv",), text_a="sentence", text_b=None,
                  label=None, index="index", columns=None),
    ), labels=("0", "1"), metrics=("mcc",), in_glue_score=True),
    "sst2": TaskSpec(name="sst2", folders=("SST-2",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="sentence", text_b=None,
                  label="label", index=None, columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="sentence", text_b=None,
                  label="label", index=None, columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="sentence", text_b=None,
                  label=None, index="index", columns=None),
    ), labels=("0", "1"), metrics=("acc",), in_glue_score=True),
    "mrpc": TaskSpec(name="mrpc", folders=("MRPC",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="#1 String", text_b="#2 String",
                  label="Quality", index=None, columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="#1 String", text_b="#2 String",
                  label="Quality", index=None, columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="#1 String", text_b="#2 String",
                  label=None, index="index", columns=None),
    ), labels=("0", "1"), metrics=("f1", "acc"), in_glue_score=True),
    "stsb": TaskSpec(name="stsb", folders=("STS-B",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="sentence1", text_b="sentence2",
                  label="score", index="index", columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="sentence1", text_b="sentence2",
                  label="score", index="index", columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="sentence1", text_b="sentence2",
                  label=None, index="index", columns=None),
    ), labels=None, metrics=("pearson", "spearmanr"), in_glue_score=True),
    "qqp": TaskSpec(name="qqp", folders=("QQP",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="question1", text_b="question2",
                  label="is_duplicate", index="id", columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="question1", text_b="question2",
                  label="is_duplicate", index="id", columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="question1", text_b="question2",
                  label=None, index="id", columns=None),
    ), labels=("0", "1"), metrics=("f1", "acc"), in_glue_score=True),
    "mnli": TaskSpec(name="mnli", folders=("MNLI",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="sentence1", text_b="sentence2",
                  label="gold_label", index="index", columns=None),
        SplitSpec(name="dev_matched", files=("dev_matched.tsv",), text_a="sentence1", text_b="sentence2",
                  label="gold_label", index="index", columns=None),
        SplitSpec(name="dev_mismatched", files=("dev_mismatched.tsv",), text_a="sentence1", text_b="sentence2",
                  label="gold_label", index="index", columns=None),
        SplitSpec(name="test_matched", files=("test_matched.tsv",), text_a="sentence1", text_b="sentence2",
                  label=None, index="index", columns=None),
        SplitSpec(name="test_mismatched", files=("test_mismatched.tsv",), text_a="sentence1", text_b="sentence2",
                  label=None, index="index", columns=None),
    ), labels=("entailment", "neutral", "contradiction"), metrics=("acc",), in_glue_score=True),
    "qnli": TaskSpec(name="qnli", folders=("QNLI",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="question", text_b="sentence",
                  label="label", index="index", columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="question", text_b="sentence",
                  label="label", index="index", columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="question", text_b="sentence",
                  label=None, index="index", columns=None),
    ), labels=("entailment", "not_entailment"), metrics=("acc",), in_glue_score=True),
    "rte": TaskSpec(name="rte", folders=("RTE",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="sentence1", text_b="sentence2",
                  label="label", index="index", columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="sentence1", text_b="sentence2",
                  label="label", index="index", columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="sentence1", text_b="sentence2",
                  label=None, index="index", columns=None),
    ), labels=("entailment", "not_entailment"), metrics=("acc",), in_glue_score=True),
    "wnli": TaskSpec(name="wnli", folders=("WNLI",), splits=(
        SplitSpec(name="train", files=("train.tsv",), text_a="sentence1", text_b="sentence2",
                  label="label", index="index", columns=None),
        SplitSpec(name="dev", files=("dev.tsv",), text_a="sentence1", text_b="sentence2",
                  label="label", index="index", columns=None),
        SplitSpec(name="test", files=("test.tsv",), text_a="sentence1", text_b="sentence2",
                  label=None, index="index", columns=None),
    ), labels=("0", "1"), metrics=("acc",), in_glue_score=True),
    "ax": TaskSpec(name="ax", folders=("diagnostic", "AX"), splits=(
        SplitSpec(name="test", files=("diagnostic.tsv", "AX.tsv"), text_a="sentence1", text_b="sentence2",
                  label=None, index="index", columns=None),
    ), labels=("entailment", "neutral", "contradiction"), metrics=("mcc",), in_glue_score=False),
}

OLD_HF_CONFIGS = {
    "cola": HFConfig(name="cola", text_a="sentence", text_b=None, label_names=("unacceptable", "acceptable")),
    "sst2": HFConfig(name="sst2", text_a="sentence", text_b=None, label_names=("negative", "positive")),
    "mrpc": HFConfig(name="mrpc", text_a="sentence1", text_b="sentence2", label_names=("not_equivalent", "equivalent")),
    "stsb": HFConfig(name="stsb", text_a="sentence1", text_b="sentence2", label_names=None),
    "qqp": HFConfig(name="qqp", text_a="question1", text_b="question2", label_names=("not_duplicate", "duplicate")),
    "mnli": HFConfig(name="mnli", text_a="premise", text_b="hypothesis",
                     label_names=("entailment", "neutral", "contradiction")),
    "qnli": HFConfig(name="qnli", text_a="question", text_b="sentence", label_names=("entailment", "not_entailment")),
    "rte": HFConfig(name="rte", text_a="sentence1", text_b="sentence2", label_names=("entailment", "not_entailment")),
    "wnli": HFConfig(name="wnli", text_a="sentence1", text_b="sentence2", label_names=("not_entailment", "entailment")),
    "ax": HFConfig(name="ax", text_a="premise", text_b="hypothesis",
                     label_names=("entailment", "neutral", "contradiction")),
}

def test_tasks_from_yaml_equal_the_old_table():
    assert list(TASKS) == list(OLD_TASKS)  # the order too: task lists, reports, the submission zip
    for name, old in OLD_TASKS.items():
        assert TASKS[name] == old, name
        assert get_task(name) is TASKS[name]


def test_hf_layout_and_submission_names_from_yaml_equal_the_old_tables():
    assert list(HF_CONFIGS.items()) == list(OLD_HF_CONFIGS.items())


def test_ax_is_data_but_no_task_option():
    from nlpx.config import group_options

    assert (glue_tasks.tasks_folder() / "ax.yaml").is_file()
    assert not any(o.endswith("ax") for o in group_options()["task"])
    fine_tuned = sorted(o.rpartition("/")[2] for o in group_options()["task"] if o.startswith("glue/"))
    assert fine_tuned == sorted(n for n in TASKS if n != "ax")


def test_a_task_file_is_checked_as_it_is_read(tmp_path):
    def write(name, **changes):
        task = {**yaml.safe_load((glue_tasks.tasks_folder() / "sst2.yaml").read_text()), **changes}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(task))

    write("b", order=2)
    write("a", order=3)
    assert list(glue_tasks._read(tmp_path)) == ["b", "a"]
    write("c", order=2)
    with pytest.raises(ValueError, match="two GLUE tasks with one order"):
        glue_tasks._read(tmp_path)
    (tmp_path / "c.yaml").unlink()
    write("d", order=4, labels=[0, 1])
    with pytest.raises(ValueError, match=r"d\.yaml: labels must be strings"):
        glue_tasks._read(tmp_path)
    write("d", order=4, splits={"test": {"files": ["t.tsv"], "text_a": "s", "indx": "index"}})
    with pytest.raises(TypeError, match="indx"):
        glue_tasks._spec("d", glue_tasks._read(tmp_path)["d"])
