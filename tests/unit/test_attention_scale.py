"""model.attention_scale=log_n: equal to the family's own scale at the training length (bit for bit);
elsewhere each query's logits multiplied by log(n)/log(n₀), n its unmasked keys: checked against
the attention probabilities computed by hand, and against the sqrt_d model whose query weights are
multiplied by that factor; it survives an export and a reload; families without it say so."""

import math

import pytest
import torch
from hydra.utils import get_class

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.models.attention_scale import ATTENTION_CLASSES, key_counts, restore

FAMILIES = ["bert", "roberta", "albert", "electra", "roformer"]
VOCAB, PAD = 50, 0


class Tok:
    pad_token_id, cls_token_id, sep_token_id = PAD, 2, 3

    def __len__(self):
        return VOCAB


def family_for(cfg_model):
    return get_class(cfg_model._target_)(cfg_model)


def model(name, *extra):
    cfg = compose([f"model={name}", "model.size=tiny", "model.hidden_dropout_prob=0",
                   "model.attention_probs_dropout_prob=0", *extra])
    family = family_for(cfg.model)
    torch.manual_seed(0)
    return family, family.pretraining_model(Tok(), nsp=False).eval()


def ids(batch, length, lengths=None):
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, VOCAB, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    for b, n in enumerate(lengths or []):
        x[b, n:], mask[b, n:] = PAD, 0
    return x, mask


