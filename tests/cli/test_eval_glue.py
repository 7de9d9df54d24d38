"""`nlpx eval glue` and `nlpx train objective=classify` on the fixture GLUE folder, tiny model."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.eval.glue_metrics import task_metrics
from nlpx.eval.glue_reader import read_split
from nlpx.recipes.eval_benchmark import eval_glue
from nlpx.eval.glue_submission import SUBMISSION_FILES
from nlpx.recipes.train import train
from tests.conftest import cli, finetune_overrides
from tests.glue_fixture import write_glue

QUICK = ["logger=none", "task.batch_size=8", "budget.max_epochs=1", "trainer.log_every_n_steps=100"]


def args(pretrained, glue, runs, *extra):
    return [f"model.pretrained={pretrained}", f"data.glue_dir={glue}", f"runs_dir={runs}", *QUICK, *extra]


def scores(report: dict) -> list[dict]:
    """The task rows without the training speed (a timing, different on every run)."""
    return [{k: v for k, v in row.items() if k != "train_examples_per_s"} for row in report["tasks"]]


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_eval_glue_end_to_end_writes_every_output(pretrained_run, glue_dir, tmp_path, cache_dir):
    out = cli("eval", "glue", *args(pretrained_run, glue_dir, tmp_path), "eval.seeds=[0,1]", cache_dir=cache_dir)
    assert out.returncode == 0, out.stderr
    assert "GLUE score (all 9 tasks)" in out.stdout and "Protocol: dev split; seeds 0, 1" in out.stdout
    (run,) = (tmp_path / "glue").iterdir()
    assert {"config.yaml", "overrides.yaml", "results.json", "results.csv", "results.md", "summary.json",
            "submission.zip"} <= {p.name for p in run.iterdir()}
    report = json.loads((run / "results.json").read_text())
    assert json.loads((run / "summary.json").read_text())["pooling"] == report["pooling"] == "mean"

    # submission: every server file, the header, one row per test example, label strings
    with zipfile.ZipFile(run / "submission.zip") as zf:
        assert zf.namelist() == list(SUBMISSION_FILES.values())
        for (task, split), name in SUBMISSION_FILES.items():
            rows = zf.read(name).decode().splitlines()
            assert rows[0] == "index\tprediction" and len(rows) - 1 == len(read_split(glue_dir, task, split))
        assert {r.split("\t")[1] for r in zf.read("MNLI-m.tsv").decode().splitlines()[1:]} <= \
            {"entailment", "neutral", "contradiction"}
        assert {r.split("\t")[1] for r in zf.read("RTE.tsv").decode().splitlines()[1:]} <= {"entailment", "not_entailment"}

    # dev predictions per task and seed; the metrics in results.json are those of these files
    for row in report["tasks"]:
        task = row["task"]
        assert row["status"] == "ok" and row["seeds"] == [0, 1]
        for seed_result in row["per_seed"]:
            pred_dir = run / task / f"seed{seed_result['seed']}" / "predictions" / "dev"
            files = sorted(pred_dir.glob("*.tsv"))
            assert [f.name for f in files] == (["mnli.dev_matched.tsv", "mnli.dev_mismatched.tsv"]
                                               if task == "mnli" else [f"{task}.dev.tsv"])
            if task in ("cola", "sst2", "mrpc", "qnli"):
                (f,) = files
                table = read_tsv(f)[1:]
                to_id = ("entailment", "not_entailment").index if task == "qnli" else int
                recomputed = task_metrics(task, np.array([to_id(r[1]) for r in table]),
                                          np.array([to_id(r[2]) for r in table]))
                assert recomputed == seed_result["metrics"]

    # the GLUE score is the mean of the nine task scores' means
    means = [r["score"]["mean"] for r in report["tasks"]]
    assert report["glue"]["covered"] == ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
    assert report["glue"]["score"]["mean"] == pytest.approx(sum(means) / 9)
    mnli = next(r for r in report["tasks"] if r["task"] == "mnli")
    assert set(mnli["metrics"]) == {"acc_m", "acc_mm"}

    rows = list(csv.DictReader(io.StringIO((run / "results.csv").read_text())))
    assert [r["task"] for r in rows] == [*report["glue"]["covered"], "glue"]
    md = (run / "results.md").read_text()
    assert "| GLUE score (all 9 tasks) |" in md and "Protocol: dev split; seeds 0, 1" in md
    assert "Task score = mean of the task's metrics" in md

    # the pretraining run records the evaluation, so ablations can find it
    summary = json.loads((pretrained_run / "summary.json").read_text())
    assert summary["glue"]["run_dir"] == str(run) and summary["glue"]["score"]["mean"] == report["glue"]["score"]["mean"]
    assert summary["steps"] == 2  # the pretraining summary itself is kept


def test_a_second_seed_changes_the_std_column(pretrained_run, glue_dir, tmp_path):
    one = eval_glue(args(pretrained_run, glue_dir, tmp_path / "a", "eval.tasks=[stsb,sst2]", "eval.seeds=[0]"))
    two = eval_glue(args(pretrained_run, glue_dir, tmp_path / "b", "eval.tasks=[stsb,sst2]", "eval.seeds=[0,3]"))
    s1 = {r["task"]: r for r in one["tasks"]}
    s2 = {r["task"]: r for r in two["tasks"]}
    assert s1["stsb"]["score"]["std"] == 0.0 and s2["stsb"]["score"]["std"] > 0.0
    # seed 0 is the same fine-tuning in both: bit-identical numbers
    assert s2["stsb"]["per_seed"][0] == s1["stsb"]["per_seed"][0]
    stds = [r["score_std"] for r in csv.DictReader(io.StringIO(
        (Path(one["run_dir"]) / "results.csv").read_text())) if r["task"] == "stsb"]
    assert stds == ["0.0000"]


def test_best_and_last_epoch(pretrained_run, glue_dir, tmp_path):
    common = ["eval.tasks=[stsb]", "eval.seeds=[0]", "budget.max_epochs=3", "eval.predict_test=false"]
    best = eval_glue(args(pretrained_run, glue_dir, tmp_path / "best", *common))
    last = eval_glue(args(pretrained_run, glue_dir, tmp_path / "last", *common, "task.select=last"))
    b, l_ = best["tasks"][0]["per_seed"][0], last["tasks"][0]["per_seed"][0]
    result = json.loads((Path(best["run_dir"]) / "stsb" / "seed0" / "result.json").read_text())
    scores = [e["score"] for e in result["evaluations"]]
    assert [e["epoch"] for e in result["evaluations"]] == [1.0, 2.0, 3.0]
    assert b["score"] == max(scores) and b["epoch"] == result["evaluations"][scores.index(max(scores))]["epoch"]
    assert l_["epoch"] == 3.0 and l_["score"] == scores[-1]  # same seed, same run up to the choice
    assert best["submission"] is None and "best epoch" in (Path(best["run_dir"]) / "results.md").read_text()
    assert "(last epoch)" in (Path(last["run_dir"]) / "results.md").read_text()


def test_from_mnli_starts_rte_from_the_mnli_weights(pretrained_run, glue_dir, tmp_path):
    report = eval_glue(args(pretrained_run, glue_dir, tmp_path, "eval.tasks=[rte,mnli]", "eval.seeds=[0]",
                            "eval.from_mnli=true"))
    run = Path(report["run_dir"])
    rte = json.loads((run / "rte" / "seed0" / "result.json").read_text())
    assert rte["model"] == str(run / "mnli" / "seed0" / "hf") and rte["new_head"] is True
    assert (run / "mnli" / "seed0" / "hf" / "model.safetensors").is_file()
    assert not (run / "rte" / "seed0" / "hf").exists()  # only MNLI's weights are kept
    assert [r["task"] for r in report["tasks"]] == ["rte", "mnli"]  # the table keeps the asked order
    assert "AX.tsv" in report["submission"]["files"]  # AX is predicted by the MNLI model
    assert "MNLI-fine-tuned weights" in (run / "results.md").read_text()


def test_resume_runs_only_the_unfinished_units(pretrained_run, glue_dir, tmp_path):
    first = eval_glue(args(pretrained_run, glue_dir, tmp_path, "eval.tasks=[sst2]", "eval.seeds=[0,1]"))
    run = Path(first["run_dir"])
    kept = run / "sst2" / "seed0" / "result.json"
    stamp = kept.stat().st_mtime_ns
    (run / "sst2" / "seed1" / "result.json").unlink()
    (run / "results.json").unlink()
    again = eval_glue([f"resume={run}"])
    assert kept.stat().st_mtime_ns == stamp
    assert scores(again) == scores(first)  # seed 1 re-run gives the same numbers
    assert len(OmegaConf.load(run / "overrides.yaml")) == 1  # the command line of the first run only
    with pytest.raises(UserError, match="takes no other overrides"):
        eval_glue([f"resume={run}", "eval.seeds=[5]"])


def test_train_split_absent_is_reported_and_missing_tasks_say_no_data(pretrained_run, tmp_path):
    glue = write_glue(tmp_path / "glue", tasks=("sst2", "qnli"))
    (glue / "QNLI" / "train.tsv").unlink()  # like ../shared/data/glue: QNLI dev/test only
    report = eval_glue(args(pretrained_run, glue, tmp_path / "runs", "eval.seeds=[0]"))
    status = {r["task"]: r["status"] for r in report["tasks"]}
    assert status == {"cola": "no data", "sst2": "ok", "mrpc": "no data", "stsb": "no data", "qqp": "no data",
                      "mnli": "no data", "qnli": "no train data", "rte": "no data", "wnli": "no data"}
    assert report["glue"]["covered"] == ["sst2"]
    md = (Path(report["run_dir"]) / "results.md").read_text()
    assert "| QNLI | dev present, no train split |" in md and "| GLUE score (SST-2) |" in md


def test_malformed_row_exits_2_naming_file_and_line_before_writing(pretrained_run, tmp_path, cache_dir):
    glue = write_glue(tmp_path / "glue", tasks=("sst2", "rte"))
    path = glue / "RTE" / "dev.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tmaybe"
    path.write_text("\n".join(lines) + "\n")
    out = cli("eval", "glue", *args(pretrained_run, glue, tmp_path / "runs"), cache_dir=cache_dir)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"nlpx: error: {path}:4: unknown label 'maybe' in column 'label' "
                                  "(valid: entailment, not_entailment)")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("extra,message", [
    (["task=sst2"], "task=sst2: `nlpx eval glue` sets task itself; use eval.tasks=[cola,sst2,...]"),
    (["eval.tasks=[ax]"], "eval.tasks: ax is not fine-tuned on its own"),
    (["eval.tasks=[sst3]"], "unknown GLUE task 'sst3'"),
    (["eval.seeds=[1,1]"], "eval.seeds=[1, 1]: give one or more distinct seeds"),
    (["data.glue_dir=/no/such/dir"], "data.glue_dir=/no/such/dir: no such folder"),
    (["task.lrr=1"], "task.lrr: unknown config key"),
])
def test_eval_glue_user_errors(extra, message, pretrained_run, glue_dir, tmp_path):
    with pytest.raises(UserError) as e:
        eval_glue(args(pretrained_run, glue_dir, tmp_path, *extra))
    assert str(e.value).startswith(message)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_classify_needs_a_pretrained_model_and_a_task(glue_dir, tmp_path):
    with pytest.raises(UserError, match="objective=classify fine-tunes a pretrained model"):
        train(compose(["objective=classify", "task=sst2", f"data.glue_dir={glue_dir}"]), [])
    with pytest.raises(UserError, match=r"objective=classify needs a task: task=NAME \(valid: cola, mnli"):
        train(compose(["objective=classify", f"data.glue_dir={glue_dir}"]), [])


def tiny_checkpoint(kind: str, tokenizer_dir: Path, out: Path) -> Path:
    """A random 2-layer model of the given family with the pretrained run's tokenizer."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    sizes = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    if kind == "albert":
        sizes["embedding_size"] = 16
    model = AutoModel.from_config(AutoConfig.for_model(kind, **sizes))
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.mark.parametrize("kind", ["roberta", "electra", "albert", "deberta-v2"])
def test_other_families_fine_tune_with_their_own_head(kind, pretrained_run, glue_dir, tmp_path):
    ckpt = tiny_checkpoint(kind, pretrained_run / "hf", tmp_path / kind)
    overrides = ["objective=classify", *finetune_overrides(ckpt, glue_dir, task="mrpc"), f"runs_dir={tmp_path}"]
    summary = train(compose(overrides), overrides)
    assert summary["steps"] == 2
    config = json.loads((Path(summary["run_dir"]) / "hf" / "config.json").read_text())
    assert config["model_type"] == kind and config["architectures"][0].endswith("ForSequenceClassification")
    assert config["id2label"] == {"0": "0", "1": "1"}


