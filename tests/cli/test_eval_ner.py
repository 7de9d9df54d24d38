"""`nlpx eval ner` and `nlpx train objective=tag` on fixture files (tests/ner_fixture.py), tiny model."""

from __future__ import annotations

import json
import shutil

import pytest

from nlpx.errors import UserError
from nlpx.eval.ner_metrics import entity_scores
from nlpx.eval.ner_reader import read_conll, read_span_json
from nlpx.recipes.eval_task import eval_ner
from tests.ner_fixture import TYPES, write_ner

QUICK = ["logger=none", "task.batch_size=16", "budget.max_epochs=1", "trainer.log_every_n_steps=100",
         "optim.lr=1e-3"]


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    return write_ner(tmp_path_factory.mktemp("ner"))


def files(ner, kind: str) -> list[str]:
    suffix = "txt" if kind == "conll" else "json"
    return [f"task=ner/{kind}"] + [f"task.{s}={ner}/{s}.{suffix}" for s in ("train", "dev", "test")]


def test_eval_ner_reports_the_labelled_test_split_and_resumes(pretrained_run, ner, tmp_path):
    report = eval_ner([f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "eval.seeds=[0,1]",
                       *files(ner, "conll"), *QUICK])
    run = tmp_path / "ner" / report["run_dir"].rsplit("/", 1)[1]
    assert report["split"] == "test" and report["settings"]["objective"] == "tag (softmax head)"
    gold = [s.spans for s in read_conll(ner / "test.txt")]
    for p in report["per_seed"]:
        # the written predictions (token gold predicted) hold exactly what was scored
        written = run / f"seed{p['seed']}" / "predictions" / "test" / "conll.test.txt"
        assert [s.spans for s in read_conll(written, tag_column=1, scheme="iob2")] == gold
        predicted = [s.spans for s in read_conll(written, scheme="iob2")]
        assert p["metrics"]["f1"] == pytest.approx(entity_scores(gold, predicted)["micro"]["f1"])
        assert set(p["metrics"]) == {"precision", "recall", "f1"} | {f"f1_{t}" for t in TYPES}
    assert report["score"]["mean"] == pytest.approx(sum(p["metrics"]["f1"] for p in report["per_seed"]) / 2)
    md = (run / "results.md").read_text()
    assert md.startswith(f"# NER conll (tag (softmax head)): {pretrained_run}/hf") and "| conll | test |" in md
    # an interrupted evaluation: seed 1 did not finish; resume runs it alone, to the same numbers
    first = json.loads((run / "seed0" / "result.json").read_text())
    shutil.rmtree(run / "seed1")
    again = eval_ner([f"resume={run}"])
    assert json.loads((run / "seed0" / "result.json").read_text()) == first
    assert [p["metrics"] for p in again["per_seed"]] == [p["metrics"] for p in report["per_seed"]]


def test_task_bucket_window_sets_the_training_batches(pretrained_run, ner, tmp_path, monkeypatch):
    """task.bucket_window reaches the training sampler (1: plain shuffled batches)."""
    from nlpx.data import buckets

    seen = []
    real = buckets.bucketed_batches

    def spy(lengths, batch_size, **kw):
        seen.append((kw["shuffle"], kw["window"]))
        return real(lengths, batch_size, **kw)

    monkeypatch.setattr(buckets, "bucketed_batches", spy)
    eval_ner([f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "eval.seeds=[0]",
              *files(ner, "conll"), *QUICK, "task.bucket_window=1"])
    assert {w for shuffled, w in seen if shuffled} == {1} and any(not shuffled for shuffled, _ in seen)


def test_eval_ner_on_span_json_with_global_pointer_and_rdrop(pretrained_run, ner, tmp_path):
    report = eval_ner([f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "eval.seeds=[0]",
                       *files(ner, "span_json"), "objective.head=global_pointer", "trick=[rdrop]",
                       "trick.rdrop.reduction=token", *QUICK])
    assert report["split"] == "dev" and report["settings"]["tricks"] == ["rdrop"]
    # the report says which R-Drop ran and how the batches were drawn
    assert report["settings"]["trick_settings"] == {"rdrop": {"alpha": 1.0, "reduction": "token"}}
    assert report["settings"]["bucket_window"] == 50
    run = tmp_path / "ner" / report["run_dir"].rsplit("/", 1)[1]
    assert "tricks [rdrop (alpha 1.0, reduction token)]" in (run / "results.md").read_text()
    seed = tmp_path / "ner" / report["run_dir"].rsplit("/", 1)[1] / "seed0"
    result = json.loads((seed / "result.json").read_text())
    assert result["tricks"]["passes_per_step"]["forward"] == 2.0  # R-Drop's second pass ran
    test = [json.loads(line) for line in (seed / "predictions" / "test" / "span_json.test.json").read_text().splitlines()]
    assert [r["id"] for r in test] == list(range(30)) and all(set(r) == {"id", "text", "label"} for r in test)
    dev = read_span_json(seed / "predictions" / "dev" / "span_json.dev.json")
    gold = [s.spans for s in read_span_json(ner / "dev.json")]
    assert report["metrics"]["f1"]["mean"] == pytest.approx(
        entity_scores(gold, [s.spans for s in dev])["micro"]["f1"])


@pytest.mark.parametrize("extra, message", [
    (["objective.head=softmax", "objective.head_size=32"],
     "objective.head_size=32: not read by nlpx eval ner: a setting of another objective.head than softmax"),
    (["objective.head=bilstm"], "objective.head=bilstm: unknown (valid: softmax, crf, global_pointer)"),
    (["objective=classify"], "objective=classify: `nlpx eval ner` sets objective itself"),
    (["trick=[asl]"], "trick=asl: cannot apply to this run: a token-level objective (objective=tag, qa) has a loss of its own"),
])
def test_bad_eval_ner_input_is_one_line_and_writes_nothing(pretrained_run, ner, tmp_path, extra, message):
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        eval_ner([f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", *files(ner, "conll"), *extra])
    assert not (tmp_path / "ner").exists()


def test_a_tagging_task_needs_the_tagging_objective(pretrained_run, ner, tmp_path):
    from nlpx.config import compose
    from nlpx.recipes.finetune import finetune_run

    overrides = [f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "objective=classify",
                 *files(ner, "conll"), "logger=none"]
    with pytest.raises(UserError, match="task=conll is a tagging task: fine-tune it with objective=tag"):
        finetune_run(compose(overrides), overrides)
    overrides = [f"model.pretrained={pretrained_run}/hf", "objective=tag", "task=sst2", "logger=none"]
    with pytest.raises(UserError, match="objective=tag: task=sst2 is not a tagging task"):
        finetune_run(compose(overrides), overrides)
    assert not (tmp_path / "default").exists()


@pytest.mark.slow
def test_every_head_learns_entities_a_model_can_learn(pretrained_run, ner, tmp_path):
    """Positive control: on the fixture's entities (a word decides the type; "the" before it belongs
    to the entity) each head reaches dev F1 >= 0.9 in 10 epochs (measured: softmax 0.95, CRF 0.98,
    GlobalPointer 0.98)."""
    from nlpx.config import compose
    from nlpx.recipes.finetune import finetune_run

    for head in ("softmax", "crf", "global_pointer"):
        overrides = [f"model.pretrained={pretrained_run}/hf", f"runs_dir={tmp_path}", "objective=tag",
                     f"objective.head={head}", *files(ner, "conll"), "logger=none", "task.batch_size=16",
                     "budget.max_epochs=10", "optim.lr=2e-3"]
        result = finetune_run(compose(overrides), overrides)
        assert result["score"] >= 0.9, (head, result["score"])
