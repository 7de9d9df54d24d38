"""`nlpx eval clue` and `nlpx eval fewclue` on fixture folders in the official layouts, tiny model."""

from __future__ import annotations

import json
import zipfile

import pytest
from sklearn.metrics import accuracy_score

from nlpx.errors import UserError
from nlpx.eval.clue_tasks import get_task, read_split
from nlpx.recipes.eval_benchmark import eval_clue, eval_fewclue
from tests.clue_fixture import write_clue, write_fewclue
from tests.conftest import cli

QUICK = ["logger=none", "task.batch_size=8", "budget.max_epochs=1", "trainer.log_every_n_steps=100"]


def jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_eval_clue_scores_dev_and_packs_the_clue_submission(pretrained_run, clue, tmp_path):
    report = eval_clue([f"model.pretrained={pretrained_run}/hf", f"data.clue_dir={clue}", f"runs_dir={tmp_path}",
                        "eval.seeds=[0,1]", *QUICK])
    rows = {r["task"]: r for r in report["tasks"]}
    assert {t: r["status"] for t, r in rows.items()} == {
        "afqmc": "ok", "tnews": "no data", "iflytek": "no data", "cmnli": "no data",
        "ocnli": "no train data", "cluewsc2020": "ok", "csl": "no data"}
    run = tmp_path / "clue" / report["run_dir"].rsplit("/", 1)[1]
    for task in ("afqmc", "cluewsc2020"):
        gold = [e.label for e in read_split(get_task("clue", task), clue, "dev").examples]
        labels = get_task("clue", task).labels
        for seed, per_seed in zip((0, 1), rows[task]["per_seed"]):
            dev = jsonl(run / task / f"seed{seed}" / "predictions" / "dev" / f"{task}.dev.jsonl")
            assert [labels.index(r["label"]) for r in dev] == gold
            assert per_seed["metrics"] == {"acc": accuracy_score(gold, [labels.index(r["prediction"]) for r in dev])}
    # CLUE score: the mean of the two tasks' scores
    assert report["clue"]["covered"] == ["afqmc", "cluewsc2020"]
    assert report["clue"]["score"]["mean"] == pytest.approx(
        (rows["afqmc"]["score"]["mean"] + rows["cluewsc2020"]["score"]["mean"]) / 2)
    # the submission: CLUE's file names, one {"id", "label"} a test row, in file order
    with zipfile.ZipFile(run / "submission.zip") as zf:
        assert zf.namelist() == ["afqmc_predict.json", "cluewsc11_predict.json"]
        for task, name in (("afqmc", "afqmc_predict.json"), ("cluewsc2020", "cluewsc11_predict.json")):
            lines = [json.loads(line) for line in zf.read(name).decode().splitlines()]
            test = read_split(get_task("clue", task), clue, "test").examples
            assert [r["id"] for r in lines] == [e.index for e in test]
            assert {r["label"] for r in lines} <= set(get_task("clue", task).labels)
    md = (run / "results.md").read_text()
    assert md.startswith(f"# CLUE dev results: {pretrained_run}/hf") and "CLUE score (AFQMC, CLUEWSC2020)" in md
    assert "dev present, no train split" in md  # OCNLI: CLUE publishes no OCNLI train in this folder


def test_eval_fewclue_reports_test_public_with_the_epoch_kept_on_dev(pretrained_run, fewclue, tmp_path):
    report = eval_fewclue([f"model.pretrained={pretrained_run}/hf", f"data.fewclue_dir={fewclue}",
                           f"runs_dir={tmp_path}", "eval.seeds=[0]", "eval.tasks=[eprstmt,ocnli,csldcp,chid]", *QUICK])
    run = tmp_path / "fewclue" / report["run_dir"].rsplit("/", 1)[1]
    rows = {r["task"]: r for r in report["tasks"]}
    for task in ("eprstmt", "ocnli", "csldcp"):
        spec = get_task("fewclue", task).resolved(fewclue)
        gold = [e.label for e in read_split(spec, fewclue, "test").examples]
        predicted = jsonl(run / task / "seed0" / "predictions" / "test" / f"{task}_predict.json")
        assert len(predicted) == len(gold)  # OCNLI: the "-" row of test_public left out
        acc = accuracy_score(gold, [spec.labels.index(r["label"]) for r in predicted])
        assert rows[task]["metrics"]["acc"]["mean"] == acc and rows[task]["score"]["mean"] == acc
        result = json.loads((run / task / "seed0" / "result.json").read_text())
        assert rows[task]["dev_score"]["mean"] == result["score"]  # the kept epoch's dev accuracy
        majority = rows[task]["majority"]
        train = [e.label for e in read_split(spec, fewclue, "train").examples]
        common = max(range(len(spec.labels)), key=lambda k: (train.count(k), -k))
        assert majority["score"] == accuracy_score(gold, [common] * len(gold))
    # ChID: multiple choice, one score per candidate; the label is the answer's position
    gold = [e.label for e in read_split(get_task("fewclue", "chid"), fewclue, "test").examples]
    predicted = [r["label"] for r in jsonl(run / "chid" / "seed0" / "predictions" / "test" / "chid_predict.json")]
    assert set(predicted) <= {0, 1, 2, 3} and rows["chid"]["metrics"]["acc"]["mean"] == accuracy_score(gold, predicted)
    assert rows["chid"]["majority"] is None
    assert report["settings"]["split"] == "test_public (epoch kept on dev_few_all)"
    assert "FewCLUE test_public results" in (run / "results.md").read_text()