def test_unsupported_model_type_is_a_user_error(pretrained_run, glue_dir, tmp_path):
    ckpt = tmp_path / "t5"
    shutil.copytree(pretrained_run / "hf", ckpt)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "t5"}))
    overrides = ["objective=classify", *finetune_overrides(ckpt, glue_dir)]
    with pytest.raises(UserError, match="model type 't5' is not supported for fine-tuning"):
        train(compose(overrides), overrides)


def test_hf_parquet_layout_gives_the_same_results_as_the_tsv_files(pretrained_run, glue_dir, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    hf = tmp_path / "hf_glue"
    (hf / "sst2").mkdir(parents=True)
    for split, hf_split in (("train", "train"), ("dev", "validation"), ("test", "test")):
        rows = read_split(glue_dir, "sst2", split)
        pq.write_table(pa.table({"sentence": [e.text_a for e in rows],
                                 "label": [-1 if e.label is None else e.label for e in rows],
                                 "idx": list(range(len(rows)))}),
                       hf / "sst2" / f"{hf_split}-00000-of-00001.parquet")
    common = ["eval.tasks=[sst2]", "eval.seeds=[0]"]
    from_hf = eval_glue(args(pretrained_run, hf, tmp_path / "a", *common))
    from_tsv = eval_glue(args(pretrained_run, glue_dir, tmp_path / "b", *common))
    assert scores(from_hf) == scores(from_tsv)
    assert (Path(from_hf["run_dir"]) / "submission" / "SST-2.tsv").read_text() == \
        (Path(from_tsv["run_dir"]) / "submission" / "SST-2.tsv").read_text()


def test_results_go_to_the_wandb_run(pretrained_run, glue_dir, tmp_path):
    overrides = [o for o in args(pretrained_run, glue_dir, tmp_path, "eval.tasks=[wnli]", "eval.seeds=[0]")
                 if o != "logger=none"]
    report = eval_glue([*overrides, "logger=wandb"])
    (offline,) = (Path(report["run_dir"]) / "wandb").glob("offline-run-*")
    assert list(offline.glob("*.wandb"))


def test_recipe_search_reports_the_best_median_configuration(pretrained_run, glue_dir, tmp_path):
    report = eval_glue(args(pretrained_run, glue_dir, tmp_path, "eval.tasks=[sst2,stsb]", "eval.seeds=[0,1]",
                            "eval.predict_test=false", "eval.search={optim.lr:[1e-3,3e-2]}"))
    run = Path(report["run_dir"])
    assert report["settings"]["search"] == {"space": {"optim.lr": [1e-3, 3e-2]}, "from": "eval.search",
                                            "fine_tunings": 8}
    assert report["settings"]["fine_tunings"] == 8  # 2 tasks x 2 configurations x 2 seeds
    for row in report["tasks"]:
        per_config = {name: [json.loads((run / row["task"] / name / f"seed{s}" / "result.json").read_text())
                             for s in (0, 1)] for name in ("optim.lr=0.001", "optim.lr=0.03")}
        medians = {name: float(np.median([r["score"] for r in rs])) for name, rs in per_config.items()}
        assert [c["median"] for c in row["search"]["configs"]] == pytest.approx(list(medians.values()))
        winner = max(medians, key=medians.get)
        assert row["search"]["winner"] == winner
        # the row is the winner's: its per-seed scores, and its learning rate in the settings
        assert [s["score"] for s in row["per_seed"]] == [r["score"] for r in per_config[winner]]
        assert report["settings"]["hyperparameters"][row["task"]]["lr"] == float(winner.split("=")[1])
        assert report["settings"]["hyperparameters"][row["task"]]["bucket_window"] == 50
    md = (run / "results.md").read_text()
    assert "| Config |" in md and "Recipe search (eval.search): optim.lr in [0.001, 0.03]" in md
    assert "8 fine-tunings in all" in md


def test_every_task_row_carries_its_majority_score_and_the_mark(pretrained_run, glue_dir, tmp_path):
    from nlpx.eval.glue_metrics import majority_score
    from nlpx.eval.glue_report import table_rows

    report = eval_glue(args(pretrained_run, glue_dir, tmp_path, "eval.tasks=[mrpc,stsb]", "eval.seeds=[0]",
                            "eval.predict_test=false"))
    rows = {r["task"]: r for r in report["tasks"]}
    train = [int(e.label) for e in read_split(glue_dir, "mrpc", "train")]
    dev = [int(e.label) for e in read_split(glue_dir, "mrpc", "dev")]
    assert rows["mrpc"]["majority"] == majority_score("mrpc", train, {"mrpc": dev})
    assert rows["stsb"]["majority"]["score"] == 0.0
    assert report["glue"]["majority"]["score"] == pytest.approx(rows["mrpc"]["majority"]["score"] / 2)
    _, table = table_rows(report)
    for line in table:
        r = rows.get(line[0].lower().replace("-", ""))
        if r:
            assert line[2].endswith(" †") == (r["score"]["mean"] <= r["majority"]["score"]), line
            assert line[4] == f"{100 * r['majority']['score']:.1f}"
