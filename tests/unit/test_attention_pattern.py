"""model.attention_pattern: the patterns' key sets by hand; local with a window of the whole
sequence is full attention bit for bit; a query's attention weights are exactly 0 outside its
pattern; log_n counts each query's keys within it; the export keeps it."""

import math

import pytest
import torch

from nlpx.config import compose
from nlpx.errors import UserError
from nlpx.models.attention_pattern import allowed_keys
from nlpx.models.attention_scale import key_counts, restore
from tests.unit.test_attention_scale import ids, model

def test_the_patterns_key_sets():
    def keys(*args, **kw):
        return [torch.nonzero(row).flatten().tolist() for row in allowed_keys(*args, **kw)]

    assert keys(5, "local", 1) == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4]]
    assert keys(7, "dilated", 2, dilation=2)[3] == [1, 3, 5] and keys(7, "dilated", 2, dilation=2)[0] == [0, 2, 4]
    glob = keys(6, "global_local", 1, global_tokens=1)
    assert glob[0] == [0, 1, 2, 3, 4, 5] and glob[4] == [0, 3, 4, 5] and glob[5] == [0, 4, 5]
    assert allowed_keys(4, "full", 1).all()


@pytest.mark.parametrize("name", ["bert", "roformer"])  # SDPA's bool mask; RoFormer's eager additive one
def test_local_with_a_window_of_the_sequence_is_full_attention(name):
    family, full = model(name)
    _, local = model(name, "model.attention_pattern=local", "model.window=19")
    local.load_state_dict(full.state_dict())
    x, mask = ids(3, 20, lengths=[20, 7, 13])
    with torch.no_grad():
        a = family.encoder(full)(input_ids=x, attention_mask=mask).last_hidden_state
        b = family.encoder(local)(input_ids=x, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert torch.equal(a[real], b[real])  # padding positions' outputs are padding's (never read)
    _, narrow = model(name, "model.attention_pattern=local", "model.window=3")
    narrow.load_state_dict(full.state_dict())
    with torch.no_grad():
        c = family.encoder(narrow)(input_ids=x, attention_mask=mask).last_hidden_state
    assert not torch.allclose(a[real], c[real])


@pytest.mark.parametrize("pattern", ["local", "dilated", "global_local"])
def test_a_query_never_attends_outside_its_pattern(pattern):
    family, m = model("bert", f"model.attention_pattern={pattern}", "model.window=2", "model.dilation=3",
                      "model.global_tokens=1", "model.attn_implementation=eager")
    x, mask = ids(2, 16, lengths=[16, 11])
    with torch.no_grad():
        att = family.encoder(m)(input_ids=x, attention_mask=mask, output_attentions=True).attentions
    allowed = allowed_keys(16, pattern, 2, 3, 1)[None, None] & mask.bool()[:, None, None, :]
    for layer in att:
        rows = mask.bool()[:, None, :, None].expand_as(layer) & ~allowed.expand_as(layer)
        assert layer[rows].abs().max() == 0  # real queries: exactly nothing outside the pattern
        sums = layer.sum(-1)[mask.bool()[:, None, :].expand(-1, layer.shape[1], -1)]
        torch.testing.assert_close(sums, torch.ones_like(sums))


def test_log_n_counts_each_querys_keys_within_its_pattern():
    x, mask = ids(1, 10)
    family, m = model("bert", "model.attention_pattern=local", "model.window=2", "model.attention_scale=log_n",
                      "model.scale_train_length=5", "model.attn_implementation=eager")
    seen = {}
    attention = family.base(m).encoder.layer[0].attention.self
    attention.register_forward_pre_hook(lambda mod, a, kw: seen.update(mask=kw["attention_mask"]), with_kwargs=True)
    with torch.no_grad():
        family.encoder(m)(input_ids=x, attention_mask=mask)
    assert key_counts(seen["mask"], 1, 10).tolist() == [[3, 4, 5, 5, 5, 5, 5, 5, 4, 3]]
    factor = attention.query._nlpx_factor.flatten()
    assert factor[2].item() == 1.0 and math.isclose(factor[0].item(), math.log(3) / math.log(5), rel_tol=1e-6)


def test_the_export_keeps_the_pattern_and_nlpx_puts_it_back(tmp_path):
    from transformers import AutoModel

    family, m = model("electra", "model.attention_pattern=global_local", "model.window=2")
    m.save_pretrained(tmp_path)
    x, mask = ids(2, 12, lengths=[12, 8])
    with torch.no_grad():
        expected = family.encoder(m)(input_ids=x, attention_mask=mask).last_hidden_state[mask.bool()]
        auto = AutoModel.from_pretrained(tmp_path).eval()
        restore(auto)
        assert torch.equal(auto(input_ids=x, attention_mask=mask).last_hidden_state[mask.bool()], expected)


def test_families_without_patterns_and_bad_values_say_so():
    with pytest.raises(UserError, match="model.attention_pattern=local: not available for model=deberta"):
        model("deberta", "model.attention_pattern=local")
    with pytest.raises(UserError, match="model.attention_pattern=strided: not valid"):
        compose(["model=bert", "model.attention_pattern=strided"])
    with pytest.raises(UserError, match="model.window"):
        compose(["model=bert", "model.attention_pattern=local", "model.window=0"])
