"""Every sensible model x objective pair trains 2 steps, exports a plain HF model (plus nlpx's
own heads where it adds some) and fine-tunes with objective=classify; nonsense pairs exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nlpx.config import compose, group_options
from nlpx.errors import UserError
from nlpx.recipes.train import train
from tests.conftest import finetune_overrides

ENCODERS = [m for m in group_options()["model"] if m not in ("gpt2", "xlnet")]
MASKED = ["mlm", "mlm_nsp", "sop", "span", "rtd"]
# xlnet x plm trains in tests/cli/test_train_plm.py
VALID = [(m, o) for m in ENCODERS for o in MASKED] + [("gpt2", "clm")]
INVALID = ([(m, "clm") for m in ENCODERS] + [("gpt2", o) for o in MASKED] + [(m, "plm") for m in [*ENCODERS, "gpt2"]]
           + [("xlnet", o) for o in [*MASKED, "clm"]])


def run(overrides):
    return train(compose(overrides), overrides)


def test_the_matrix_covers_every_option():
    assert set(group_options()["model"]) == {*ENCODERS, "gpt2", "xlnet"} and len(ENCODERS) == 9
    assert set(MASKED) | {"clm", "plm"} <= set(group_options()["objective"])


@pytest.mark.parametrize("model,objective", VALID)
def test_valid_pair_trains_exports_and_reloads(model, objective, small):
    from transformers import AutoModel

    summary = run(small(f"model={model}", f"objective={objective}"))
    assert summary["steps"] == 2
    hf = Path(summary["run_dir"]) / "hf"
    prefix = {"mlm": "mlm", "mlm_nsp": "nsp", "sop": "sop", "span": "sbo", "clm": "clm", "rtd": "disc/rtd"}[objective]
    assert f"val/{prefix}_loss" in summary["final"]
    reloaded = AutoModel.from_pretrained(str(hf))
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    assert torch.isfinite(reloaded(input_ids=ids).last_hidden_state).all()
    heads = hf / "nlpx_heads.json"
    own_pair_head = objective in ("mlm_nsp", "sop") and model not in ("bert", "albert", "bigbird")
    own_rtd_head = objective == "rtd" and model != "electra"  # ElectraForPreTraining has HF's
    assert heads.is_file() == (objective == "span" or own_pair_head or own_rtd_head)
    if heads.is_file():
        names = set(json.loads(heads.read_text())["tensors"])
        head = {"span": "sbo_head.", "rtd": "rtd_head."}.get(objective, "own_pair_head.")
        assert any(n.startswith(head) for n in names)
    if objective == "rtd":  # the generator, next to the discriminator, as a masked LM
        from transformers import AutoModelForMaskedLM

        generator = AutoModelForMaskedLM.from_pretrained(str(hf / "generator"))
        layers = reloaded.config.num_hidden_layers // 2  # the deberta_v3 preset: half the depth
        assert generator.config.num_hidden_layers == layers and summary["rtd"]["generator"]["layers"] == layers


@pytest.mark.parametrize("model,objective", INVALID)
def test_nonsense_pair_is_a_user_error_before_any_output(model, objective, small, tmp_path):
    with pytest.raises(UserError, match="decoder-only|bidirectional encoder|permutation LM|two-stream attention"):
        run(small(f"model={model}", f"objective={objective}"))
    assert not (tmp_path / "runs").exists()


ALL_TRICKS = ["llrd", "multi_dropout", "lora", "asl", "rdrop", "sift", "awp"]


@pytest.mark.parametrize("model", [*ENCODERS, "gpt2"])
def test_every_family_export_fine_tunes(model, small, glue_dir, tmp_path):
    """Plain, then with every trick that applies to the family at once, from the command line."""
    pretrained = Path(run(small(f"model={model}", f"objective={'clm' if model == 'gpt2' else 'mlm'}"))["run_dir"])
    overrides = ["objective=classify", *finetune_overrides(pretrained, glue_dir, task="rte"),
                 f"runs_dir={tmp_path / 'ft'}"]
    summary = run(overrides)
    assert summary["steps"] == 2 and 0.0 <= summary["score"] <= 1.0
    assert summary["tricks"]["applied"] == [] and summary["tricks"]["passes_per_step"] == {"forward": 1, "backward": 1}

    tricks = [t for t in ALL_TRICKS if not (model == "gpt2" and t == "sift")]  # GPT-2: no embedding LayerNorm
    summary = run([*overrides, f"trick=[{','.join(tricks)}]", "trick.awp.adv_start=0"])
    assert summary["steps"] == 2 and summary["tricks"]["applied"] == tricks
    # one clean pass, R-Drop's second, SiFT's two, AWP's one; backward: the loss, SiFT's delta, AWP
    sift = "sift" in tricks
    assert summary["tricks"]["passes_per_step"] == {"forward": 3 + 2 * sift, "backward": 2 + sift}
    assert 0 < summary["tricks"]["lora"]["trainable_fraction"] < 0.5
    assert summary["trainable_parameters"] < summary["parameters"]


@pytest.mark.parametrize("model,extra", [
    ("deberta", ["objective.sharing=gdes"]),
    ("electra", ["objective.sharing=es", "objective.generator.preset=electra"]),
    ("bert", ["objective.sharing=nes"]),
    ("gau", ["objective.sharing=es", "objective.generator.preset=electra"]),  # a narrower generator: projected
])
def test_rtd_discriminator_goes_through_eval_glue(model, extra, small, glue_dir, tmp_path):
    """`nlpx eval glue model.pretrained=<rtd run>` fine-tunes the discriminator (hf/)."""
    from nlpx.recipes.eval_benchmark import eval_glue

    pretrained = Path(run(small(f"model={model}", "objective=rtd", *extra))["run_dir"])
    report = eval_glue([f"model.pretrained={pretrained}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path / 'glue'}",
                        "eval.tasks=[rte]", "eval.seeds=[0]", "logger=none", "task.batch_size=8", "budget.max_epochs=1"])
    config = json.loads((pretrained / "hf" / "config.json").read_text())
    (rte,) = report["tasks"]
    assert rte["task"] == "rte" and rte["status"] == "ok" and config["architectures"][0] == \
        {"deberta": "DebertaV2Model", "electra": "ElectraForPreTraining", "bert": "BertModel", "gau": "GauModel"}[model]
    assert "glue" in json.loads((pretrained / "summary.json").read_text())
    if model == "gau":  # and `nlpx eval sts` encodes it (first position: GAU has no pooler)
        from nlpx.recipes.eval_sts import eval_sts

        report = eval_sts([f"model.pretrained={pretrained}", f"data.glue_dir={glue_dir}", "logger=none",
                           f"runs_dir={tmp_path / 'sts'}", "model.pooling=cls"])
        assert report["settings"]["pooling_used"] == "cls_before_pooler"
        assert -100 <= report["datasets"][0]["spearman"] <= 100


@pytest.mark.parametrize("extra", [
    ["model.position_embedding=sinusoidal"],
    ["model=roberta", "model.position_embedding=sinusoidal"],
    ["model=albert", "model.share=attention"],
    ["model=albert", "model.share=ffn"],
    ["model=albert", "model.share=none", "objective=sop"],
    ["objective.masking.strategy=whole_word"],
    ["model=roberta", "objective.masking.strategy=whole_word"],
    ["objective.format=doc_sentences"],
    ["objective=mlm_nsp", "objective.format=sentence_pair_nsp"],
    ["model=deberta", "objective=span", "model.pos_att_type=[c2p]"],
    ["model=albert", "model.attention_scale=log_n"],  # one attention module shared by every layer
    ["model=deberta", "objective=rtd", "model.attention_scale=log_n"],  # generator and discriminator
    ["model=roformer", "model.attention_pattern=global_local", "model.window=8", "model.attention_scale=log_n"],
    ["model=gau", "objective=rtd", "objective.sharing=nes"],
    ["model=gau", "model.gau_attention=relu2", "objective=sop"],
])
def test_variants_train_two_steps(extra, small):
    assert run(small(*extra))["steps"] == 2


def test_log_n_scale_trains_exports_and_is_put_back_for_fine_tuning(small, glue_dir, tmp_path, monkeypatch):
    """RTD's generator and discriminator both keep it; `eval glue` fine-tunes with it."""
    from nlpx.models import attention_scale
    from nlpx.recipes.eval_benchmark import eval_glue

    pretrained = Path(run(small("model=roformer", "objective=rtd", "model.attention_scale=log_n",
                                "model.scale_train_length=48"))["run_dir"])
    for folder in ("hf", "hf/generator"):
        config = json.loads((pretrained / folder / "config.json").read_text())
        assert (config["nlpx_attention_scale"], config["nlpx_scale_train_length"]) == ("log_n", 48)
    hooked = []
    apply = attention_scale.apply
    monkeypatch.setattr(attention_scale, "apply", lambda *a: hooked.append(apply(*a)) or hooked[-1])
    report = eval_glue([f"model.pretrained={pretrained}", f"data.glue_dir={glue_dir}", f"runs_dir={tmp_path / 'glue'}",
                        "eval.tasks=[rte]", "eval.seeds=[0]", "logger=none", "task.batch_size=8", "budget.max_epochs=1"])
    assert report["tasks"][0]["status"] == "ok" and hooked and all(n == 2 for n in hooked)  # both layers


def test_invalid_position_embedding_names_the_valid_ones(small):
    with pytest.raises(UserError, match=r"model.position_embedding=sinusoidal: not available for model=deberta "
                                         r"\(valid: relative\)"):
        run(small("model=deberta", "model.position_embedding=sinusoidal"))
