"""`nlpx eval qa` and `nlpx train objective=qa` on fixture files (tests/qa_fixture.py), tiny model."""

from __future__ import annotations

import json

import pytest

from nlpx.errors import UserError
from nlpx.eval.qa_metrics import squad_scores
from nlpx.recipes.eval_task import eval_qa
from tests.qa_fixture import write_qa

QUICK = ["logger=none", "task.batch_size=16", "budget.max_epochs=1", "trainer.log_every_n_steps=100",
         "optim.lr=2e-3", "task.max_length=64", "task.doc_stride=32"]


@pytest.fixture(scope="module")
def qa(tmp_path_factory):
    return write_qa(tmp_path_factory.mktemp("qa"))


def files(qa) -> list[str]:
    return ["task=qa/squad"] + [f"task.{s}={qa}/{s}.json" for s in ("train", "dev", "test")]


def test_eval_qa_scores_the_written_predictions_by_the_squad_rules(pretrained_run, qa, tmp_path):
    report = eval_qa([f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "eval.seeds=[0,1]",
                      *files(qa), "trick=[rdrop]", *QUICK])
    run = tmp_path / "qa" / report["run_dir"].rsplit("/", 1)[1]
    assert report["split"] == "dev" and report["main"] == ["exact_match", "f1"]
    dev = json.loads((qa / "dev.json").read_text())["data"][0]["paragraphs"]
    gold = {p["qas"][0]["id"]: [a["text"] for a in p["qas"][0]["answers"]] for p in dev}
    for p in report["per_seed"]:
        predicted = json.loads((run / f"seed{p['seed']}" / "predictions" / "dev" / "squad.dev.predictions.json")
                               .read_text())
        assert list(predicted) == list(gold)  # SQuAD's submission layout: {id: answer}, every question
        assert p["metrics"] == pytest.approx(squad_scores(list(predicted.values()), list(gold.values())))
        test = json.loads((run / f"seed{p['seed']}" / "predictions" / "test" / "squad.test.predictions.json")
                          .read_text())
        assert len(test) == 20 and all(isinstance(a, str) for a in test.values())
    result = json.loads((run / "seed0" / "result.json").read_text())
    assert result["tricks"]["passes_per_step"]["forward"] == 2.0  # R-Drop's pointer divergence ran
    assert (run / "results.md").read_text().startswith(f"# QA squad (qa): {pretrained_run}/hf")


def test_bad_eval_qa_input_is_one_line_and_writes_nothing(pretrained_run, qa, tmp_path):
    base = [f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", *QUICK]
    with pytest.raises(UserError, match="task.dev: a SQuAD-layout JSON file is needed"):
        eval_qa(base + ["task=qa/squad", f"task.train={qa}/train.json"])
    with pytest.raises(UserError, match=r"task.dev=.*test.json: every question of the dev split needs an answer"):
        eval_qa(base + ["task=qa/squad", f"task.train={qa}/train.json", f"task.dev={qa}/test.json"])
    with pytest.raises(UserError, match="objective=qa: task=sst2 is not a question-answering task"):
        eval_qa([o for o in base if not o.startswith(("task.max_length", "task.doc_stride"))] + ["task=sst2"])
    assert not (tmp_path / "qa").exists()


@pytest.mark.slow
def test_a_model_learns_to_answer_the_fixture(pretrained_run, qa, tmp_path):
    """Positive control: the answer is the word after the question's two marker words; guessing one
    passage word scores about 1/45. Measured: dev F1 0.36 after one epoch, 0.49 after ten."""
    from nlpx.config import compose
    from nlpx.recipes.finetune import finetune_run

    overrides = [f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "objective=qa", *files(qa),
                 *[o for o in QUICK if not o.startswith("budget.max_epochs")], "budget.max_epochs=5"]
    assert finetune_run(compose(overrides), overrides)["score"] >= 0.3