def hidden(family, m, x, mask):
    with torch.no_grad():
        return family.encoder(m)(input_ids=x, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize("name", [*FAMILIES, "deberta"])
def test_log_n_equals_the_family_scale_at_the_training_length(name):
    family, plain = model(name)
    _, scaled = model(name, "model.attention_scale=log_n", "model.scale_train_length=24")
    scaled.load_state_dict(plain.state_dict())
    x, mask = ids(3, 24)
    assert torch.equal(hidden(family, plain, x, mask), hidden(family, scaled, x, mask))
    x, mask = ids(3, 24, lengths=[24, 10, 17])  # shorter rows: their queries scaled down
    assert not torch.allclose(hidden(family, plain, x, mask)[1:], hidden(family, scaled, x, mask)[1:])


@pytest.mark.parametrize("name", FAMILIES)
def test_log_n_is_the_sqrt_d_model_with_each_query_scaled_by_log_n_over_log_n0(name):
    family, scaled = model(name, "model.attention_scale=log_n", "model.scale_train_length=16")
    _, plain = model(name)
    plain.load_state_dict(scaled.state_dict())
    factor = math.log(40) / math.log(16)
    for module in plain.modules():  # the query projection's weight and bias times the factor
        if hasattr(module, "_nlpx_log_n") or type(module).__name__ in ATTENTION_CLASSES[family.model_type]:
            with torch.no_grad():
                module.query.weight.mul_(factor)
                module.query.bias.mul_(factor)
    x, mask = ids(2, 40)
    torch.testing.assert_close(hidden(family, scaled, x, mask), hidden(family, plain, x, mask), rtol=1e-5, atol=1e-5)


def test_bert_attention_probabilities_equal_the_formula_by_hand():
    family, m = model("bert", "model.attention_scale=log_n", "model.scale_train_length=8",
                      "model.attn_implementation=eager")
    x, mask = ids(2, 12, lengths=[12, 5])
    with torch.no_grad():
        out = family.encoder(m)(input_ids=x, attention_mask=mask, output_attentions=True, output_hidden_states=True)
        h = out.hidden_states[0]
        att = family.base(m).encoder.layer[0].attention.self
        heads, d = att.num_attention_heads, att.attention_head_size
        q = torch.nn.functional.linear(h, att.query.weight, att.query.bias)  # (not att.query: its hook scales)
        k = torch.nn.functional.linear(h, att.key.weight, att.key.bias)
        q = q.view(2, 12, heads, d).transpose(1, 2)
        k = k.view(2, 12, heads, d).transpose(1, 2)
        n = mask.sum(-1).double()  # unmasked keys of every query of the row
        scale = (torch.log(n) / math.log(8) / math.sqrt(d))[:, None, None, None]
        logits = scale * (q.double() @ k.double().transpose(-1, -2))
        logits = logits.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        expected = logits.softmax(-1)
    torch.testing.assert_close(out.attentions[0].double(), expected, rtol=1e-5, atol=1e-6)
    assert out.attentions[0][1, :, :, 5:].abs().max() == 0  # padding keys get nothing


def test_key_counts_read_every_mask_form():
    bool_mask = torch.tensor([[True, True, False], [True, False, False]])[:, None, None, :]
    additive = torch.zeros(2, 1, 1, 3).masked_fill(~bool_mask, torch.finfo(torch.float32).min)
    for m in (bool_mask, additive, bool_mask[:, 0, 0]):
        assert key_counts(m, 2, 3).tolist() == [[2.0], [1.0]]
    assert key_counts(None, 2, 3).tolist() == [[3.0], [3.0]]
    per_query = torch.tensor([[[[True, True, False], [True, True, True]]]])  # [1, 1, Tq=2, Tk=3]
    assert key_counts(per_query, 1, 3).tolist() == [[2.0, 3.0]]


def test_the_export_keeps_log_n_and_nlpx_puts_it_back(tmp_path):
    family, m = model("roformer", "model.attention_scale=log_n", "model.scale_train_length=16")
    m.save_pretrained(tmp_path)
    config = __import__("json").loads((tmp_path / "config.json").read_text())
    assert config["nlpx_attention_scale"] == "log_n" and config["nlpx_scale_train_length"] == 16
    reloaded_family, reloaded = model("roformer", f"model.pretrained={tmp_path}")
    reloaded.eval()
    x, mask = ids(2, 30, lengths=[30, 9])
    expected = hidden(family, m, x, mask)
    assert torch.equal(expected, hidden(reloaded_family, reloaded, x, mask))
    # transformers' Auto class (as `eval glue` and `eval sts` load): the standard scale until restored
    from transformers import AutoModel

    auto = AutoModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert not torch.allclose(auto(input_ids=x, attention_mask=mask).last_hidden_state, expected)
        restore(auto)
        assert torch.equal(auto(input_ids=x, attention_mask=mask).last_hidden_state, expected)


def test_deberta_log_n_multiplies_its_whole_logits_c2p_and_p2c_included(monkeypatch):
    """The reference: sqrt_d DeBERTa whose √(3d) divisor (every term's) is divided by the factor."""
    from transformers.models.deberta_v2 import modeling_deberta_v2

    family, scaled = model("deberta", "model.attention_scale=log_n", "model.scale_train_length=16")
    _, plain = model("deberta")
    plain.load_state_dict(scaled.state_dict())
    x, mask = ids(2, 40)
    got = hidden(family, scaled, x, mask)
    factor = math.log(40) / math.log(16)
    own = modeling_deberta_v2.scaled_size_sqrt
    monkeypatch.setattr(modeling_deberta_v2, "scaled_size_sqrt", lambda t, s: own(t, s) / factor)
    torch.testing.assert_close(got, hidden(family, plain, x, mask), rtol=1e-5, atol=1e-5)
    monkeypatch.undo()
    # (random init: small logits, so the scale moves the output little; still 10x the tolerance above)
    assert (got - hidden(family, plain, x, mask)).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["gpt2"])
def test_families_without_log_n_say_so(name):
    with pytest.raises(UserError, match=f"model.attention_scale=log_n: not available for model={name}"):
        family_for(compose([f"model={name}", "model.attention_scale=log_n"]).model)
    with pytest.raises(UserError, match="model.attention_scale=cube: not valid"):
        compose(["model=bert", "model.attention_scale=cube"])
