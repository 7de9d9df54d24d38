"""Every option of every config group runs a 2-step `nlpx train` (in-process, for speed)."""

import json
from pathlib import Path

import pytest
import torch

from nlpx.config import compose, group_options
from nlpx.errors import UserError
from nlpx.recipes.train import train
from tests.conftest import REPO, embedding_overrides, finetune_overrides

RUN_FILES = {"config.yaml", "overrides.yaml", "metrics.jsonl", "summary.json"}


def run(overrides):
    return train(compose(overrides), overrides)


def text_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for b in range(3):
        paras = [" ".join(f"book {b} paragraph {p} sentence {s} has some words."
                          for s in range(4)) for p in range(6)]
        (root / f"book{b}.txt").write_text("\n\n".join(paras))
    return root


# the decoder-only model and the causal objective only go together
DECODER_PAIRS = {("model", "gpt2"): ["objective=clm"], ("objective", "clm"): ["model=gpt2"]}
# options that only make sense for fine-tuning (data=glue feeds objective=classify)
FINETUNING = {("objective", "classify"), ("data", "glue"), ("data", "clue"), ("data", "fewclue"),
              ("budget", "finetune")}
# data=clue and data=fewclue train one task of theirs
BENCHMARK_TASK = {("data", "clue"): "clue/afqmc", ("data", "fewclue"): "fewclue/eprstmt"}
# the CLUE and FewCLUE task options differ only in their tables: each composes and reads its data in
# tests/cli/test_eval_clue.py (test_every_benchmark_task_option_reads_its_data), and these train there
# through eval clue / eval fewclue (kept out of this loop for time)
BENCHMARK_TASKS_ELSEWHERE = {("task", o) for o in group_options()["task"] if o.startswith(("clue/", "fewclue/"))}


@pytest.fixture(scope="module")
def clue_dirs(tmp_path_factory):
    """Every CLUE and FewCLUE task in the official layouts (tests/clue_fixture.py)."""
    from tests.clue_fixture import write_clue, write_every_task, write_fewclue

    root = tmp_path_factory.mktemp("benchmarks")
    clue, fewclue = write_clue(root / "clue"), write_fewclue(root / "fewclue")
    write_every_task(clue, fewclue)
    return {"clue": clue, "fewclue": fewclue}
# tagging and QA: objective=tag | qa and the ner/, qa/ tasks, on the fixtures' files
# (tests/ner_fixture.py, tests/qa_fixture.py)
TAGGING = {("objective", "tag")} | {("task", o) for o in group_options()["task"] if o.startswith("ner/")}
QA = {("objective", "qa")} | {("task", o) for o in group_options()["task"] if o.startswith("qa/")}


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory):
    from tests.ner_fixture import write_ner

    return write_ner(tmp_path_factory.mktemp("ner"))


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory):
    from tests.qa_fixture import write_qa

    return write_qa(tmp_path_factory.mktemp("qa"))
# sentence-embedding objectives and their data: each trains the tiny pretrained run
EMBEDDING = {("objective", "simcse"): ["data=synthetic", "data.num_docs=60"],
             ("objective", "esimcse"): ["data=synthetic", "data.num_docs=60"],
             ("objective", "angle"): [], ("objective", "angle_latest"): [],
             ("data", "pairs"): ["objective=angle"], ("data", "triples"): ["objective=simcse"],
             ("budget", "embedding"): ["objective=simcse", "data=synthetic", "data.num_docs=60"]}


def options_needing_hardware():
    return {("trainer", "gpu"), ("trainer", "ddp")}


# options whose runs another file trains with assertions of its own (kept out of this loop for time)
TRAINED_ELSEWHERE = {("objective", "unilm"): "tests/cli/test_train_seq2seq.py",
                     ("model", "xlnet"): "tests/cli/test_train_plm.py", ("objective", "plm"): "tests/cli/test_train_plm.py",
                     ("objective", "simbert"): "tests/cli/test_train_seq2seq.py"}


def test_the_options_trained_elsewhere_are_trained_there():
    for (group, option), where in TRAINED_ELSEWHERE.items():
        assert f'"{group}={option}"' in (REPO / where).read_text(), (group, option, where)


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in group_options().items() for o in opts
                                          if (g, o) not in options_needing_hardware() and (g, o) not in TRAINED_ELSEWHERE
                                          and (g, o) not in BENCHMARK_TASKS_ELSEWHERE])
