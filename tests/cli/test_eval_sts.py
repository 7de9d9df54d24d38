"""`nlpx eval sts` on the fixture GLUE folder and scored-pairs files, with the tiny nlpx BERT run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from scipy import stats

from nlpx.errors import UserError
from nlpx.recipes.eval_sts import eval_sts
from tests.conftest import cli


def write_pairs(folder: Path) -> tuple[Path, Path]:
    jsonl = folder / "extra.jsonl"
    jsonl.write_text("".join(json.dumps({"s1": a, "s2": b, "gold": s}) + "\n" for a, b, s in [
        ("the cat sat", "a cat sat", 4.0), ("dog ran far", "the river", 0.5), ("small house", "big house", 2.5),
        ("light tree", "light tree", 5.0)]))
    tsv = folder / "more.tsv"
    tsv.write_text("id\ts1\ts2\tgold\n" + "".join(f"{i}\t{a}\t{b}\t{s}\n" for i, (a, b, s) in enumerate([
        ("a mat", "the mat", 4.5), ("stone", "river near the house", 1.0), ("dark", "light", 0.2)])))
    return jsonl, tsv


def test_eval_sts_end_to_end(pretrained_run, glue_dir, tmp_path, cache_dir):
    jsonl, tsv = write_pairs(tmp_path)
    runs = tmp_path / "runs"
    out = cli("eval", "sts", f"model.pretrained={pretrained_run}", f"data.glue_dir={glue_dir}", f"runs_dir={runs}",
              "logger=none", "model.pooling=cls", f"eval.files=[{jsonl},{tsv}]", "eval.columns.sentence1=s1",
              "eval.columns.sentence2=s2", "eval.columns.score=gold", "eval.batch_size=5", cache_dir=cache_dir)
    assert out.returncode == 0, out.stderr
    assert "Spearman" in out.stdout and "examples/s" in out.stdout and "stsb-dev" in out.stdout
    (run,) = (runs / "sts").iterdir()
    assert {"config.yaml", "overrides.yaml", "results.json", "results.md", "summary.json", "predictions"} <= \
        {p.name for p in run.iterdir()}
    report = json.loads((run / "results.json").read_text())
    assert [r["name"] for r in report["datasets"]] == ["stsb-dev", "extra", "more"]
    assert [r["pairs"] for r in report["datasets"]] == [24, 4, 3]
    # an MLM-only export has no trained pooler: cls reads the first token, and says so
    s = report["settings"]
    assert (report["pooling"], s["pooling"], s["pooling_used"]) == ("cls", "cls", "cls_before_pooler")
    assert (s["batch_size"], s["similarity"], s["split"]) == (5, "cosine", "dev")
    assert s["max_length"] == 512 and s["max_length_from"] == "tokenizer/model position limit"
    # the numbers are scipy's on the written predictions (x100)
    for r in report["datasets"]:
        lines = (run / "predictions" / f"{r['name']}.tsv").read_text().splitlines()
        assert lines[0] == "sentence1\tsentence2\tscore\tcosine" and len(lines) == r["pairs"] + 1
        gold, cos = zip(*[(float(x.split("\t")[2]), float(x.split("\t")[3])) for x in lines[1:]])
        assert r["spearman"] == pytest.approx(100 * stats.spearmanr(gold, cos).statistic, rel=1e-12)
        assert r["pearson"] == pytest.approx(100 * stats.pearsonr(gold, cos).statistic, rel=1e-12)
        assert r["examples_per_s"] > 0 and r["sentences_encoded"] <= 2 * r["pairs"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["pooling"] == "cls" and summary["sts"]["pooling"] == "cls"
    assert summary["sts"]["score"] == report["datasets"][0]["spearman"]
    assert set(summary["sts"]["datasets"]) == {"stsb-dev", "extra", "more"} and "versions" in summary
    assert "pooling: cls" in (run / "config.yaml").read_text()
    # the pretraining run's summary records the evaluation, pooling included
    pre = json.loads((pretrained_run / "summary.json").read_text())
    assert pre["sts"]["run_dir"] == str(run) and pre["sts"]["pooling"] == "cls"
    assert pre["sts_history"][-1] == {"run_dir": str(run), "pooling": "cls", "score": report["datasets"][0]["spearman"]}


@pytest.mark.parametrize("case", ["pooling", "file"])
def test_bad_input_is_one_line_exit_2_and_no_run_directory(pretrained_run, glue_dir, tmp_path, cache_dir, case):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "sentence2": "b"}\n')
    extra = ["model.pooling=avg"] if case == "pooling" else [f"eval.files=[{bad}]"]
    runs = tmp_path / "runs"
    out = cli("eval", "sts", f"model.pretrained={pretrained_run}", f"data.glue_dir={glue_dir}", f"runs_dir={runs}",
              "logger=none", *extra, cache_dir=cache_dir)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    expected = ("nlpx: error: model.pooling=avg: unknown pooling (valid: cls, cls_before_pooler, mean, max)"
                if case == "pooling" else f"nlpx: error: {bad}:2: no key 'score'")
    assert lines[0].startswith(expected), lines[0]
    assert not runs.exists()


def test_split_none_with_files_and_test_split_only_when_labelled(pretrained_run, glue_dir, tmp_path):
    jsonl, _ = write_pairs(tmp_path)
    runs = tmp_path / "runs"
    base = [f"model.pretrained={pretrained_run}", f"runs_dir={runs}", "logger=none"]
    cols = ["eval.columns.sentence1=s1", "eval.columns.sentence2=s2", "eval.columns.score=gold"]
    report = eval_sts([*base, "eval.split=none", f"eval.files=[{jsonl}]", *cols, "model.pooling=max",
                       "data.glue_dir=/nonexistent"])
    assert [r["name"] for r in report["datasets"]] == ["extra"] and report["settings"]["pooling_used"] == "max"

    with pytest.raises(UserError, match="eval.split=none and no eval.files: no scored pairs to read"):
        eval_sts([*base, "eval.split=none"])
    # GLUE's STS-B test file has no scores
    with pytest.raises(UserError, match="has no gold scores"):
        eval_sts([*base, f"data.glue_dir={glue_dir}", "eval.split=test"])
    # a labelled test file (the STS benchmark's own) is read
    labelled = tmp_path / "glue"
    (labelled / "STS-B").mkdir(parents=True)
    shutil.copyfile(glue_dir / "STS-B" / "dev.tsv", labelled / "STS-B" / "test.tsv")
    report = eval_sts([*base, f"data.glue_dir={labelled}", "eval.split=test"])
    assert [(r["name"], r["pairs"]) for r in report["datasets"]] == [("stsb-test", 24)]
    assert len(list((runs / "sts").iterdir())) == 2  # the two successful runs only
