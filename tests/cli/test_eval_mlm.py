"""`nlpx eval mlm`: the loss at each length is the cross-entropy of the checkpoint on the common
set of that length, computed here by hand; the entropies are those of the attention weights; the
options are checked before anything is written; ablate reads the stage's metrics."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nlpx.errors import UserError
from nlpx.eval.mlm_lengths import evaluate_length
from nlpx.recipes.eval_mlm import eval_mlm
from tests.conftest import cli


def test_entropy_of_uniform_and_one_hot_attention_is_exact():
    """Two rows of 4 and 2 real tokens; layer 1 attends uniformly to the row's real keys
    (entropy log 4 and log 2), layer 2 puts all weight on one key (entropy 0)."""
    lengths = np.array([4, 2])
    arrays = {"input_ids": np.ones((2, 4), dtype=np.int64), "labels": np.full((2, 4), -100, dtype=np.int64),
              "original_ids": np.ones((2, 4), dtype=np.int64), "replaced_ids": np.ones((2, 4), dtype=np.int64),
              "lengths": lengths}
    arrays["labels"][0, 1], arrays["labels"][1, 0] = 3, 2

    class Fake:
        def __call__(self, input_ids, attention_mask, token_type_ids, output_attentions):
            real = attention_mask.float()
            uniform = (real / real.sum(-1, keepdim=True))[:, None, None, :].expand(-1, 2, 4, -1)
            one_hot = torch.zeros(2, 2, 4, 4)
            one_hot[..., 0] = 1.0
            logits = torch.zeros(2, 4, 5)
            logits[..., 3] = 1.0  # predicts token 3 everywhere
            return SimpleNamespace(logits=logits, attentions=(uniform, one_hot))

    out = evaluate_length(Fake(), arrays, batch_size=2, device="cpu", entropy=True)
    queries = 4 + 2
    assert out["attention_entropy"][0] == pytest.approx((4 * math.log(4) + 2 * math.log(2)) / queries, abs=1e-6)
    assert out["attention_entropy"][1] == 0.0
    assert out["uniform_entropy"] == pytest.approx((4 * math.log(4) + 2 * math.log(2)) / queries, abs=1e-6)  # float32 logs
    p3 = math.e / (math.e + 4)  # softmax of [0, 0, 0, 1, 0] at token 3
    assert out["mlm_loss"] == pytest.approx((-math.log(p3) - math.log((1 - p3) / 4)) / 2, rel=1e-6)
    assert (out["masked"], out["tokens"], out["mlm_acc"]) == (2, 6, 0.5)


def test_loss_per_length_is_the_checkpoint_s_cross_entropy_on_the_common_set(pretrained_run, tmp_path, cache_dir):
    from transformers import AutoModelForMaskedLM

    from omegaconf import OmegaConf

    from nlpx.data.common_eval import batches, common_eval_set
    from nlpx.data.prepare import prepare_corpus

    out = cli("eval", "mlm", f"model.pretrained={pretrained_run}", "eval.lengths=[32,64,128]", "eval.tokens=320",
              f"runs_dir={tmp_path}", "logger=none", cache_dir=cache_dir)
    assert out.returncode == 0, out.stderr
    assert "MLM loss and attention entropy by sequence length" in out.stdout and "H layer 2" in out.stdout
    (run_dir,) = (tmp_path / "mlm").iterdir()
    report = json.loads((run_dir / "results.json").read_text())
    rows = {r["length"]: r for r in report["lengths"]}
    assert [r["examples"] for r in report["lengths"]] == [10, 5, 3]  # ceil(320 / L)
    assert report["training_length"] == 64 and report["positions"] == "learned"
    assert [r["beyond_training_length"] for r in report["lengths"]] == [False, False, True]
    prepared = prepare_corpus(OmegaConf.load(pretrained_run / "config.yaml"))  # the run's own corpus
    model = AutoModelForMaskedLM.from_pretrained(str(pretrained_run / "hf")).eval()
    for length in (32, 128):
        arrays = common_eval_set(prepared, length, math.ceil(320 / length))
        total, count = 0.0, 0
        with torch.no_grad():
            for b in batches(arrays, 3, "cpu"):
                logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                sel = b["labels"] != -100
                total += float(torch.nn.functional.cross_entropy(logits[sel], b["labels"][sel], reduction="sum"))
                count += int(sel.sum())
        assert rows[length]["masked"] == count and rows[length]["mlm_loss"] == pytest.approx(total / count, rel=1e-5)
        assert len(rows[length]["attention_entropy"]) == 2
        assert all(0 < h <= rows[length]["uniform_entropy"] + 1e-6 for h in rows[length]["attention_entropy"])
    assert {"results.json", "results.md", "summary.json", "config.yaml"} <= {p.name for p in run_dir.iterdir()}
    assert "* past the training length" in (run_dir / "results.md").read_text()
    recorded = json.loads((pretrained_run / "summary.json").read_text())["mlm_lengths"]
    assert recorded["mlm_loss"]["128"] == rows[128]["mlm_loss"]


@pytest.mark.parametrize("extra,message", [
    (["eval.lengths=[64,1024]"], r"1024 tokens exceed the model's position limit \(512\)"),
    (["optim.lr=1e-3"], "trains nothing; it reads no optim settings"),
    (["eval.lengths=[]"], "give the sequence lengths"),
    (["eval.tokens=0"], "eval.tokens=0: give an integer >= 1"),
])
def test_bad_options_are_one_line_before_anything_is_written(pretrained_run, tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        eval_mlm([f"model.pretrained={pretrained_run}", f"runs_dir={tmp_path / 'runs'}", "logger=none", *extra])
    assert not (tmp_path / "runs").exists()


def test_ablate_reads_an_eval_mlm_stage(tmp_path):
    from nlpx.ablate.report import cell_values

    run_dir = tmp_path / "mlm"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"lengths": [
        {"length": 128, "mlm_loss": 5.0, "mlm_acc": 0.2, "attention_entropy": [3.0, 4.0]},
        {"length": 512, "mlm_loss": 6.5, "mlm_acc": 0.1}]}))
    plan = {"stages": [{"name": "mlm", "command": "eval mlm"}]}
    values = cell_values(plan, {"run_dirs": {"mlm": str(run_dir)}})
    assert values["mlm/L128/loss"] == 5.0 and values["mlm/L128/acc"] == 0.2 and values["mlm/L128/entropy"] == 3.5
    assert values["mlm/L512/loss"] == 6.5 and "mlm/L512/entropy" not in values