def test_fewclue_without_submission_files_still_reports_test_public(pretrained_run, fewclue, tmp_path):
    report = eval_fewclue([f"model.pretrained={pretrained_run}/hf", f"data.fewclue_dir={fewclue}",
                           f"runs_dir={tmp_path}", "eval.seeds=[0]", "eval.tasks=[eprstmt]", "eval.predict_test=false",
                           *QUICK])
    run = tmp_path / "fewclue" / report["run_dir"].rsplit("/", 1)[1]
    result = json.loads((run / "eprstmt" / "seed0" / "result.json").read_text())
    row = report["tasks"][0]
    assert result["test_predictions"] == {} and not (run / "eprstmt" / "seed0" / "predictions" / "test").exists()
    assert row["score"]["mean"] == result["test_metrics"]["test"]["acc"] and row["dev_score"]["mean"] == result["score"]
    assert report["submission"] is None and not (run / "submission.zip").exists()


@pytest.mark.parametrize("extra, message", [
    (["data=glue"], "data=glue: `nlpx eval clue` sets data itself"),
    (["eval.tasks=[sst2]"], "unknown CLUE task 'sst2'"),
    (["task=clue/afqmc"], "`nlpx eval clue` sets task itself; use eval.tasks="),
    (["data.clue_dir=/nonexistent"], "data.clue_dir=/nonexistent: no such folder"),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(pretrained_run, clue, tmp_path, cache_dir, extra,
                                                                message):
    out = cli("eval", "clue", f"model.pretrained={pretrained_run}/hf", f"data.clue_dir={clue}",
              f"runs_dir={tmp_path}", "logger=none", *extra, cache_dir=cache_dir)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "clue").exists()


def test_a_clue_task_fine_tunes_alone(pretrained_run, clue, tmp_path):
    from nlpx.config import compose
    from nlpx.recipes.train import train

    overrides = [f"model.pretrained={pretrained_run}/hf", "objective=classify", "task=clue/cluewsc2020", "data=clue",
                 f"data.clue_dir={clue}", f"runs_dir={tmp_path}", *QUICK, "budget.max_steps=2"]
    summary = train(compose(overrides), overrides)
    assert summary["task"] == "cluewsc2020" and set(summary["metrics"]) == {"acc"}
    assert summary["test_predictions"] == {"cluewsc11_predict.json": summary["test_predictions"]["cluewsc11_predict.json"]}


@pytest.fixture(scope="module")
def nsp_run(tmp_path_factory, cache_dir):
    """A tiny mlm_nsp run (2 steps): a checkpoint with both heads."""
    from nlpx.config import compose
    from nlpx.recipes.train import train
    from tests.conftest import SMALL

    runs = tmp_path_factory.mktemp("nsp")
    overrides = [*SMALL, "objective=mlm_nsp", f"data.cache_dir={cache_dir}", f"runs_dir={runs}", "budget.max_steps=2",
                 "trainer.val_check_interval=2", "trainer.limit_val_batches=1"]
    return train(compose(overrides), overrides)["run_dir"]


@pytest.mark.parametrize("mode", ["zeroshot_nsp", "zeroshot_mlm"])
def test_zero_shot_scores_the_reported_split_without_training(nsp_run, fewclue, glue_dir, tmp_path, mode):
    from nlpx.recipes.eval_benchmark import eval_glue

    report = eval_fewclue([f"model.pretrained={nsp_run}", f"data.fewclue_dir={fewclue}", f"runs_dir={tmp_path}",
                           "logger=none", f"eval.mode={mode}", "eval.tasks=[eprstmt,cluewsc,chid]"])
    run = tmp_path / "fewclue" / report["run_dir"].rsplit("/", 1)[1]
    rows = {r["task"]: r for r in report["tasks"]}
    for task in ("eprstmt", "cluewsc", "chid"):
        spec = get_task("fewclue", task)
        lines = jsonl(run / task / "test.predictions.jsonl")
        gold = [e.label for e in read_split(spec, fewclue, "test").examples]
        name = (lambda k: k) if task == "chid" else spec.labels.index
        assert [name(r["label"]) for r in lines] == gold
        assert rows[task]["score"] == accuracy_score(gold, [name(r["prediction"]) for r in lines])
        assert rows[task]["examples"] == len(gold)
        # ChID has 4 candidates a row in the fixture; the others 2 labels
        assert rows[task]["chance"] == (0.25 if task == "chid" else 0.5)
        assert rows[task]["majority"] == max(gold.count(k) for k in set(gold)) / len(gold)
    eprstmt = jsonl(run / "eprstmt" / "test.predictions.jsonl")
    assert all(r["prediction"] == ["Negative", "Positive"][max(range(2), key=lambda k: r["scores"][k])]
               for r in eprstmt)
    assert not list(run.rglob("hf")) and not list(run.rglob("*.ckpt"))  # nothing trained
    md = (run / "results.md").read_text()
    assert f"FewCLUE test_public zero-shot ({mode})" in md and "这次买的东西很" in md
    with pytest.raises(UserError, match="a zero-shot evaluation trains nothing and has nothing to resume"):
        eval_fewclue([f"resume={run}"])
    glue = eval_glue([f"model.pretrained={nsp_run}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path}",
                      "logger=none", f"eval.mode={mode}"])
    assert [r["task"] for r in glue["tasks"] if r["status"] == "ok"] == ["sst2", "mrpc"]  # the tasks with prompts
    assert set(next(r for r in glue["tasks"] if r["task"] == "mrpc")["metrics"]) == {"f1", "acc"}


@pytest.mark.parametrize("extra, message", [
    (["eval.mode=zeroshot_nsp", "eval.seeds=[0,1]"], "eval.seeds=[0,1]: not read by nlpx eval fewclue "
                                                     "eval.mode=zeroshot_nsp: "),
    (["eval.mode=zeroshot_mlm", "optim.lr=1e-4"], "optim.lr=1e-4: not read by"),
    (["eval.max_length=64"], "eval.max_length=64: not read by nlpx eval fewclue: fine-tuning cuts inputs"),
    (["eval.mode=oneshot"], "eval.mode=oneshot: unknown (valid: finetune, zeroshot_nsp, zeroshot_mlm)"),
    (["eval.mode=zeroshot_nsp", "PRETRAINED"], "zeroshot_nsp needs an NSP head"),
])
def test_zero_shot_bad_input_is_exit_2_with_nothing_written(nsp_run, pretrained_run, fewclue, tmp_path, cache_dir,
                                                            extra, message):
    model = f"{pretrained_run}/hf" if "PRETRAINED" in extra else nsp_run  # the session's run: MLM only
    out = cli("eval", "fewclue", f"model.pretrained={model}", f"data.fewclue_dir={fewclue}", f"runs_dir={tmp_path}",
              "logger=none", *[e for e in extra if e != "PRETRAINED"], cache_dir=cache_dir)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "fewclue").exists()