def test_every_option_trains_two_steps(group, option, small, tmp_path, request):
    extra = [f"{group}={option}"]
    if group == "data" and option == "text":
        extra.append(f"data.paths=[{text_folder(tmp_path / 'books')}]")
    if group == "logger":
        extra = [f"logger={option}"]
    extra += DECODER_PAIRS.get((group, option), [])
    finetuning = (group, option) in FINETUNING or group in ("task", "trick") or (group, option) in TAGGING | QA
    embedding = (group, option) in EMBEDDING
    if embedding:
        glue = request.getfixturevalue("glue_dir")
        extra += EMBEDDING[group, option]
        if "objective=angle" in extra or option.startswith("angle") or option == "pairs":
            extra.append(f"data.glue_dir={glue}")
        if option == "triples":
            (tmp_path / "t.jsonl").write_text("".join(json.dumps({"anchor": f"a {i}", "positive": f"b {i}"}) + "\n"
                                                      for i in range(8)))
            extra.append(f"data.files=[{tmp_path / 't.jsonl'}]")
        summary = run(embedding_overrides(request.getfixturevalue("pretrained_run"), glue, tmp_path / "runs", *extra))
    elif finetuning:  # fine-tunes the session's tiny pretrained run on the fixture GLUE folder
        task = option if group == "task" else BENCHMARK_TASK.get((group, option), "sst2")
        extra = ["objective=classify", *finetune_overrides(request.getfixturevalue("pretrained_run"),
                                                           request.getfixturevalue("glue_dir"), task=task),
                 f"runs_dir={tmp_path / 'runs'}", *(extra if group in ("trick", "budget") else [])]
        benchmark = task.split("/")[0]
        if benchmark in ("clue", "fewclue"):  # their tasks read data=<benchmark>'s folder
            extra = [o for o in extra if not o.startswith("data.glue_dir=")] + [
                f"data={benchmark}", f"data.{benchmark}_dir={request.getfixturevalue('clue_dirs')[benchmark]}"]
        if option == "multilabel/jsonl":
            for split in ("train", "dev"):
                rows = [{"text": f"sentence {i}", "labels": ["a"] if i % 2 else ["a", "b"]} for i in range(20)]
                (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
                extra.append(f"task.{split}={tmp_path / f'{split}.jsonl'}")
        if option == "multilabel/synthetic":
            extra += ["task.train_size=64", "task.dev_size=16"]
        if (group, option) in TAGGING:  # the tagging tasks' files, exported (the encoder and the head)
            task = option if group == "task" else "ner/conll"
            suffix = "json" if task in ("ner/cluener", "ner/span_json") else "txt"
            ner = request.getfixturevalue("ner_dir")
            extra = [o for o in extra if not o.startswith(("objective=", "task=", "data.glue_dir="))] + [
                "objective=tag", f"task={task}", "task.export=true",
                *[f"task.{s}={ner}/{s}.{suffix}" for s in ("train", "dev", "test")]]
        if (group, option) in QA:  # the QA fixture's files in SQuAD's layout, exported
            qa = request.getfixturevalue("qa_dir")
            extra = [o for o in extra if not o.startswith(("objective=", "task=", "data.glue_dir="))] + [
                "objective=qa", f"task={option if group == 'task' else 'qa/squad'}", "task.export=true",
                "task.max_length=64", "task.doc_stride=32", *[f"task.{s}={qa}/{s}.json" for s in ("train", "dev")]]
        summary = run(extra)
    else:
        summary = run(small(*extra))
    run_dir = Path(summary["run_dir"])
    assert summary["steps"] == 2
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert (run_dir / "hf" / "model.safetensors").is_file()
    assert summary["pooling"] == "mean"  # model.pooling, in every run's summary
    if embedding:
        assert summary["sts"]["after"]["step"] == 2 and "val/stsb-dev_spearman" in summary["final"]
        return
    if (group, option) in TAGGING:
        assert {"tagging_head.pt", "tagging_head.json"} <= {p.name for p in (run_dir / "hf").iterdir()}
    if finetuning:
        assert summary["final"]["val/score"] == summary["score"]
        assert (run_dir / "predictions" / "dev").is_dir()
        return
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    if option == "wandb":
        assert list((run_dir / "wandb").glob("offline-run-*")), "W&B offline run files"
    if option == "csv":
        assert (run_dir / "csv" / "metrics.csv").is_file()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="trainer=gpu needs a CUDA GPU")
def test_gpu_trainer_two_steps(small):
    assert run(small("trainer=gpu"))["steps"] == 2


def test_nsp_run_logs_nsp_metrics(small):
    summary = run(small("objective=mlm_nsp"))
    assert {"val/mlm_loss", "val/mlm_acc", "val/nsp_loss", "val/nsp_acc"} <= set(summary["final"])
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    logged = set().union(*rows)
    assert {"train/loss", "train/mlm_loss", "train/nsp_loss", "lr", "train/tokens_per_s"} <= logged


def test_summary_records_provenance(small):
    s = run(small())
    assert s["parameters"] > 0 and s["tokens_seen"] > 0
    assert set(s["versions"]) >= {"torch", "transformers", "lightning", "nlpx"}
    assert "git_commit" in s


def test_static_masking_and_token_budget(small):
    s = run(small("objective.masking.mode=static", "budget.max_steps=null", "budget.max_tokens=1000"))
    assert 1000 <= s["tokens_seen"] < 1000 + 8 * 64  # stops at the first batch past the budget


def test_fine_tuning_refuses_a_trainer_key_it_does_not_read(pretrained_run, glue_dir, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(UserError, match=r"^trainer.val_check_interval=1: not read by fine-tuning"):
        run(["objective=classify", *finetune_overrides(pretrained_run, glue_dir), f"runs_dir={runs}",
             "trainer.val_check_interval=1"])
    assert not runs.exists()


def test_a_task_is_read_by_fine_tuning_only(small):
    with pytest.raises(UserError, match="task=sst2: a task is read by fine-tuning"):
        run(small("task=sst2"))


def test_missing_text_path_is_a_user_error(small, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run(small("data=text", f"data.paths=[{tmp_path / 'nope'}]"))


def test_tokenizer_vocab_must_fit_the_checkpoint(small, tmp_path):
    first = run(small())
    big = run(small("data.vocab_size=900", "experiment=big"))
    with pytest.raises(UserError, match="vocabulary has .* tokens but the checkpoint"):
        run(small(f"model.pretrained={first['run_dir']}", f"data.tokenizer={big['run_dir']}/hf"))


def test_pretrained_run_directory_continues_from_its_weights(small):
    first = run(small())
    second = run(small(f"model.pretrained={first['run_dir']}", "experiment=ft"))
    assert second["parameters"] == first["parameters"]
