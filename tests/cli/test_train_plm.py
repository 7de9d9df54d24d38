"""`nlpx train model=xlnet objective=plm` end to end: the run, its hf/ export (XLNetLMHeadModel with
a tokenizer in XLNet's layout, padding on the left), an exact resume, `nlpx eval glue` and
fine-tuning with the tricks, and the settings and commands that do not apply (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.recipes.train import train
from tests.conftest import cli, embedding_overrides, finetune_overrides, killed_and_resumed

STEPS = 6
PLM = ["model=xlnet", "objective=plm"]


def run(overrides):
    return train(compose(overrides), overrides)


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_plm_trains_exports_and_resumes_exactly(small, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer, XLNetLMHeadModel

    args = [*PLM, "trainer.checkpoint_every_n_steps=3"]
    reference = run(small(*args, steps=STEPS))
    assert reference["steps"] == STEPS and {"val/plm_loss", "val/plm_acc"} <= set(reference["final"])
    assert not any(k.startswith("val/common") for k in reference["final"])  # plm is not a masked LM

    hf = Path(reference["run_dir"]) / "hf"
    model, info = AutoModelForCausalLM.from_pretrained(str(hf), output_loading_info=True)
    assert isinstance(model, XLNetLMHeadModel) and not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.mem_len is None and model.config.n_layer == 2
    tok = AutoTokenizer.from_pretrained(str(hf))
    assert tok.padding_side == "left"
    pair = tok("a b", "c")
    tokens = tok.convert_ids_to_tokens(pair["input_ids"])
    assert tokens[-1] == tok.cls_token and tokens.count(tok.sep_token) == 2 and tokens[0] != tok.cls_token
    assert pair["token_type_ids"][-1] == 2 and pair["token_type_ids"][0] == 0 and 1 in pair["token_type_ids"]

    interrupted = small(*args, steps=STEPS)
    interrupted[interrupted.index(f"runs_dir={tmp_path / 'runs'}")] = f"runs_dir={tmp_path / 'b'}"
    run_dir, resumed, from_step = killed_and_resumed(interrupted, tmp_path / "b", monkeypatch)
    assert from_step == 3
    assert resumed["steps"] == STEPS
    for key, value in reference["final"].items():
        assert resumed["final"][key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    a, b = weights(Path(reference["run_dir"])), weights(run_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_an_xlnet_run_fine_tunes_and_refuses_what_it_is_not(small, glue_dir, tmp_path, cache_dir):
    from nlpx.recipes.eval_benchmark import eval_glue

    pretrained = Path(run(small(*PLM))["run_dir"])
    report = eval_glue([f"model.pretrained={pretrained}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path / 'glue'}",
                        "eval.tasks=[rte]", "eval.seeds=[0]", "logger=none", "task.batch_size=8", "budget.max_epochs=1"])
    assert report["tasks"][0]["status"] == "ok"
    tricks = ["llrd", "multi_dropout", "lora", "asl", "rdrop", "awp"]
    overrides = ["objective=classify", *finetune_overrides(pretrained, glue_dir, task="rte"),
                 f"runs_dir={tmp_path / 'ft'}", f"trick=[{','.join(tricks)}]", "trick.awp.adv_start=0"]
    summary = run(overrides)
    assert summary["steps"] == 2 and summary["tricks"]["applied"] == tricks
    assert summary["tricks"]["passes_per_step"] == {"forward": 3, "backward": 2}
    assert 0 < summary["tricks"]["lora"]["trainable_fraction"] < 0.5
    with pytest.raises(UserError, match="XLNet has no layer-normalised word embeddings"):
        run([*overrides[:-2], "trick=[sift]"])

    out = cli("eval", "mlm", f"model.pretrained={pretrained}", f"runs_dir={tmp_path / 'mlm'}", "logger=none",
              cache_dir=cache_dir)
    assert out.returncode == 2 and "masked-LM evaluation is not defined for it" in out.stderr
    out = cli("eval", "sts", f"model.pretrained={pretrained}", f"data.glue_dir={glue_dir}", "model.pooling=cls",
              f"runs_dir={tmp_path / 'sts'}", "logger=none", cache_dir=cache_dir)
    assert out.returncode == 2 and "XLNet's summary token [CLS] is its last" in out.stderr
    assert not (tmp_path / "mlm").exists() and not (tmp_path / "sts").exists()
    with pytest.raises(UserError, match="does not train XLNet"):
        run(embedding_overrides(pretrained, glue_dir, tmp_path / "emb", "objective=simcse", "data=synthetic"))
    assert not (tmp_path / "emb").exists()

    # `nlpx eval sts` encodes it with its segment ids ([CLS] alone in segment 2): hidden states as
    # the model computes them for the tokenizer's full encoding, mean-pooled
    from transformers import AutoModel, AutoTokenizer

    from nlpx.embeddings.encoder import encode, load_encoder

    encoder = load_encoder(pretrained / "hf")
    vectors = encode(encoder, ["a b c", "d"], pooling="mean", batch_size=2, max_length=32)
    model, tok = AutoModel.from_pretrained(str(pretrained / "hf")).eval(), AutoTokenizer.from_pretrained(str(pretrained / "hf"))
    with torch.no_grad():
        alone = [model(**tok(t, return_tensors="pt")).last_hidden_state[0].mean(0) for t in ["a b c", "d"]]
    torch.testing.assert_close(vectors, torch.stack(alone), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("extra,message", [
    (["objective.plm_k=1"], r"objective.plm_k=1: must be an integer >= 2"),
    (["objective.plm_k=null"], r"objective.plm_k=null: must be an integer >= 2"),
    (["objective.max_span_length=null"], r"objective.max_span_length=null: must be an integer >= 1"),
    (["objective.max_span_length=0"], r"objective.max_span_length=0: must be an integer >= 1"),
    (["objective.mode=sometimes"], r"objective.mode=sometimes: unknown \(valid: dynamic, static\)"),
    (["objective.masking.ratio=0.3"], r"objective.masking.ratio: unknown config key"),  # nothing is masked
    (["objective.format=segment_pair_nsp"], r"objective=plm reads full_sentences or doc_sentences"),
    (["data.common_eval.max_examples=8"], r"not read by nlpx train: objective=plm is not a masked LM"),
    (["model=bert", "objective=plm"], r"objective=plm needs XLNet's two-stream attention: use model=xlnet"),
    (["model=xlnet", "objective=mlm"], r"objective=mlm: model=xlnet pretrains with its permutation LM"),
    (["model.max_position_embeddings=1024"], r"not read by model=xlnet \(relative positions"),
    (["model.attn_implementation=sdpa"], r"transformers' XLNet has eager attention only"),
])
def test_what_plm_does_not_read_is_an_error_before_any_output(extra, message, small, tmp_path):
    with pytest.raises(UserError, match=message):
        run(small(*PLM, *extra))
    assert not (tmp_path / "runs").exists()