def test_every_benchmark_task_option_reads_its_data(pretrained_run, tmp_path):
    """Every task=clue/* and task=fewclue/* option composes and reads its fixture data (the
    fine-tuning itself is one code path, trained above through eval clue and eval fewclue)."""
    from nlpx.config import compose, group_options
    from nlpx.data.tokenizer import load_tokenizer
    from nlpx.recipes.finetune import load_task_data
    from tests.clue_fixture import write_every_task

    dirs = {"clue": write_clue(tmp_path / "clue"), "fewclue": write_fewclue(tmp_path / "fewclue")}
    write_every_task(dirs["clue"], dirs["fewclue"])
    tokenizer = load_tokenizer(f"{pretrained_run}/hf", key="model.pretrained")
    options = [o for o in group_options()["task"] if o.startswith(("clue/", "fewclue/"))]
    assert len(options) == 16
    for option in options:
        bench, name = option.split("/")
        cfg = compose(["objective=classify", f"task={option}", f"data={bench}", f"data.{bench}_dir={dirs[bench]}",
                       f"model.pretrained={pretrained_run}"])
        data = load_task_data(cfg, tokenizer)
        assert data.spec.name == name and data.train.examples and data.dev[0].examples and data.test, option
        assert int(cfg.budget.max_epochs) == (10 if bench == "fewclue" or name == "cluewsc2020" else 3), option
