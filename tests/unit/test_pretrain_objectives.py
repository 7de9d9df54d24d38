"""SpanBERT's SBO head and loss, the causal LM loss, and nlpx's own pair head, against hand
computations and transformers' own losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

from nlpx.config import compose
from nlpx.objectives.clm import CausalLM
from nlpx.objectives.span import SpanBoundaryHead, SpanMaskedLM


def family(model: str, **extra):
    from hydra.utils import get_class

    cfg = compose([f"model={model}", *[f"model.{k}={v}" for k, v in extra.items()]])
    return get_class(cfg.model._target_)(cfg.model)


def test_sbo_head_is_the_papers_two_layer_ffn():
    torch.manual_seed(0)
    head = SpanBoundaryHead(hidden=4, out_dim=6, max_positions=8)
    left, right, pos = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 2, 11])
    h0 = torch.cat([left, right, head.position.weight[torch.tensor([0, 2, 7])]], dim=-1)  # 11 -> last row
    h1 = F.layer_norm(F.gelu(h0 @ head.w1.weight.T + head.w1.bias), (4,), head.ln1.weight, head.ln1.bias, 1e-12)
    y = F.layer_norm(F.gelu(h1 @ head.w2.weight.T + head.w2.bias), (6,), head.ln2.weight, head.ln2.bias, 1e-12)
    torch.testing.assert_close(head(left, right, pos), y)


def span_batch():
    # one span over positions 2..4 (boundaries 1 and 5) in a sequence of 8
    ids = torch.tensor([[2, 10, 4, 4, 4, 11, 12, 3]])
    labels = torch.full_like(ids, -100)
    labels[0, 2:5] = torch.tensor([20, 21, 22])
    minus = torch.full_like(ids, -1)
    left, right, pos = minus.clone(), minus.clone(), minus.clone()
    left[0, 2:5], right[0, 2:5], pos[0, 2:5] = 1, 5, torch.tensor([0, 1, 2])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
            "labels": labels, "sbo_left": left, "sbo_right": right, "sbo_pos": pos}


def span_model():
    """A 1-layer BERT (hidden 16, vocab 40) and the span objective attached to it."""
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32)).eval()
    obj = SpanMaskedLM(OmegaConf.create({"sbo": {"max_positions": 16}}), family("bert"))
    obj.attach(model)
    return model, obj


def test_sbo_loss_reaches_only_the_boundary_states():
    model, obj = span_model()
    b = span_batch()
    hidden = torch.randn(1, 8, 16, requires_grad=True)
    out = obj.sbo(model, hidden, b)
    out["sbo_loss"].backward()
    grad_norm = hidden.grad[0].norm(dim=-1)
    assert (grad_norm[[1, 5]] > 0).all()  # the two boundary tokens
    assert (grad_norm[[0, 2, 3, 4, 6, 7]] == 0).all()  # never the span itself nor anything else
    # the loss is the mean cross-entropy of the 3 span tokens through the MLM decoder
    y = obj.sbo_head(hidden[0, [1, 1, 1]], hidden[0, [5, 5, 5]], torch.tensor([0, 1, 2]))
    expected = F.cross_entropy(model.get_output_embeddings()(y), torch.tensor([20, 21, 22]))
    torch.testing.assert_close(out["sbo_loss"], expected)
    assert out["_sbo_count"] == 3


def test_span_objective_loss_is_mlm_plus_sbo():
    model, obj = span_model()
    out = obj(model, span_batch())
    torch.testing.assert_close(out["loss"], out["mlm_loss"] + out["sbo_loss"])


def test_clm_loss_equals_gpt2_lm_head_model():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=30, n_embd=16, n_layer=2, n_head=2, n_positions=32)).eval()
    ids = torch.randint(3, 30, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padding at the end of the second row
    ours = CausalLM(None, family("gpt2"))(model, {"input_ids": ids, "attention_mask": mask})
    labels = ids.masked_fill(mask == 0, -100)
    theirs = model(input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(ours["loss"], theirs.loss)
    assert ours["_clm_count"] == 8 + 5  # every next token that is not padding


def test_own_pair_head_for_a_family_without_one():
    from nlpx.objectives.mlm import MaskedLMWithNSP

    fam = family("roberta", size="tiny")
    model = fam.build(fam.hf_config(50, 1), nsp=True)
    assert fam.pair_head(model) is None
    obj = MaskedLMWithNSP(None, fam)
    obj.attach(model)
    assert obj.own_pair_head.in_features == model.config.hidden_size and obj.own_pair_head.out_features == 2
    assert torch.equal(obj.own_pair_head.bias, torch.zeros(2))


def test_config_counts_the_heads_an_objective_adds():
    from nlpx.recipes.count import count_parameters

    h = 128  # model.size=tiny
    sbo = 64 * h + (3 * h * h + h) + 2 * h + (h * h + h) + 2 * h  # position table, W1, LN1, W2, LN2
    mlm, _ = count_parameters(compose(["objective=mlm"]))
    span, _ = count_parameters(compose(["objective=span"]))
    assert span - mlm == sbo == 74_496
    # roberta has no HF pair head: mlm_nsp adds nlpx's own Linear(h, 2)
    r_mlm, _ = count_parameters(compose(["model=roberta", "objective=mlm"]))
    r_nsp, _ = count_parameters(compose(["model=roberta", "objective=mlm_nsp"]))
    assert r_nsp - r_mlm == 2 * h + 2
