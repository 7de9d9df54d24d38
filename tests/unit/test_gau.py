"""model=gau: a GAU layer equals a hand-written implementation of the formulas (CONCEPTS.md,
"GAU / GAU-α") on small tensors, softmax (log_n and sqrt_d) and relu²; log_n equals sqrt_d at the
training length bit for bit; padding changes nothing for the real tokens; the Auto classes load an
export after `import nlpx.models` and the CLI's start-up does not import it; a size preset's
parameters match BERT's; keys GAU does not read are errors."""

import math
import subprocess
import sys

import pytest
import torch

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.models.gau_modeling import GauConfig, GauForMaskedLM, GauLayer, GauModel
from tests.unit.test_attention_scale import hidden, ids, model


def rope(x, positions):
    """Rotate each pair (x_2i, x_2i+1) at position p by the angle p · 10000^(−2i/d)."""
    out = torch.empty_like(x)
    d = x.shape[-1]
    for p in positions:
        for i in range(d // 2):
            angle = p * 10000.0 ** (-2 * i / d)
            c, s = math.cos(angle), math.sin(angle)
            a, b = x[..., p, 2 * i], x[..., p, 2 * i + 1]
            out[..., p, 2 * i], out[..., p, 2 * i + 1] = a * c - b * s, a * s + b * c
    return out


def reference_layer(layer: GauLayer, x, mask, *, attention, scale_train_length=None, max_distance=None):
    """The formulas, in float64, with the layer's own weights."""
    e, s = layer.e, layer.s
    w = layer.i_dense.weight.double()                       # [2e + s, H]
    silu = lambda t: t * torch.sigmoid(t)                    # noqa: E731
    u, v, z = silu(x @ w[:e].T), silu(x @ w[e:2 * e].T), silu(x @ w[2 * e:].T)
    q = z * layer.q_scale_offset.weight.double() + layer.q_scale_offset.bias.double()
    k = z * layer.k_scale_offset.weight.double() + layer.k_scale_offset.bias.double()
    t = x.shape[1]
    q, k = rope(q, range(t)), rope(k, range(t))
    qk = torch.einsum("bis,bjs->bij", q, k)
    keys = mask.bool()[:, None, :].expand(-1, t, -1)
    n = mask.sum(-1).double()[:, None, None]                 # each query's unmasked keys
    if attention == "softmax":
        c = 1 / math.sqrt(s)
        if scale_train_length:
            c = c * torch.log(n) / math.log(scale_train_length)
        logits = (c * qk).masked_fill(~keys, float("-inf"))
        a = torch.softmax(logits, -1)
    else:
        i = torch.arange(t)
        dist = (i[None, :] - i[:, None]).clamp(-max_distance, max_distance) + max_distance
        b = layer.relative_bias.double()[dist]
        a = torch.relu(qk / n + b) ** 2 * keys
    o = (u * (a @ v)) @ layer.o_dense.weight.double().T
    y = x + o
    return y / torch.sqrt((y * y).mean(-1, keepdim=True) + layer.norm.eps), a


def random_layer(attention, scale="sqrt_d", train_length=512):
    config = GauConfig(vocab_size=20, hidden_size=12, intermediate_size=16, qk_dim=6, gau_attention=attention,
                       max_position_embeddings=5, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                       nlpx_attention_scale=scale, nlpx_scale_train_length=train_length)
    torch.manual_seed(0)
    layer = GauLayer(config).double().eval()
    with torch.no_grad():  # non-trivial scale, offset and bias (their init is 1, 0, 0)
        for p in layer.parameters():
            p.normal_(0, 0.5)
    return layer


def run_layer(layer, x, mask):
    from nlpx.models.gau_modeling import rotary_table

    allowed = mask.bool()[:, None, :]
    n = allowed.sum(-1, keepdim=True).double()
    with torch.no_grad():
        return layer(x, allowed, n, rotary_table(x.shape[1], layer.s, x.device, x.dtype))


@pytest.mark.parametrize("attention,scale", [("softmax", "sqrt_d"), ("softmax", "log_n"), ("relu2", "sqrt_d")])
def test_a_gau_layer_computes_the_formulas(attention, scale):
    layer = random_layer(attention, scale, train_length=4)
    torch.manual_seed(1)
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    got, got_a = run_layer(layer, x, mask)
    want, want_a = reference_layer(layer, x, mask, attention=attention,
                                   scale_train_length=4 if scale == "log_n" else None, max_distance=4)
    assert torch.allclose(got_a.double(), want_a, atol=1e-12, rtol=0)
    assert torch.allclose(got, want, atol=1e-12, rtol=0)
    assert torch.equal(got_a[1, :, 5:], torch.zeros(7, 2, dtype=got_a.dtype))  # padding gets exactly 0


def test_the_relu2_bias_is_clamped_beyond_the_longest_distance():
    layer = random_layer("relu2")
    x = torch.randn(1, 9, 12, dtype=torch.float64)  # distances up to 8 > max_position_embeddings - 1 = 4
    got, _ = run_layer(layer, x, torch.ones(1, 9, dtype=torch.long))
    want, _ = reference_layer(layer, x, torch.ones(1, 9, dtype=torch.long), attention="relu2", max_distance=4)
    assert torch.allclose(got, want, atol=1e-12, rtol=0)


def test_log_n_equals_sqrt_d_at_the_training_length_and_scales_shorter_rows():
    family, plain = model("gau", "model.attention_scale=sqrt_d")
    _, scaled = model("gau", "model.scale_train_length=24")  # log_n: gau's default
    assert scaled.config.nlpx_attention_scale == "log_n" and plain.config.nlpx_attention_scale == "sqrt_d"
    scaled.load_state_dict(plain.state_dict())
    x, mask = ids(3, 24)
    assert torch.equal(hidden(family, plain, x, mask), hidden(family, scaled, x, mask))
    x, mask = ids(3, 24, lengths=[24, 10, 17])
    a, b = hidden(family, plain, x, mask), hidden(family, scaled, x, mask)
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1, :10], b[1, :10])


