"""model=xlnet's family: the config it builds and a permutation-LM step."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from nlpx.data.permutation import plm_collate
from nlpx.errors import UserError
from nlpx.models.xlnet import XlnetFamily


def cfg(**values):
    base = dict(pretrained=None, position_embedding="relative", attention_scale="sqrt_d", attention_pattern="full",
                num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, hidden_act="gelu",
                hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02,
                layer_norm_eps=1e-12, attn_implementation="eager")
    return OmegaConf.create({**base, **values})


def test_config_names_every_field_and_a_plm_step_trains():
    family = XlnetFamily(cfg())
    config = family.hf_config(vocab_size=60, pad_token_id=0)
    assert (config.n_layer, config.d_model, config.n_head, config.d_inner, config.dropout, config.mem_len) == \
        (2, 32, 2, 64, 0.1, None)
    assert (config.ff_activation, config.initializer_range, config.layer_norm_eps, config.use_mems_eval,
            config.use_mems_train, config.vocab_size, config.pad_token_id) == ("gelu", 0.02, 1e-12, False, False, 60, 0)
    torch.manual_seed(0)
    model = family.build(config, False)
    batch = plm_collate([{"input_ids": [10, 11, 12, 13, 3, 2], "token_type_ids": [0, 0, 0, 0, 0, 2],
                          "ranks": [0, -1, 1, -1, -1, -1]}], 0)
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], perm_mask=batch["perm_mask"],
                target_mapping=batch["target_mapping"], labels=batch["labels"])
    assert out.logits.shape == (1, 2, 60) and torch.isfinite(out.loss)
    out.loss.backward()
    assert family.embedding_tables(model)["word"].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("values,message", [
    ({"attention_probs_dropout_prob": 0.0}, "one dropout"),
    ({"attn_implementation": "sdpa"}, "eager attention only"),
    ({"position_embedding": "learned"}, "not available for model=xlnet"),
])
def test_settings_xlnet_has_no_home_for_are_errors(values, message):
    with pytest.raises(UserError, match=message):
        XlnetFamily(cfg(**values)).hf_config(60, 0)


def test_xlnet_pretrains_with_plm_only_and_plm_needs_xlnet():
    from nlpx.models.bert import BertFamily
    from nlpx.objectives.clm import CausalLM
    from nlpx.objectives.mlm import MaskedLM
    from nlpx.objectives.plm import PermutationLM

    with pytest.raises(UserError, match="model=xlnet pretrains with its permutation LM"):
        MaskedLM.check_family(XlnetFamily(cfg()), "mlm")
    with pytest.raises(UserError, match="needs a decoder-only model"):
        CausalLM.check_family(XlnetFamily(cfg()), "clm")
    bert = BertFamily(OmegaConf.create({"pretrained": None}))
    with pytest.raises(UserError, match="use model=xlnet"):
        PermutationLM.check_family(bert, "plm")
    PermutationLM.check_family(XlnetFamily(cfg()), "plm")


def test_left_padding_keeps_the_classifier_on_the_summary_token():
    """Fine-tuning batches pad on the tokenizer's side: on the left, a short row's logits equal its
    logits alone (XLNet classifies from the last position); padded on the right they would not."""
    import numpy as np
    from transformers import XLNetConfig, XLNetForSequenceClassification

    from nlpx.data.encode import Encoded
    from nlpx.finetune.data import Batches

    torch.manual_seed(0)
    model = XLNetForSequenceClassification(XLNetConfig(vocab_size=40, d_model=16, n_layer=2, n_head=2, d_inner=32,
                                                       mem_len=None, num_labels=3)).eval()
    rows = [np.array([10, 11, 12, 13, 3, 2]), np.array([14, 15, 3, 2])]
    enc = Encoded(rows, [np.array([0, 0, 0, 0, 0, 2]), np.array([0, 0, 0, 2])], np.array([0, 1]))
    alone = [model(input_ids=torch.tensor([r]), token_type_ids=torch.tensor([t])).logits[0]
             for r, t in zip(enc.input_ids, enc.token_type_ids)]
    left = Batches(enc, pad_id=0, left=True)([0, 1])
    assert left["input_ids"][1].tolist() == [0, 0, 14, 15, 3, 2] and left["attention_mask"][1].tolist() == [0, 0, 1, 1, 1, 1]
    assert left["token_type_ids"][1].tolist() == [0, 0, 0, 0, 0, 2]
    logits = model(**{k: left[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    torch.testing.assert_close(logits, torch.stack(alone), rtol=1e-5, atol=1e-6)
    right = Batches(enc, pad_id=0)([0, 1])
    wrong = model(**{k: right[k] for k in ("input_ids", "attention_mask", "token_type_ids")}).logits
    assert not torch.allclose(wrong[1], alone[1], atol=1e-3)


def test_the_exported_tokenizer_has_xlnets_layout_and_the_training_one_is_unchanged(tmp_path):
    from transformers import AutoTokenizer

    from nlpx.data.tokenizer import load_tokenizer, train_tokenizer

    trained = train_tokenizer(["the cat sat on the mat", "a dog ran"] * 5, kind="wordpiece", vocab_size=60,
                              lowercase=True)
    XlnetFamily(cfg()).export_tokenizer(trained).save_pretrained(str(tmp_path))
    tok = load_tokenizer(tmp_path, key="model.pretrained")
    assert tok.padding_side == "left" and type(tok) is type(AutoTokenizer.from_pretrained(str(tmp_path)))
    single, pair = tok("the cat"), tok("the cat", "a dog")
    ids = trained("the cat", add_special_tokens=False)["input_ids"]
    cls, sep = tok.cls_token_id, tok.sep_token_id
    assert single["input_ids"] == ids + [sep, cls] and single["token_type_ids"] == [0] * len(ids) + [0, 2]
    b = trained("a dog", add_special_tokens=False)["input_ids"]
    assert pair["input_ids"] == ids + [sep] + b + [sep, cls]
    assert pair["token_type_ids"] == [0] * (len(ids) + 1) + [1] * (len(b) + 1) + [2]
    batch = tok(["the cat", "a"], padding=True)
    assert batch["input_ids"][1][0] == tok.pad_token_id and batch["input_ids"][1][-1] == cls
    assert trained("the cat")["input_ids"] == [cls] + ids + [sep] and trained.padding_side == "right"
