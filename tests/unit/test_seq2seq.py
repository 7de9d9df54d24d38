"""UniLM's seq2seq mask and losses, SimBERT's contrastive term (nlpx/objectives/seq2seq.py), and
the pair batches (nlpx/embeddings/seq2seq_data.py): exact values on small tensors."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from nlpx.embeddings.data import EmbeddingData
from nlpx.embeddings.pairs import Pair
from nlpx.embeddings.seq2seq_data import (Seq2SeqCollator, causal_targets, distinct_pairs, masked_targets,
                                          similar_pairs, split_heldout)
from nlpx.errors import UserError
from nlpx.objectives.contrastive import SentenceEncoder
from nlpx.objectives.seq2seq import SimBERT, UniLM, additive_mask, contrastive_loss, lm_loss, seq2seq_allowed

# [CLS] a1 [SEP] b1 b2 [SEP] [PAD]
TYPES = torch.tensor([[0, 0, 0, 1, 1, 1, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
IDS = torch.tensor([[101, 7, 102, 8, 9, 102, 0]])


def test_the_seq2seq_mask_written_out():
    expected = torch.tensor([
        # keys: CLS a1 SEP b1 b2 SEP PAD
        [1, 1, 1, 0, 0, 0, 0],  # CLS: segment 0 only
        [1, 1, 1, 0, 0, 0, 0],  # a1
        [1, 1, 1, 0, 0, 0, 0],  # SEP (first)
        [1, 1, 1, 1, 0, 0, 0],  # b1: A and itself
        [1, 1, 1, 1, 1, 0, 0],  # b2: A, b1, itself
        [1, 1, 1, 1, 1, 1, 0],  # SEP (last): A and all of B
        [1, 1, 1, 0, 0, 0, 0],  # padding query (type 0): its row is never used; never a key
    ], dtype=torch.bool)
    assert torch.equal(seq2seq_allowed(TYPES, MASK)[0], expected)


def test_additive_mask_is_zero_or_the_dtypes_minimum():
    allowed = seq2seq_allowed(TYPES, MASK)
    for dtype in (torch.float32, torch.bfloat16):
        m = additive_mask(allowed, dtype)
        assert m.shape == (1, 1, 7, 7) and m.dtype == dtype
        assert torch.equal(m[0, 0] == 0, allowed[0])
        assert torch.all(m[0, 0][~allowed[0]] == torch.finfo(dtype).min)


def test_causal_targets_are_the_next_token_of_segment_one():
    labels = causal_targets(IDS, TYPES, MASK)
    # position 2 ([SEP] of A) predicts b1, 3 predicts b2, 4 predicts the closing [SEP]
    assert labels.tolist() == [[-100, -100, 8, 9, 102, -100, -100]]


def test_masked_targets_choose_only_segment_one_and_at_least_one():
    ids = torch.tensor([[101, 7, 102, 8, 9, 10, 11, 102, 0, 0], [101, 5, 6, 102, 12, 102, 0, 0, 0, 0]])
    types = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    masked, labels = masked_targets(ids, types, mask, mask_id=103, ratio=0.4, generator=torch.Generator().manual_seed(3))
    chosen = labels != -100
    assert chosen.sum(1).tolist() == [2, 1]  # round(0.4 x 5) = 2; round(0.4 x 2) = 1
    assert torch.all(types.bool()[chosen]) and torch.all(masked[chosen] == 103)
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(masked[~chosen], ids[~chosen])


def test_lm_loss_by_hand():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [1.0, 3.0, 0.0]]])
    labels = torch.tensor([[0, -100, 1]])

    def nll(row, y):
        return -(row[y] - math.log(sum(math.exp(v) for v in row)))

    expected = (nll([2.0, 0.0, -1.0], 0) + nll([1.0, 3.0, 0.0], 1)) / 2
    assert lm_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_loss_by_hand():
    v = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])  # unit vectors: a0, b0, a1, b1
    scale = 5.0
    total = 0.0
    for i in range(4):
        logits = {j: scale * float(v[i] @ v[j]) for j in range(4) if j != i}
        top = max(logits.values())
        lse = top + math.log(sum(math.exp(x - top) for x in logits.values()))
        total += lse - logits[i ^ 1]
    assert contrastive_loss(v * 3.0, scale).item() == pytest.approx(total / 4, rel=1e-6)  # norms do not matter


def tiny_lm(family: str, dropout: float = 0.0):
    import transformers as tf

    torch.manual_seed(0)
    common = dict(vocab_size=120, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if family == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(**common))
    if family == "roformer":
        return tf.RoFormerForMaskedLM(tf.RoFormerConfig(**common, embedding_size=16))
    return tf.ElectraForMaskedLM(tf.ElectraConfig(**common, embedding_size=16))


@pytest.mark.parametrize("family", ["bert", "roformer", "electra"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_under_the_mask_a_is_encoded_alone_and_b_sees_no_later_token(family, attn):
    lm = tiny_lm(family).eval()
    lm.set_attn_implementation(attn)
    a = [101, 11, 12, 13, 102]
    b = [21, 22, 23, 102]
    ids = torch.tensor([a + b])
    types = torch.tensor([[0] * len(a) + [1] * len(b)])
    mask = additive_mask(seq2seq_allowed(types, torch.ones_like(ids)), torch.float32)
    with torch.no_grad():
        full = lm.base_model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        alone = lm.base_model(input_ids=torch.tensor([a]), token_type_ids=torch.zeros(1, len(a), dtype=torch.long)
                              ).last_hidden_state
        changed = ids.clone()
        changed[0, -2] = 50  # the last token of B before [SEP]
        other = lm.base_model(input_ids=changed, token_type_ids=types, attention_mask=mask).last_hidden_state
    assert torch.allclose(full[0, :len(a)], alone[0], atol=1e-5)
    n = len(a) + len(b) - 2  # every position before the changed one is unchanged
    assert torch.allclose(full[0, :n], other[0, :n], atol=1e-6)
    assert not torch.allclose(full[0, n:], other[0, n:], atol=1e-3)


def cfg(**values):
    base = dict(name="simbert", lm="causal", mask_ratio=0.15, min_score=4.0, heldout=0.0, mlp=False, batch_size=2,
                max_length=32, eval_batch_size=4, scale=30.0, contrastive_weight=0.5)
    return OmegaConf.create({**base, **values})


class Tok:
    """A word-level stand-in for a BERT tokenizer (pairs, truncation, padding, token types)."""

    pad_token_id, cls_token_id, sep_token_id, mask_token_id = 0, 1, 2, 3

    def __call__(self, first, second, **kw):
        rows = []
        for a, b in zip(first, second):
            wa = [10 + len(w) for w in a.split()]
            wb = [10 + len(w) for w in b.split()]
            rows.append(([1] + wa + [2] + wb + [2], [0] * (len(wa) + 2) + [1] * (len(wb) + 1)))
        width = max(len(r[0]) for r in rows)
        ids = torch.tensor([r[0] + [0] * (width - len(r[0])) for r in rows])
        types = torch.tensor([r[1] + [0] * (width - len(r[1])) for r in rows])
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": (ids != 0).long()}


def test_collator_orders_both_directions_and_labels_the_second_sentence():
    batch = Seq2SeqCollator(Tok(), 32, both_directions=True)([("aa b", "ccc"), ("d", "ee ff")])
    assert batch["input_ids"].tolist() == [[1, 12, 11, 2, 13, 2], [1, 13, 2, 12, 11, 2],
                                           [1, 11, 2, 12, 12, 2], [1, 12, 12, 2, 11, 2]]
    assert batch["labels"][0].tolist() == [-100, -100, -100, 13, 2, -100]
    assert len(batch["views"][0]["input_ids"]) == 4


@pytest.mark.parametrize("family", ["bert", "roformer", "electra"])
def test_simbert_loss_is_generation_plus_weighted_contrastive(family):
    lm = tiny_lm(family)
    encoder = SentenceEncoder(lm.base_model, "mean", lm=lm)
    objective = SimBERT(cfg(), "pairs")
    objective.attach(encoder)
    batch = Seq2SeqCollator(Tok(), 32, both_directions=True)([("aa b", "ccc dd"), ("d e", "ee ff g")])
    lm.eval()
    out = objective(encoder, batch)
    with torch.no_grad():
        logits = lm(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                    attention_mask=additive_mask(seq2seq_allowed(batch["token_type_ids"], batch["attention_mask"]),
                                                 torch.float32)).logits
        gen = lm_loss(logits, batch["labels"])
        # each sequence's sentence vector: the mean of [CLS] A [SEP] encoded alone
        vectors = []
        for ids, types, mask in zip(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]):
            first = ids[(types == 0) & (mask == 1)]
            vectors.append(lm.base_model(input_ids=first[None]).last_hidden_state[0].mean(0))
        con = contrastive_loss(torch.stack(vectors), 30.0)
    assert out["lm_loss"].item() == pytest.approx(gen.item(), rel=1e-5)
    assert out["contrastive_loss"].item() == pytest.approx(con.item(), rel=1e-4)
    assert out["loss"].item() == pytest.approx(gen.item() + 0.5 * con.item(), rel=1e-5)
    assert out["lm_targets"].item() == (batch["labels"] != -100).sum()


def test_similar_pairs_threshold_triples_and_heldout_split():
    data = EmbeddingData("pairs", [Pair("a", "b", 4.5), Pair("c", "d", 3.9), Pair("e", "f", 4.0)], "x")
    assert similar_pairs(data, 4.0) == [("a", "b"), ("e", "f")]
    with pytest.raises(UserError, match="min_score=5.0"):
        similar_pairs(data, 5.0)
    assert similar_pairs(EmbeddingData("triples", [("p", "q", "r"), ("s", "t")], "y"), 4.0) == [("p", "q"), ("s", "t")]
    # sets on different scales: a threshold per set, read in the order the sets were read
    two = EmbeddingData("pairs", [Pair("a", "b", 4.5), Pair("c", "d", 3.9), Pair("m", "n", 1.0), Pair("o", "p", 0.0)],
                        "x", {"sets": {"stsb-train": 2, "mrpc": 2}})
    assert similar_pairs(two, {"stsb-train": 4.0, "mrpc": 1}) == [("a", "b"), ("m", "n")]
    assert similar_pairs(two, 1.0) == [("a", "b"), ("c", "d"), ("m", "n")]
    with pytest.raises(UserError, match=r"a threshold for each set of pairs read \(stsb-train, mrpc\)"):
        similar_pairs(two, {"stsb-train": 4.0})
    # one number over sets on different scales leaves MRPC out: an error naming the set, not silence
    with pytest.raises(UserError, match=r"no pair of mrpc scores that high; .*min_score=\{stsb-train:4, mrpc:4\}"):
        similar_pairs(two, 4.0)
    kept, dropped = distinct_pairs([("A b", "c"), ("c", "a  B"), ("x", "y"), ("a b", "c")])
    assert kept == [("A b", "c"), ("x", "y")] and dropped == 2
    pairs = [(str(i), str(i)) for i in range(20)]
    train, held = split_heldout(pairs, 0.25, seed=1)
    assert len(held) == 5 and sorted(train + held) == sorted(pairs) and not set(train) & set(held)
    assert split_heldout(pairs, 0.25, seed=1) == (train, held) and split_heldout(pairs, 0.25, seed=2) != (train, held)


def test_bad_options_and_unsupported_checkpoints():
    with pytest.raises(UserError, match="objective.lm=bogus"):
        UniLM(cfg(lm="bogus", name="unilm"), "pairs")
    with pytest.raises(UserError, match="lm=causal"):
        SimBERT(cfg(lm="masked"), "pairs")
    with pytest.raises(UserError, match="objective.heldout"):
        UniLM(cfg(heldout=0.5, name="unilm"), "pairs")
    import transformers as tf

    roberta = tf.RobertaForMaskedLM(tf.RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32))
    with pytest.raises(UserError, match="roberta checkpoints are not supported"):
        UniLM(cfg(name="unilm"), "pairs").attach(SentenceEncoder(roberta.base_model, "mean", lm=roberta))
