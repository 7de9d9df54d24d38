"""FLOPs per token are counted over a real training step and equal the dense-transformer formula
6·N + 12·L·T·d + 6·(d·V + d²)·s exactly; counting leaves the run untouched; MFU = achieved / peak."""

import json

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from nlpx.run.flops import count_step_flops, summary


def tiny_bert(V=1000, d=128, L=2, f=512):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=V, hidden_size=d, num_hidden_layers=L, num_attention_heads=2, intermediate_size=f,
                     attn_implementation="sdpa")
    return BertForMaskedLM(cfg)


def mlm_step(model, B=4, T=64, selected=10):
    ids = torch.randint(5, model.config.vocab_size, (B, T), generator=torch.Generator().manual_seed(1))
    sel = torch.zeros(B, T, dtype=torch.bool)
    sel[:, :selected] = True

    def step():
        h = model.bert(input_ids=ids, attention_mask=torch.ones(B, T, dtype=torch.long)).last_hidden_state
        return model.cls(h[sel]).logsumexp(-1).mean()  # the head only at the selected positions

    return step


@pytest.mark.parametrize("T,selected", [(64, 10), (128, 19)])
def test_counted_flops_equal_the_formula(T, selected):
    V, d, L, f, B = 1000, 128, 2, 512, 4
    model = tiny_bert(V, d, L, f)
    per_position = count_step_flops(mlm_step(model, B, T, selected), model.parameters()) / (B * T)
    N = L * (4 * d * d + 2 * d * f)
    assert per_position == 6 * N + 12 * L * T * d + 6 * (d * V + d * d) * (selected / T)


def test_counting_leaves_rng_and_gradients_as_they_were():
    model = tiny_bert()
    model.train()  # dropout draws random numbers
    step = mlm_step(model)
    step().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    state = torch.random.get_rng_state()
    count_step_flops(step, model.parameters())
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))


def test_summary_mfu_is_achieved_over_peak():
    s = summary(2.0e6, tokens=1000, seconds=4.0, peak=1.0e9)
    assert s["achieved_per_s"] == 5.0e8 and s["mfu"] == 0.5
    assert summary(2.0e6, tokens=1000, seconds=4.0, peak=None)["mfu"] is None


def test_a_run_records_flops_and_mfu_from_peak_flops(small, tmp_path):
    from nlpx.config import compose
    from nlpx.recipes.train import train

    overrides = small("trainer.peak_flops=1e12")
    out = train(compose(overrides), overrides)
    f = out["flops"]
    assert f["per_token"] > 0 and f["peak_per_s"] == 1e12
    # summary.json rounds train_seconds to the millisecond (a 2-step run takes ~0.1 s)
    assert f["achieved_per_s"] == pytest.approx(f["per_token"] * out["tokens_seen"] / out["train_seconds"], rel=1e-2)
    assert f["mfu"] == pytest.approx(f["achieved_per_s"] / 1e12, rel=1e-12)
    rows = [json.loads(x) for x in (tmp_path / "runs").rglob("metrics.jsonl").__next__().read_text().splitlines()]
    assert any("train/flops_per_s" in r and "train/mfu" in r for r in rows)


def test_checkpoints_by_time_keep_the_newest_k(small, tmp_path):
    from nlpx.config import compose
    from nlpx.recipes.train import train

    # by time only (every few milliseconds): a checkpoint after every step, three kept
    overrides = small("trainer.checkpoint_every_n_steps=1000", "trainer.checkpoint_every_minutes=0.00001",
                      "trainer.keep_checkpoints=3", steps=6)
    out = train(compose(overrides), overrides)
    ckpts = tmp_path / "runs" / "default" / out["run_dir"].rsplit("/", 1)[1] / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step-*.ckpt")) == ["step-00000004.ckpt", "step-00000005.ckpt",
                                                                  "step-00000006.ckpt"]
    steps = torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"]
    assert steps == 6
