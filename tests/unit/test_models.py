"""model= families: build from the composed config, forward through the parts objectives use,
save_pretrained + transformers Auto reload, ALBERT sharing, DeBERTa positions, GPT-2 causality,
sinusoidal tables, size presets. Tiny sizes and a 60-token vocabulary throughout."""

import math

import pytest
import torch
import transformers
from hydra.utils import get_class

from nlpx.config import compose
from nlpx.errors import UserError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one intra-op thread is faster, and much faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAMILIES = ["bert", "roberta", "albert", "deberta", "electra", "gpt2", "roformer"]
VOCAB, PAD = 60, 1


def family(name, *overrides):
    cfg = compose([f"model={name}", *overrides])
    return get_class(cfg.model._target_)(cfg.model)


def build(fam, nsp=False, seed=0):
    torch.manual_seed(seed)
    return fam.build(fam.hf_config(VOCAB, PAD), nsp).eval()


def inputs(types=False):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, VOCAB, (2, 11), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 8:], mask[1, 8:] = PAD, 0
    tt = torch.zeros_like(ids)
    if types:
        tt[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def head(fam, model):
    return fam.lm_head(model) if fam.decoder else fam.mlm_head(model)


def logits_via_parts(fam, model, batch):
    out = fam.encoder(model)(**batch)
    return out, head(fam, model)(out.last_hidden_state)


def auto_class(fam):
    return transformers.AutoModelForCausalLM if fam.decoder else transformers.AutoModelForMaskedLM


def n_params(model):
    return sum(p.numel() for p in model.parameters())  # shared parameters count once


CASES = [(name, ()) for name in FAMILIES] + [
    ("albert", ("model.share=attention",)), ("albert", ("model.share=ffn",)), ("albert", ("model.share=none",)),
    ("bert", ("model.position_embedding=sinusoidal",)), ("roberta", ("model.position_embedding=sinusoidal",))]


@pytest.mark.parametrize("name,overrides", CASES, ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_builds_runs_and_reloads_through_transformers_auto(name, overrides, tmp_path):
    fam = family(name, *overrides)
    model = build(fam)
    batch = inputs(types=fam.uses_token_types)
    out, logits = logits_via_parts(fam, model, batch)
    hidden = model.config.hidden_size
    assert out.last_hidden_state.shape == (2, 11, hidden)
    assert logits.shape == (2, 11, VOCAB)
    assert (fam.mlm_head(model) is None, fam.lm_head(model) is None) == (fam.decoder, not fam.decoder)
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 **({"token_type_ids": batch["token_type_ids"]} if fam.uses_token_types else {})).logits
    torch.testing.assert_close(logits, full)  # the parts are the model

    model.save_pretrained(str(tmp_path))
    reloaded = auto_class(fam).from_pretrained(str(tmp_path)).eval()
    assert type(reloaded).__module__.startswith("transformers.")
    _, again = logits_via_parts(fam, reloaded, batch)
    torch.testing.assert_close(again, logits, rtol=0, atol=1e-6)
    if "model.share=attention" in overrides or "model.share=ffn" in overrides:
        # plain transformers knows no partial sharing: it loads an unshared ALBERT (one group per
        # layer) whose per-layer copies hold the saved (equal) tensors, so the outputs are equal
        # but the copies are separate parameters; nlpx's family (model.pretrained) shares again
        assert n_params(reloaded) > n_params(model)
        shared = family(name, *overrides, f"model.pretrained={tmp_path}").pretraining_model(
            _Tok(VOCAB, PAD), nsp=False).eval()
        assert n_params(shared) == n_params(model)
        torch.testing.assert_close(logits_via_parts(fam, shared, batch)[1], logits, rtol=0, atol=1e-6)
    else:
        assert n_params(reloaded) == n_params(model)


class _Tok:
    def __init__(self, n, pad):
        self.n, self.pad_token_id, self.bos_token_id, self.eos_token_id = n, pad, None, None

    def __len__(self):
        return self.n


def test_interface_flags_and_heads():
    expect = {  # name: (decoder, uses_token_types, HF pair head, positions)
        "bert": (False, True, True, ("learned", "sinusoidal")),
        "roberta": (False, False, False, ("learned", "sinusoidal")),
        "albert": (False, True, True, ("learned", "sinusoidal")),
        "deberta": (False, False, False, ("relative",)),
        "electra": (False, True, False, ("learned", "sinusoidal")),
        "gpt2": (True, False, False, ("learned", "sinusoidal")),
        "roformer": (False, True, False, ("rotary",))}
    for name, (decoder, types, pair, positions) in expect.items():
        fam = family(name)
        assert (fam.name, fam.decoder, fam.uses_token_types, fam.positions) == (name, decoder, types, positions)
        if not pair:
            assert fam.pretraining_class(True) is fam.pretraining_class(False)


@pytest.mark.parametrize("name", ["bert", "albert"])
def test_pair_head_takes_the_pooled_output(name):
    fam = family(name)
    model = build(fam, nsp=True)
    batch = inputs(types=True)
    out = fam.encoder(model)(**batch)
    pooled = fam.pooled(out)
    assert pooled is out.pooler_output
    assert fam.pair_head(model)(pooled).shape == (2, 2)
    assert fam.nsp_head(model) is fam.pair_head(model)
    mlm_only = build(fam, nsp=False)
    assert fam.pair_head(mlm_only) is None
    out = fam.encoder(mlm_only)(**batch)
    assert torch.equal(fam.pooled(out), out.last_hidden_state[:, 0])  # no pooler: [CLS]


def test_families_without_segment_embeddings_ignore_token_types():
    for name in ("roberta", "gpt2"):
        fam = family(name)
        model = build(fam)
        b = inputs(types=True)  # segment ids of 1 would index past RoBERTa's single row
        with_types = fam.encoder(model)(**b).last_hidden_state
        b.pop("token_type_ids")
        torch.testing.assert_close(with_types, fam.encoder(model)(**b).last_hidden_state, rtol=0, atol=0)


def test_decoder_pools_the_last_non_padding_position():
    fam = family("gpt2")
    model = build(fam)
    b = inputs()
    out = fam.encoder(model)(**b)
    pooled = fam.pooled(out, b["attention_mask"])
    assert torch.equal(pooled[0], out.last_hidden_state[0, -1]) and torch.equal(pooled[1], out.last_hidden_state[1, 7])


# -- ALBERT ------------------------------------------------------------------------------------
def albert_formula(share, V, E, H, I, L, P=512, T=2):
    emb = V * E + P * E + T * E + 2 * E + E * H + H       # tables, LayerNorm, E -> H projection
    attn = 4 * (H * H + H)                                  # q, k, v, output projections
    ffn = H * I + I + I * H + H
    norms = 2 * H + 2 * H                                   # attention and full-layer LayerNorm
    head = H * E + E + 2 * E + V                            # H -> E, LayerNorm, bias (decoder tied)
    layers = {"all": attn + ffn + norms, "none": L * (attn + ffn + norms),
              "attention": attn + L * (ffn + norms), "ffn": ffn + L * (attn + norms)}[share]
    return emb + layers + head


@pytest.mark.parametrize("share", ["all", "attention", "ffn", "none"])
def test_albert_parameter_counts_follow_the_formula(share):
    from nlpx.recipes.count import count_parameters

    model = build(family("albert", f"model.share={share}"))
    c = model.config
    assert (c.embedding_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (128, 128, 512, 2)
    assert n_params(model) == albert_formula(share, VOCAB, 128, 128, 512, 2)
    # `nlpx config model=albert model.share=...` (meta device, data.vocab_size), at size mini
    cfg = compose(["model=albert", f"model.share={share}", "model.size=mini"])
    assert count_parameters(cfg)[0] == albert_formula(share, int(cfg.data.vocab_size), 128, 256, 1024, 4)


@pytest.mark.parametrize("share,shared,own", [
    ("attention", ("attention.query", "attention.key", "attention.value", "attention.dense"),
     ("ffn", "ffn_output", "attention.LayerNorm", "full_layer_layer_norm")),
    ("ffn", ("ffn", "ffn_output"),
     ("attention.query", "attention.key", "attention.value", "attention.dense", "attention.LayerNorm",
      "full_layer_layer_norm"))])
def test_albert_partial_sharing_really_shares(share, shared, own):
    model = build(family("albert", f"model.share={share}", "model.num_hidden_layers=3"))
    layers = [g.albert_layers[0] for g in model.albert.encoder.albert_layer_groups]
    assert len(layers) == 3
    for layer in layers[1:]:
        for path in shared:
            assert layer.get_submodule(path) is layers[0].get_submodule(path)
            assert layer.get_submodule(path).weight is layers[0].get_submodule(path).weight
        for path in own:
            assert layer.get_submodule(path) is not layers[0].get_submodule(path)
            assert layer.get_submodule(path).weight.data_ptr() != layers[0].get_submodule(path).weight.data_ptr()


# -- DeBERTa -----------------------------------------------------------------------------------
def test_deberta_positions_are_relative_only():
    fam = family("deberta")
    model = build(fam)
    assert model.config.position_biased_input is False
    assert model.deberta.embeddings.position_embeddings is None
    assert not any("position_embeddings" in n for n, _ in model.named_parameters())
    assert sorted(model.config.pos_att_type) == ["c2p", "p2c"] and model.config.position_buckets == 256
    b = inputs()
    before = logits_via_parts(fam, model, b)[1]
    with torch.no_grad():
        model.deberta.encoder.rel_embeddings.weight.add_(torch.randn_like(model.deberta.encoder.rel_embeddings.weight))
    assert not torch.allclose(logits_via_parts(fam, model, b)[1], before, atol=1e-4)


def test_deberta_relative_positions_enter_only_through_c2p_and_p2c():
    fam = family("deberta", "model.pos_att_type=[]", "model.position_buckets=32", "model.max_relative_positions=64")
    model = build(fam)
    assert model.deberta.encoder.rel_embeddings.weight.shape[0] == 64  # 2 x 32 buckets
    b = inputs()
    before = logits_via_parts(fam, model, b)[1]
    with torch.no_grad():
        model.deberta.encoder.rel_embeddings.weight.add_(1.0)
    torch.testing.assert_close(logits_via_parts(fam, model, b)[1], before, rtol=0, atol=0)


# -- GPT-2 -------------------------------------------------------------------------------------
def test_gpt2_is_causal():
    fam = family("gpt2")
    model = build(fam)
    b = inputs()
    b["attention_mask"] = torch.ones_like(b["input_ids"])
    first = logits_via_parts(fam, model, b)[1]
    b["input_ids"] = b["input_ids"].clone()
    b["input_ids"][:, 6] = (b["input_ids"][:, 6] + 7) % VOCAB
    second = logits_via_parts(fam, model, b)[1]
    assert torch.equal(first[:, :6], second[:, :6])  # exactly: no earlier position sees token 6
    assert not torch.allclose(first[:, 6:], second[:, 6:])


# -- sinusoidal positions ----------------------------------------------------------------------
HAND = {(1, 0): 0.8414709848078965, (1, 1): 0.5403023058681398,  # sin(1), cos(1)
        (2, 2): 0.9870462513484951, (5, 3): -0.3733034641275247,  # sin/cos(pos / 10000^(2/128))
        (100, 127): 0.9999333246693383, (37, 64): 0.361615431964962, (0, 0): 0.0, (0, 1): 1.0}


@pytest.mark.parametrize("name,offset", [("bert", 0), ("roberta", PAD + 1), ("electra", 0), ("albert", 0),
                                         ("gpt2", 0)])
def test_sinusoidal_table_is_the_formula_and_frozen(name, offset):
    fam = family(name, "model.position_embedding=sinusoidal")
    model = build(fam).train()
    weight = fam.position_table(model).weight
    assert weight.shape[1] == 128  # tiny: H = 128 (ALBERT's and ELECTRA's E = 128 too)
    for (pos, j), value in HAND.items():
        assert float(weight[offset + pos, j]) == pytest.approx(value, abs=1e-6)
    assert torch.all(weight[:offset] == 0)
    d = weight.shape[1]
    for pos, j in [(3, 10), (511, 17)]:
        f = math.sin if j % 2 == 0 else math.cos
        assert float(weight[offset + pos, j]) == pytest.approx(f(pos / 10000 ** (2 * (j // 2) / d)), abs=1e-6)
    assert not weight.requires_grad
    logits = logits_via_parts(fam, model, inputs())[1]
    logits.float().pow(2).mean().backward()
    assert weight.grad is None
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "word" in n)


def test_sinusoidal_table_is_frozen_again_after_loading(tmp_path):
    fam = family("bert", "model.position_embedding=sinusoidal")
    build(fam).save_pretrained(str(tmp_path))
    again = family("bert", f"model.pretrained={tmp_path}")
    model = again.pretraining_model(_Tok(VOCAB, PAD), nsp=False)
    assert model.training and not again.position_table(model).weight.requires_grad


def test_invalid_position_or_sharing_is_one_user_error():
    cases = [(("deberta", "model.position_embedding=learned"), "valid: relative"),
             (("roformer", "model.position_embedding=sinusoidal"), "valid: rotary"),
             (("bert", "model.position_embedding=rotary"), "valid: learned, sinusoidal"),
             (("albert", "model.share=layers"), "valid: all, attention, ffn, none")]
    for args, valid in cases:
        with pytest.raises(UserError) as e:
            family(*args)
        assert valid in str(e.value) and "\n" not in str(e.value)


def test_a_checkpoint_of_another_family_names_the_right_one(tmp_path):
    build(family("bert")).save_pretrained(str(tmp_path))
    with pytest.raises(UserError, match="use model=bert"):
        family("roberta", f"model.pretrained={tmp_path}").hf_config(0, 0)


# -- size presets ------------------------------------------------------------------------------
@pytest.mark.parametrize("size,expected", [("tiny", (2, 128, 2, 512)), ("mini", (4, 256, 4, 1024)),
                                           ("small", (4, 512, 8, 2048)), ("base", (12, 768, 12, 3072))])
def test_size_presets_mean_the_same_depth_and_width_in_every_family(size, expected):
    shapes = set()
    for name in FAMILIES:
        c = family(name, f"model.size={size}").hf_config(VOCAB, PAD)
        inner = c.n_inner if name == "gpt2" else c.intermediate_size
        shapes.add((c.num_hidden_layers, c.hidden_size, c.num_attention_heads, inner))
    assert shapes == {expected}  # layers, hidden, heads = hidden / 64 (min 2), FFN = 4 x hidden
