"""MLM on gathered positions equals transformers' full-sequence loss; NSP equals BertForPreTraining's."""

import torch
from omegaconf import OmegaConf
from transformers import BertConfig, BertForMaskedLM, BertForPreTraining

from nlpx.models.bert import BertFamily
from nlpx.objectives.mlm import MaskedLM, MaskedLMWithNSP


def batch(vocab=50, b=3, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (b, t), generator=g)
    labels = torch.full((b, t), -100)
    pick = torch.rand(b, t, generator=g) < 0.3
    labels[pick] = ids[pick]
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 9:] = 0
    labels[1, 9:] = -100
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": labels, "next_sentence_label": torch.tensor([0, 1, 1])}


def tiny_config():
    return BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def family():
    return BertFamily(OmegaConf.create({"pretrained": None}))


def test_gathered_mlm_loss_equals_full_projection_loss():
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config()).eval()
    b = batch()
    ours = MaskedLM(None, family())(model, b)
    theirs = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                   token_type_ids=b["token_type_ids"], labels=b["labels"])
    torch.testing.assert_close(ours["loss"], theirs.loss, rtol=1e-6, atol=1e-6)
    selected = b["labels"] != -100
    expected_acc = (theirs.logits.argmax(-1)[selected] == b["labels"][selected]).float().mean()
    torch.testing.assert_close(ours["mlm_acc"], expected_acc)
    assert ours["_mlm_count"] == int(selected.sum())


def test_mlm_plus_nsp_equals_bert_for_pretraining():
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config()).eval()
    b = batch(seed=1)
    ours = MaskedLMWithNSP(None, family())(model, b)
    theirs = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                   token_type_ids=b["token_type_ids"], labels=b["labels"],
                   next_sentence_label=b["next_sentence_label"])
    torch.testing.assert_close(ours["loss"], theirs.loss, rtol=1e-6, atol=1e-6)
    nsp = torch.nn.functional.cross_entropy(theirs.seq_relationship_logits, b["next_sentence_label"])
    torch.testing.assert_close(ours["nsp_loss"], nsp)


def test_gradients_match_too():
    torch.manual_seed(0)
    model = BertForMaskedLM(tiny_config()).eval()
    b = batch(seed=2)
    MaskedLM(None, family())(model, b)["loss"].backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
          token_type_ids=b["token_type_ids"], labels=b["labels"]).loss.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(ours[n], p.grad, rtol=1e-5, atol=1e-7, msg=n)
