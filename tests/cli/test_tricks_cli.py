"""Fine-tuning tricks from the command line: LoRA's exports, tricks that cannot apply (exit 2,
no output), ASL left out of STS-B inside `nlpx eval glue`, and ASL's adaptive gamma on the
skewed multi-label synthetic task, logged over training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nlpx.config import compose
from nlpx.recipes.eval_benchmark import eval_glue
from nlpx.recipes.train import train
from tests.conftest import cli, finetune_overrides


def run(overrides):
    return train(compose(overrides), overrides)


def dev_predictions(path: Path) -> list[int]:
    return [int(line.split("\t")[1]) for line in path.read_text().splitlines()[1:]]


def test_lora_exports_a_merged_plain_model_and_the_adapter(pretrained_run, glue_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nlpx.eval.glue_reader import read_split

    summary = run(["objective=classify", *finetune_overrides(pretrained_run, glue_dir, task="sst2", steps=3),
                   f"runs_dir={tmp_path}", "trick=[lora,multi_dropout]", "optim.lr=0.01"])
    run_dir = Path(summary["run_dir"])
    lora = summary["tricks"]["lora"]
    assert lora["trainable_fraction"] == pytest.approx(lora["trainable"] / lora["parameters"]) and lora["trainable"] > 0
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(m.get("trick/lora_trainable_fraction") == pytest.approx(lora["trainable_fraction"]) for m in metrics)
    assert summary["steps"] == 3 and any(m.get("lr") == pytest.approx(0.01) for m in metrics)  # LoRA's own LR

    # hf/: a plain BERT classifier (adapters merged, the family's own head back) predicting
    # what the LoRA model predicted on dev
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "hf").eval()
    assert type(model).__name__ == "BertForSequenceClassification"
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "hf")
    examples = read_split(glue_dir, "sst2", "dev")
    with torch.no_grad():
        logits = model(**tokenizer([e.text_a for e in examples], padding=True, return_tensors="pt")).logits
    assert logits.argmax(-1).tolist() == dev_predictions(run_dir / "predictions" / "dev" / "sst2.dev.tsv")

    # adapter/: the adapter alone, head and pooler included, on the pretrained base
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert {"classifier", "bert.pooler"} <= set(config["modules_to_save"])
    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(Path(pretrained_run) / "hf", num_labels=2)
    adapted = PeftModel.from_pretrained(base, run_dir / "adapter").eval()
    with torch.no_grad():
        again = adapted(**tokenizer([e.text_a for e in examples], padding=True, return_tensors="pt")).logits
    # the merged weights equal the adapter applied to the base (the head is the saved one, not
    # base's fresh random head)
    assert torch.allclose(again, logits, atol=1e-5)


def test_tricks_that_cannot_apply_exit_2_before_any_output(pretrained_run, glue_dir, tmp_path, cache_dir, small):
    cases = [
        (["objective=classify", *finetune_overrides(pretrained_run, glue_dir, task="stsb"), "trick=[asl]"],
         "trick=asl: cannot apply to this run: a regression task"),
        (["objective=mlm", "trick=[awp]"], "trick=awp: tricks apply to fine-tuning (objective=classify or nlpx "
                                           "eval glue), not objective=mlm"),
        (["objective=classify", *finetune_overrides(pretrained_run, glue_dir), "trick=[dropconnect]"],
         "trick=dropconnect: unknown option"),
    ]
    gpt2 = Path(run(small("model=gpt2", "objective=clm"))["run_dir"])
    cases.append((["objective=classify", *finetune_overrides(gpt2, glue_dir), "trick=[sift]"],
                  "trick=sift: cannot apply to this run: GPT-2 has no layer-normalised word embeddings"))
    for i, (overrides, message) in enumerate(cases):
        runs = tmp_path / f"runs{i}"
        out = cli("train", *overrides, f"runs_dir={runs}", "logger=none", cache_dir=cache_dir)
        assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not runs.exists()


def test_eval_glue_leaves_asl_out_of_stsb_and_says_so(pretrained_run, glue_dir, tmp_path):
    report = eval_glue([f"model.pretrained={pretrained_run}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path}",
                        "eval.tasks=[stsb,sst2]", "eval.seeds=[0]", "budget.max_steps=2", "budget.max_epochs=1",
                        "task.batch_size=8", "eval.predict_test=false", "logger=none", "trick=[asl]"])
    rows = {r["task"]: r for r in report["tasks"]}
    assert rows["sst2"]["tricks"] == ["asl"] and rows["stsb"]["tricks"] == []
    assert list(rows["sst2"]["trick_settings"]) == ["asl"] and rows["stsb"]["trick_settings"] == {}
    assert rows["sst2"]["trick_settings"]["asl"]["gamma_neg"] == 4  # the keys it read, as given
    stsb = json.loads(next(Path(report["run_dir"]).glob("stsb/seed0/result.json")).read_text())
    assert stsb["tricks"]["skipped"] == {"asl": "a regression task (one score, no labels) has nothing for ASL to weigh"}
    assert rows["sst2"]["train_examples_per_s"]["n"] == 1 and rows["sst2"]["train_examples_per_s"]["mean"] > 0


def test_adaptive_gamma_on_the_skewed_multilabel_task(pretrained_run, tmp_path):
    summary = run(["objective=classify", f"model.pretrained={pretrained_run}", "task=multilabel/synthetic",
                   "task.train_size=96", "task.dev_size=32", "budget.max_epochs=1", "task.batch_size=16",
                   f"runs_dir={tmp_path}", "logger=none", "trainer.log_every_n_steps=1", "trick=[asl]",
                   "trick.asl.adaptive.step_size=0.5"])
    assert set(summary["final"]) == {"val/micro_f1", "val/macro_f1", "val/map", "val/score"}
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "trick/asl_gamma_neg" in r]
    assert len(steps) == 6  # 96 / 16 batches, one update each
    gammas = [4.0] + [r["trick/asl_gamma_neg"] for r in steps]
    for before, after, r in zip(gammas, gammas[1:], steps):  # the update rule, from the logged gap
        assert after == pytest.approx(max(0.0, before + 0.5 * (r["trick/asl_gap"] - 0.1)), abs=1e-5)
    assert len(set(np.round(gammas, 6))) > 1  # it moved
    preds = [json.loads(line) for line in
             (Path(summary["run_dir"]) / "predictions" / "dev" / "synthetic.dev.jsonl").read_text().splitlines()]
    assert len(preds) == 32 and len(preds[0]["probabilities"]) == 8