def test_padding_changes_nothing_for_the_real_tokens():
    family, m = model("gau")
    x, mask = ids(2, 16, lengths=[16, 9])
    padded = hidden(family, m, x, mask)[1, :9]
    alone = hidden(family, m, x[1:, :9], mask[1:, :9])[0]
    assert torch.allclose(padded, alone, atol=1e-6, rtol=0)


def test_the_mlm_head_shares_the_token_table_and_an_export_reloads_through_the_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

    config = GauConfig(vocab_size=30, hidden_size=16, intermediate_size=32, qk_dim=8, embedding_size=8)
    mlm = GauForMaskedLM(config)
    assert mlm.cls.decoder.weight is mlm.gau.embeddings.word_embeddings.weight
    mlm.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "nlpx_gau"
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is GauModel and torch.equal(base.embeddings.project.weight, mlm.gau.embeddings.project.weight)
    assert type(AutoModelForMaskedLM.from_pretrained(tmp_path)) is GauForMaskedLM
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert classifier(input_ids=torch.tensor([[1, 2, 3]])).logits.shape == (1, 3)


def test_the_cli_start_up_does_not_import_nlpx_models_or_transformers():
    code = "import sys, nlpx.cli; print(sorted(m for m in ('nlpx.models', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("size", ["tiny", "base"])
def test_a_size_preset_has_twice_the_layers_and_about_bert_s_parameters(size):
    from hydra.utils import get_class

    cfg = compose(["model=gau", f"model.size={size}"])
    bert = compose(["model=bert", f"model.size={size}"])
    assert cfg.model.num_hidden_layers == 2 * bert.model.num_hidden_layers
    family, bert_family = (get_class(c.model._target_)(c.model) for c in (cfg, bert))
    with torch.device("meta"):
        gau = family.build(family.hf_config(30522, 0), False)
        name, reference = family.reference(30522, 0)
        plain_bert = bert_family.build(bert_family.hf_config(30522, 0), False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert name == f"BERT with {bert.model.num_hidden_layers} layers of {bert.model.hidden_size}"
    assert count(reference) == count(plain_bert)  # the model=bert of that size
    assert abs(count(gau) / count(reference) - 1) < 0.05


@pytest.mark.parametrize("overrides,message", [
    (["model.num_attention_heads=4"], "model.num_attention_heads=4: not read by model=gau"),
    (["model.intermediate_size=512"], "model.intermediate_size=512: not read by model=gau"),
    (["model.attention_pattern=local"], "model.attention_pattern=local: not available for model=gau"),
    (["model.gau_attention=relu2", "model.attention_scale=log_n"], "relu2 has no softmax to scale"),
    (["model.gau_attention=cosine"], r"model.gau_attention=cosine: not valid \(valid: softmax, relu2\)"),
])
def test_what_gau_does_not_read_is_an_error(overrides, message):
    from hydra.utils import get_class

    with pytest.raises(UserError, match=message):
        cfg = compose(["model=gau", *overrides], runnable=False)  # validates
        get_class(cfg.model._target_)(cfg.model)
