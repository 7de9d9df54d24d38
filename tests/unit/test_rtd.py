"""Replaced-token detection: sampling and labels, metrics, generator sizing, and the exact
gradient flow of the three embedding-sharing modes (NES, ES, GDES) on one fixed batch."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import get_class
from sklearn.metrics import accuracy_score, precision_score, recall_score

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.objectives import embedding_sharing as sharing
from nlpx.objectives.rtd import (ReplacedTokenDetection, discriminator_inputs, generator_config, rtd_metrics,
                                 sample_replacements)

VOCAB = 120


def build(model: str = "electra", mode: str = "gdes", *extra: str):
    """(discriminator, objective) of a tiny random model, as `nlpx train objective=rtd` builds them."""
    cfg = compose(["objective=rtd", f"model={model}", "model.size=tiny", f"objective.sharing={mode}", *extra])
    torch.manual_seed(0)
    family = get_class(cfg.model._target_)(cfg.model)
    disc = family.build(family.hf_config(VOCAB, 0), False, ReplacedTokenDetection.model_class(family))
    objective = ReplacedTokenDetection(cfg.objective, family)
    objective.attach(disc)
    return disc, objective


def fixed_batch(seed: int = 1, rows: int = 4, length: int = 24):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (rows, length), generator=g)
    attn = torch.ones(rows, length, dtype=torch.long)
    attn[1, 18:] = 0
    attn[3, 10:] = 0
    ids[attn == 0] = 0
    labels = torch.full_like(ids, -100)
    pick = (torch.rand(rows, length, generator=g) < 0.3) & attn.bool()
    labels[pick] = ids[pick]
    masked = ids.clone()
    masked[pick] = 4  # [MASK]
    return {"input_ids": masked, "labels": labels, "attention_mask": attn,
            "token_type_ids": torch.zeros_like(ids)}


def word_tables(disc, objective):
    gen = objective.family.embedding_tables(objective.generator)["word"]
    return gen, objective.family.base(disc).embeddings.word_embeddings


def grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, retain_graph=True, allow_unused=True, materialize_grads=True)


# -- sampling and labels ---------------------------------------------------------------------
def test_samples_follow_softmax_of_logits_over_temperature():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, math.log(3.0)]]).expand(40_000, 2)
    originals = torch.zeros(40_000, dtype=torch.long)
    for temperature, p1 in ((1.0, 0.75), (2.0, math.sqrt(3) / (1 + math.sqrt(3)))):
        share = sample_replacements(logits, originals, temperature=temperature).float().mean().item()
        assert abs(share - p1) < 0.01, (temperature, share, p1)


def test_exclude_original_never_samples_it_and_sampling_has_no_gradient():
    logits = torch.randn(500, 5, requires_grad=True)
    originals = torch.randint(0, 5, (500,))
    sampled = sample_replacements(logits, originals, exclude_original=True)
    assert not sampled.requires_grad and (sampled != originals).all()


def test_a_sample_equal_to_the_original_is_labelled_original():
    ids = torch.tensor([[2, 4, 4, 9, 4, 0]])          # 4 = [MASK]; the last token is padding
    labels = torch.tensor([[-100, 7, 8, -100, 9, -100]])
    corrupted, original, replaced = discriminator_inputs(ids, labels, torch.tensor([7, 11, 9]))
    assert original.tolist() == [[2, 7, 8, 9, 9, 0]]
    assert corrupted.tolist() == [[2, 7, 11, 9, 9, 0]]
    assert replaced.tolist() == [[False, False, True, False, False, False]]


def test_replaced_fraction_is_at_most_the_selected_fraction():
    disc, objective = build("electra", "gdes")
    batch = fixed_batch()
    real = batch["attention_mask"].bool()
    selected = ((batch["labels"] != -100) & real).sum().item() / real.sum().item()
    for temperature in (1.0, 0.05):  # a sharp generator repeats the original more often
        objective.temperature = temperature
        out = objective(disc, batch)
        assert 0 < out["disc/replaced_fraction"].item() <= selected


# -- metrics ---------------------------------------------------------------------------------
def test_rtd_metrics_equal_sklearn_and_a_hand_computed_loss():
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, 0.0, 4.0]])
    replaced = torch.tensor([[True, False, False, False], [True, True, False, True]])
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool()
    m = rtd_metrics(logits, replaced, real)
    z, y = logits[real], replaced[real].float()
    hand = -(y * torch.log(torch.sigmoid(z)) + (1 - y) * torch.log(1 - torch.sigmoid(z))).mean()
    torch.testing.assert_close(m["disc/rtd_loss"], hand)
    y_true, y_pred = replaced[real].int().tolist(), (logits[real] > 0).int().tolist()
    assert m["disc/rtd_acc"].item() == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["disc/precision"].item() == pytest.approx(precision_score(y_true, y_pred))
    assert m["disc/recall"].item() == pytest.approx(recall_score(y_true, y_pred))
    assert m["disc/replaced_fraction"].item() == pytest.approx(3 / 7)
    assert (m["_disc/rtd_count"], m["_disc/precision_count"], m["_disc/recall_count"]) == (7, 3, 3)


# -- generator size --------------------------------------------------------------------------
def test_generator_config_scales_depth_and_width_and_keeps_the_embedding_width():
    from transformers import DebertaV2Config, ElectraConfig

    base = ElectraConfig(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                         embedding_size=768)
    g = generator_config(base, 1.0, 0.25, "embedding_size")  # ELECTRA: 1/4 width, 64-wide heads
    assert (g.num_hidden_layers, g.hidden_size, g.num_attention_heads, g.intermediate_size, g.embedding_size) == \
        (12, 192, 3, 768, 768)
    d = generator_config(DebertaV2Config(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                                         intermediate_size=3072), 0.5, 1.0, "embedding_size")
    assert (d.num_hidden_layers, d.hidden_size, d.num_attention_heads, d.embedding_size) == (6, 768, 12, 768)


def test_objective_defaults_are_deberta_v3_with_an_electra_preset():
    _, objective = build("deberta", "gdes")
    assert (objective.depth_ratio, objective.width_ratio, objective.rtd_weight) == (0.5, 1.0, 50.0)
    assert objective.generator.config.num_hidden_layers == 1 and objective.generator.config.hidden_size == 128
    _, electra = build("electra", "es", "objective.generator.preset=electra")
    assert (electra.depth_ratio, electra.width_ratio) == (1.0, 0.25)
    c = electra.generator.config
    assert (c.num_hidden_layers, c.hidden_size, c.embedding_size) == (2, 32, 128)


@pytest.mark.parametrize("extra,message", [
    (["objective.sharing=tied"], "objective.sharing=tied: unknown (valid: nes, es, gdes)"),
    (["objective.sharing=es", "objective.generator.preset=electra", "model=bert"], "embeds tokens at its hidden size"),
    (["objective.sampling.temperature=0"], "objective.sampling.temperature=0.0: must be a positive number"),
    (["objective.masking.strategy=none"], "rtd needs masked positions"),
])
def test_bad_settings_are_user_errors(extra, message):
    cfg = compose(["objective=rtd", "model.size=tiny", *extra])
    family = get_class(cfg.model._target_)(cfg.model)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        objective = ReplacedTokenDetection(cfg.objective, family)
        objective.attach(family.build(family.hf_config(VOCAB, 0), False, objective.model_class(family)))


# -- gradients of the three modes ------------------------------------------------------------
@pytest.mark.parametrize("model", ["electra", "deberta"])
def test_nes_each_loss_reaches_only_its_own_table(model):
    disc, objective = build(model, "nes")
    e_g, e_d = (t.weight for t in word_tables(disc, objective))
    assert e_g is not e_d
    out = objective(disc, fixed_batch())
    rtd_to_g, rtd_to_d = grads(out["disc/rtd_loss"], [e_g, e_d])
    mlm_to_g, mlm_to_d = grads(out["gen/mlm_loss"], [e_g, e_d])
    assert torch.count_nonzero(rtd_to_g) == 0 and torch.count_nonzero(mlm_to_d) == 0
    assert torch.count_nonzero(rtd_to_d) > 0 and torch.count_nonzero(mlm_to_g) > 0


@pytest.mark.parametrize("model", ["electra", "deberta"])
def test_es_both_losses_reach_one_table(model):
    disc, objective = build(model, "es")
    gen, d = word_tables(disc, objective)
    assert gen is d
    out = objective(disc, fixed_batch())
    (rtd,), (mlm,) = grads(out["disc/rtd_loss"], [gen.weight]), grads(out["gen/mlm_loss"], [gen.weight])
    assert torch.count_nonzero(rtd) > 0 and torch.count_nonzero(mlm) > 0


@pytest.mark.parametrize("model", ["electra", "deberta"])
def test_gdes_rtd_updates_only_the_delta_and_the_table_stays_e_g_plus_delta(model):
    disc, objective = build(model, "gdes")
    gen, d = word_tables(disc, objective)
    e_g, delta = gen.weight, sharing.delta(d)
    assert delta is not None and torch.count_nonzero(delta) == 0  # E_Δ starts at 0
    assert torch.equal(d.weight, e_g)
    out = objective(disc, fixed_batch())
    rtd_to_g, rtd_to_delta = grads(out["disc/rtd_loss"], [e_g, delta])
    mlm_to_g, mlm_to_delta = grads(out["gen/mlm_loss"], [e_g, delta])
    assert torch.count_nonzero(rtd_to_g) == 0 and torch.count_nonzero(mlm_to_delta) == 0
    assert torch.count_nonzero(rtd_to_delta) > 0 and torch.count_nonzero(mlm_to_g) > 0

    params = list({id(p): p for p in [*disc.parameters(), *objective.parameters()]}.values())
    assert any(p is delta for p in params) and any(p is e_g for p in params)
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    for step in range(3):
        optimizer.zero_grad()
        objective(disc, fixed_batch(seed=step))["loss"].backward()
        optimizer.step()
        assert torch.equal(d.weight, e_g + delta)
    assert torch.count_nonzero(delta) > 0


def test_gdes_applies_to_position_and_segment_tables_too():
    disc, objective = build("electra", "gdes")
    assert objective.shared_tables == ["word", "position", "token_type"]
    for name in ("position", "token_type"):
        d = objective.family.embedding_tables(disc)[name]
        g = objective.family.embedding_tables(objective.generator)[name]
        assert torch.equal(d.weight, g.weight + sharing.delta(d))
    _, deberta = build("deberta", "gdes")  # no absolute positions, no segments in DeBERTa-v3
    assert deberta.shared_tables == ["word"]


@pytest.mark.parametrize("mode", ["nes", "es", "gdes"])
def test_per_source_gradient_metrics_are_exact(mode):
    disc, objective = build("electra", mode)
    gen_table = word_tables(disc, objective)[0].weight
    d_table = sharing.delta(word_tables(disc, objective)[1])
    d_table = d_table if d_table is not None else word_tables(disc, objective)[1].weight
    torch.manual_seed(5)  # the same dropout masks and samples in both forward passes
    out = objective(disc, fixed_batch())
    (mlm,) = grads(out["gen/mlm_loss"], [gen_table])
    (rtd,) = grads(objective.rtd_weight * out["disc/rtd_loss"], [d_table])
    objective.log_due = True  # a logged step: the lookup hook collects during the real backward
    torch.manual_seed(5)
    objective(disc, fixed_batch())["loss"].backward()
    trainer = SimpleNamespace(precision_plugin=SimpleNamespace(), world_size=1)
    m = objective.optimizer_step_metrics(trainer)
    torch.testing.assert_close(m["grad/emb_from_mlm"], mlm.norm(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(m["grad/emb_from_rtd"], rtd.norm(), rtol=1e-5, atol=1e-7)
    cosine = torch.nn.functional.cosine_similarity(mlm.flatten(), rtd.flatten(), dim=0)
    torch.testing.assert_close(m["grad/emb_cosine"], cosine, rtol=1e-4, atol=1e-6)
    assert objective.optimizer_step_metrics(trainer) == {}  # collected once per step


def test_export_materialises_gdes_and_reloads_with_equal_outputs(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining
    from transformers.models.electra.modeling_electra import ElectraDiscriminatorPredictions

    from nlpx.run.export import export_hf

    batch = fixed_batch()
    for model in ("electra", "deberta"):
        disc, objective = build(model, "gdes")
        optimizer = torch.optim.AdamW([*disc.parameters(), *objective.parameters()], lr=1e-2)
        for step in range(2):
            optimizer.zero_grad()
            objective(disc, fixed_batch(seed=step))["loss"].backward()
            optimizer.step()
        tokenizer = SimpleNamespace(save_pretrained=lambda folder: None)
        target = tmp_path / model
        export_hf(disc, tokenizer, target, state_dict=objective.export_state(disc),
                  extra=lambda folder: objective.export_heads(folder, None))
        disc.eval(), objective.eval()
        gen_table, d_table = word_tables(disc, objective)
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            ours = objective.rtd_logits(disc, objective.family.encoder(disc)(**inputs).last_hidden_state)
            if model == "electra":
                reloaded = AutoModelForPreTraining.from_pretrained(target).eval()
                theirs = reloaded(**inputs).logits
                table = reloaded.electra.embeddings.word_embeddings.weight
            else:
                reloaded = AutoModel.from_pretrained(target).eval()
                head = ElectraDiscriminatorPredictions(reloaded.config)
                head.load_state_dict({k.removeprefix("rtd_head."): v for k, v in
                                      load_file(target / "nlpx_heads.safetensors").items()})
                theirs = head(reloaded(**inputs).last_hidden_state)
                table = reloaded.embeddings.word_embeddings.weight
            assert torch.equal(table, gen_table.weight + sharing.delta(d_table))
            torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-6)
            generator = AutoModelForMaskedLM.from_pretrained(target / "generator").eval()
            torch.testing.assert_close(generator(**inputs).logits, objective.generator(**inputs).logits,
                                       rtol=0, atol=1e-6)

        # continuing from the export (model.pretrained): both models come back, and GDES starts
        # from E_Δ = E_D - E_G, so the discriminator's table is the exported one, not E_G
        cfg = compose(["objective=rtd", f"model={model}", "objective.sharing=gdes", f"model.pretrained={target}"])
        family = get_class(cfg.model._target_)(cfg.model)
        again_disc = family.load_model(None, ReplacedTokenDetection.model_class(family))
        again = ReplacedTokenDetection(cfg.objective, family)
        again.attach(again_disc)
        again_gen, again_d = word_tables(again_disc, again)
        assert torch.equal(again_gen.weight, gen_table.weight)
        torch.testing.assert_close(again_d.weight, table, rtol=0, atol=1e-6)
        assert torch.count_nonzero(sharing.delta(again_d)) > 0


def test_config_counts_the_generator_and_a_shared_table_once():
    from nlpx.recipes.count import count_parameters

    cfgs = {mode: compose(["objective=rtd", "model=electra", f"objective.sharing={mode}"])
            for mode in ("nes", "es", "gdes")}
    counts = {mode: count_parameters(cfg)[0] for mode, cfg in cfgs.items()}
    v, e = int(cfgs["es"].data.vocab_size), 128  # the vocabulary it counts with, the tiny embedding width
    tables = v * e + 512 * e + 2 * e  # token, position, segment
    assert counts["nes"] - counts["es"] == tables  # es: the discriminator's tables are the generator's
    assert counts["gdes"] == counts["nes"]  # gdes: E_Δ has the shape of E_D
