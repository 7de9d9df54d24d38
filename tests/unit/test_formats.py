"""Input formats of RoBERTa's ablation and ALBERT's SOP: sentence pairs, doc sentences, sentence
order; word starts carried through every format; tokens per batch of the short formats."""

import itertools

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nlpx.data.cache import PreparedCorpus
from nlpx.data.corpus import TokenizedCorpus
from nlpx.data.dataset import Collator, StreamSampler
from nlpx.data.instances import (DocSentencesInstances, PackedInstances, SegmentPairInstances,
                                 SentenceOrderInstances, SentencePairInstances)
from nlpx.data.tokenizer import train_tokenizer
from nlpx.errors import UserError
from nlpx.data.formats import FORMATS, batch_size_for, build_instances, check_objective_settings
from nlpx.train.datamodule import PretrainDataModule
from tests.unit.test_instances import random_docs

CLS, SEP = 1, 2


def doc_of(tokens) -> np.ndarray:
    """Fixture token ids encode their document and position: 100 + 1000 * doc + position."""
    return (np.asarray(tokens) - 100) // 1000


def pos_of(tokens) -> np.ndarray:
    return (np.asarray(tokens) - 100) % 1000


def starts_word(position) -> np.ndarray:
    """The fixture's word starts: a word is three tokens, counted from the document start."""
    return np.asarray(position) % 3 == 0


def random_corpus(seed: int, n_docs: int, max_sent_len: int = 30, empty_docs=()) -> TokenizedCorpus:
    """test_instances' corpus, with the fixture's word starts."""
    docs = random_docs(seed, n_docs, max_sent_len, empty_docs)
    flags = [[list(starts_word(pos_of(s))) for s in doc] for doc in docs]
    return TokenizedCorpus.from_documents(docs, word_starts=flags)


def segments(ids: np.ndarray) -> list[np.ndarray]:
    """The text segments between [CLS] ... [SEP] (fixture text never contains SEP)."""
    assert ids[0] == CLS and ids[-1] == SEP
    seps = np.flatnonzero(ids == SEP)
    bounds = [0, *seps]
    return [ids[a + 1:b] for a, b in itertools.pairwise(bounds)]


def check_word_start(ex: dict) -> None:
    """word_start is aligned with input_ids: specials are words, each segment's first token starts
    a word, and elsewhere the corpus flag is carried unchanged."""
    ids, ws = ex["input_ids"], ex["word_start"]
    assert ws.dtype == bool and ws.shape == ids.shape
    special = np.isin(ids, [CLS, SEP])
    assert ws[special].all()
    first = np.zeros(ids.size, dtype=bool)
    first[1:] = special[:-1]
    text = ~special
    np.testing.assert_array_equal(ws[text & first], True)
    np.testing.assert_array_equal(ws[text & ~first], starts_word(pos_of(ids[text & ~first])))


# ---------------------------------------------------------------- doc_sentences


@pytest.mark.parametrize("seq_len", [3, 17, 64])
def test_doc_sentences_never_cross_a_document_and_lose_nothing(seq_len):
    corpus = random_corpus(0, 40, empty_docs=(3, 39))
    inst = DocSentencesInstances(corpus, seq_len, CLS, SEP)
    L = seq_len - 2
    pieces = {d: [] for d in range(corpus.num_docs)}
    lengths = []
    for i in range(len(inst)):
        ex = inst.get(i, np.random.default_rng(i))
        (body,) = segments(ex["input_ids"])
        d = int(inst.example_doc[i])
        assert body.size >= 1 and np.all(doc_of(body) == d)  # one document only
        np.testing.assert_array_equal(ex["token_type_ids"], 0)
        check_word_start(ex)
        pieces[d].append(body)
        lengths.append(ex["input_ids"].size)
    for d in range(corpus.num_docs):
        doc = corpus.doc(d)
        assert len(pieces[d]) == -(-doc.size // L)  # empty documents give no example
        if pieces[d]:
            np.testing.assert_array_equal(np.concatenate(pieces[d]), doc)  # in order, all of it
            assert all(p.size == L for p in pieces[d][:-1])  # full pieces until the document ends
    assert inst.mean_length == pytest.approx(np.mean(lengths))


def test_doc_sentences_small_exact():
    corpus = TokenizedCorpus.from_documents([[[5, 6], [7]], [[8, 9, 10, 11]]])
    inst = DocSentencesInstances(corpus, 5, CLS, SEP)
    got = [inst.get(i)["input_ids"].tolist() for i in range(len(inst))]
    # full_sentences would give [CLS 5 6 7 SEP], [CLS SEP 8 9 SEP], ...: here doc 1 starts afresh
    assert got == [[CLS, 5, 6, 7, SEP], [CLS, 8, 9, 10, SEP], [CLS, 11, SEP]]


# ---------------------------------------------------------------- sentence_pair_nsp


def test_sentence_pairs_are_single_sentences_with_nsp_labels():
    corpus = random_corpus(3, 60, empty_docs=(7,))
    inst = SentencePairInstances(corpus, 128, CLS, SEP)  # 30-token sentences: no truncation
    so = corpus.sent_offsets
    sentence_at = {int(so[s]): s for s in range(len(so) - 1)}
    sent_doc = np.repeat(np.arange(corpus.num_docs), np.diff(corpus.doc_sents))
    # one example per sentence that has a next sentence in its document
    assert len(inst) == sum(max(int(n) - 1, 0) for n in np.diff(corpus.doc_sents))
    labels = []
    for epoch in range(35):
        for idx in range(len(inst)):
            ex, b_sent = inst.get_with_source(idx, np.random.default_rng([4, epoch, idx]))
            labels.append(int(ex["next_sentence_label"]))
            if epoch >= 3:
                continue  # the layout is checked on three epochs, the label balance on all
            a, b = segments(ex["input_ids"])
            s = int(inst.first_sent[idx])
            np.testing.assert_array_equal(a, corpus.tokens[so[s]:so[s + 1]])  # A: one whole sentence
            t = sentence_at[int(corpus.doc_offsets[doc_of(b[0])] + pos_of(b[0]))]
            assert t == b_sent
            np.testing.assert_array_equal(b, corpus.tokens[so[t]:so[t + 1]])  # B: one whole sentence
            if labels[-1] == 0:
                assert t == s + 1
            else:
                assert sent_doc[t] != sent_doc[s]
            np.testing.assert_array_equal(ex["token_type_ids"], [0] * (a.size + 2) + [1] * (b.size + 1))
            check_word_start(ex)
    assert len(labels) >= 10_000 and abs(np.mean(labels) - 0.5) < 0.02


def test_sentence_pairs_truncate_long_sentences():
    corpus = TokenizedCorpus.from_documents([[list(range(100, 130)), list(range(130, 150))], [[1100]]])
    inst = SentencePairInstances(corpus, 20, CLS, SEP, negative_prob=0.0)
    a, b = segments(inst.get(0, np.random.default_rng(0))["input_ids"])
    assert (a.size, b.size) == (9, 8)  # truncate_seq_pair to 17 tokens: the longer loses first


# ---------------------------------------------------------------- segment_pair_sop


def test_sop_labels_are_balanced_and_pairs_consecutive():
    corpus = random_corpus(5, 200, empty_docs=(2,))
    inst = SentenceOrderInstances(corpus, 128, CLS, SEP)  # 30-token sentences: no truncation
    so = corpus.sent_offsets
    sent_starts = set(so.tolist())
    labels = []
    assert len(inst) > 200
    for epoch in range(-(-10_000 // len(inst))):
        for idx in range(len(inst)):
            ex = inst.get(idx, np.random.default_rng([6, epoch, idx]))
            label = int(ex["next_sentence_label"])
            labels.append(label)
            if epoch >= 3:
                continue  # the layout is checked on three epochs, the label balance on all
            first, second = segments(ex["input_ids"])
            a, b = (second, first) if label == 1 else (first, second)
            chunk = corpus.tokens[so[inst.chunk_start_sent[idx]]:so[inst.chunk_end_sent[idx]]]
            # A then B is the whole chunk, split once: consecutive segments of one document
            np.testing.assert_array_equal(np.concatenate([a, b]), chunk)
            assert a.size >= 1 and b.size >= 1
            if inst.chunk_end_sent[idx] - inst.chunk_start_sent[idx] >= 2:
                assert corpus.doc_offsets[doc_of(b[0])] + pos_of(b[0]) in sent_starts  # at a boundary
            np.testing.assert_array_equal(ex["token_type_ids"], [0] * (first.size + 2) + [1] * (second.size + 1))
            check_word_start(ex)
    assert len(labels) >= 10_000 and abs(np.mean(labels) - 0.5) < 0.02


def test_a_swapped_example_is_exactly_the_reversed_in_order_one():
    corpus = random_corpus(7, 30, max_sent_len=60)
    in_order = SentenceOrderInstances(corpus, 40, CLS, SEP, swap_prob=0.0)  # some truncation too
    swapped = SentenceOrderInstances(corpus, 40, CLS, SEP, swap_prob=1.0)
    for idx in range(len(in_order)):
        for seed in range(5):
            x = in_order.get(idx, np.random.default_rng([seed, idx]))
            y = swapped.get(idx, np.random.default_rng([seed, idx]))
            assert int(x["next_sentence_label"]) == 0 and int(y["next_sentence_label"]) == 1
            a, b = segments(x["input_ids"])
            np.testing.assert_array_equal(y["input_ids"], np.concatenate([[CLS], b, [SEP], a, [SEP]]))
            n = b.size + 2
            np.testing.assert_array_equal(y["word_start"][1:n - 1], x["word_start"][a.size + 2:-1])
            np.testing.assert_array_equal(y["word_start"][n:-1], x["word_start"][1:a.size + 1])


def test_sop_needs_one_document_and_skips_one_token_chunks():
    corpus = TokenizedCorpus.from_documents([[[100]], [[1100, 1101], [1102]]])
    inst = SentenceOrderInstances(corpus, 64, CLS, SEP)
    assert len(inst) == 1 and inst.chunk_doc.tolist() == [1]
    got = {tuple(inst.get(0, np.random.default_rng(s))["input_ids"].tolist()) for s in range(40)}
    assert got == {(CLS, 1100, 1101, SEP, 1102, SEP), (CLS, 1102, SEP, 1100, 1101, SEP)}


# ---------------------------------------------------------------- word starts in the old formats


def test_packed_and_segment_pairs_carry_word_starts():
    corpus = random_corpus(8, 30)
    packed = PackedInstances(corpus, 50, CLS, SEP)
    for i in range(len(packed)):
        ex = packed.get(i)
        ids, ws = ex["input_ids"], ex["word_start"]
        assert ws.shape == ids.shape and ws[ids == SEP].all() and ws[0] and ws[1]
        text = np.flatnonzero(ids != SEP)[2:]  # after [CLS] and the possibly cut first word
        np.testing.assert_array_equal(ws[text], starts_word(pos_of(ids[text])))
    pairs = SegmentPairInstances(corpus, 40, CLS, SEP)
    for i in range(len(pairs)):
        check_word_start(pairs.get(i, np.random.default_rng(i)))


# ---------------------------------------------------------------- registry and tokens per batch


class Tok:
    cls_token_id, sep_token_id = CLS, SEP


def test_formats_registered_and_the_old_name_still_resumes(caplog):
    assert set(FORMATS) == {"full_sentences", "doc_sentences", "segment_pair_nsp", "sentence_pair_nsp",
                            "segment_pair_sop"}
    obj = OmegaConf.create({"format": "segment_pair", "nsp_negative_prob": 0.5})
    check_objective_settings(obj)  # the saved config of a run from before the rename
    assert "objective.format=segment_pair is now called segment_pair_nsp" in caplog.text
    corpus = random_corpus(0, 3)
    old = build_instances("segment_pair", corpus, Tok(), obj, 64)
    new = build_instances("segment_pair_nsp", corpus, Tok(), obj, 64)
    assert type(old) is SegmentPairInstances
    np.testing.assert_array_equal(old.get(0, np.random.default_rng(1))["input_ids"],
                                  new.get(0, np.random.default_rng(1))["input_ids"])
    with pytest.raises(UserError, match=r"^objective\.format=pairs: unknown input format \(valid: full_sentences"):
        build_instances("pairs", corpus, Tok(), obj, 64)


def mean_tokens_per_batch(inst, batch_size: int, batches: int = 60) -> float:
    sampler = StreamSampler(len(inst), batch_size=batch_size, total_batches=batches, seed=0)
    collate, keys, total = Collator(pad_id=0), list(sampler), 0
    for b in range(batches):
        examples = [{**inst.get(i, np.random.default_rng([0, e, i])), "labels": np.zeros(1)}
                    for e, i in keys[b * batch_size:(b + 1) * batch_size]]
        total += int(collate(examples)["attention_mask"].sum())
    return total / batches


@pytest.mark.parametrize("cls", [DocSentencesInstances, SentencePairInstances])
def test_short_formats_scale_the_batch_to_the_tokens_of_a_full_one(cls):
    corpus = random_corpus(9, 300, max_sent_len=20)
    seq_len, batch = 64, 16
    inst = cls(corpus, seq_len, CLS, SEP)
    assert inst.mean_length < 0.8 * seq_len  # short examples: the rule has something to do
    scaled = batch_size_for(inst, batch, seq_len)
    assert scaled == round(batch * seq_len / inst.mean_length) and scaled > batch
    assert abs(mean_tokens_per_batch(inst, scaled) / (batch * seq_len) - 1) < 0.03


def test_full_formats_keep_the_batch_size():
    corpus = random_corpus(9, 50)
    for inst in (PackedInstances(corpus, 64, CLS, SEP), SegmentPairInstances(corpus, 64, CLS, SEP),
                 SentenceOrderInstances(corpus, 64, CLS, SEP)):
        assert batch_size_for(inst, 16, 64) == 16


# ---------------------------------------------------------------- through the datamodule


@pytest.fixture(scope="module")
def prepared():
    tok = train_tokenizer(iter(["alpha beta gamma delta epsilon zeta eta theta ."] * 5),
                          kind="wordpiece", vocab_size=100, lowercase=True)
    g = np.random.default_rng(0)

    def split(n_docs):
        docs = [[list(g.integers(5, len(tok), size=int(g.integers(3, 15)))) for _ in range(4)]
                for _ in range(n_docs)]
        flags = [[list(g.random(len(s)) < 0.6) for s in d] for d in docs]
        return TokenizedCorpus.from_documents(docs, word_starts=flags)

    return PreparedCorpus(tok, split(40), split(4), None, {})


def cfg_for(fmt: str, strategy: str):
    return OmegaConf.create({
        "seed": 0, "data": {"seq_len": 48, "batch_size": 8, "num_workers": 0},
        "objective": {"_target_": "nlpx.objectives.mlm.MaskedLM", "format": fmt, "nsp_negative_prob": 0.5,
                      "masking": {"ratio": 0.15, "mask": 0.8, "random": 0.1, "keep": 0.1,
                                  "mode": "dynamic", "strategy": strategy, "span_p": 0.2,
                                  "span_max": 10}}})


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("strategy", ["token", "whole_word", "span", "none"])
def test_every_format_and_strategy_through_the_datamodule(prepared, fmt, strategy):
    dm = PretrainDataModule(cfg_for(fmt, strategy), prepared, total_batches=2)
    batch = next(iter(dm.train_dataloader()))
    expected = {"input_ids", "labels", "token_type_ids", "attention_mask"}
    if fmt.endswith(("_nsp", "_sop")):
        expected.add("next_sentence_label")
    if strategy == "span":
        expected |= {"sbo_left", "sbo_right", "sbo_pos"}
    assert set(batch) == expected  # word_start never reaches the model
    assert batch["input_ids"].shape[0] == dm.batch_size
    assert dm.batch_size == (8 if dm.train_set.instances.short_examples is False else
                             round(8 * 48 / dm.train_set.instances.mean_length))
    if strategy == "none":  # causal LM: inputs as they are, no MLM targets
        assert (batch["labels"] == -100).all()
        return
    assert (batch["labels"] != -100).any(dim=1).all()  # every example has a prediction
    if strategy == "span":
        inside = batch["sbo_pos"] >= 0
        assert torch.equal(inside, batch["labels"] != -100)
        rows = torch.arange(batch["input_ids"].shape[0])[:, None].expand_as(inside)
        for key in ("sbo_left", "sbo_right"):  # boundaries are real tokens of the same example
            pos = batch[key][inside]
            assert (pos >= 0).all() and (batch["attention_mask"][rows[inside], pos] == 1).all()
        assert (batch["sbo_left"][~inside] == -1).all() and (batch["sbo_pos"][~inside] == -1).all()
    val = next(iter(dm.val_dataloader()))
    assert set(val) == expected


@pytest.mark.parametrize("objective, message", [
    ({"format": "pairs"}, "objective.format=pairs: unknown input format"),
    ({"format": "full_sentences", "masking": {"ratio": 0.15, "mask": 0.8, "random": 0.1, "keep": 0.1,
                                              "mode": "dynamic", "strategy": "spans"}},
     "objective.masking.strategy=spans: unknown masking strategy"),
])
def test_prepare_corpus_checks_the_objective_before_reading_the_corpus(objective, message):
    from nlpx.data.prepare import prepare_corpus

    # the data target does not exist: reaching it would raise something else than a UserError
    cfg = OmegaConf.create({"objective": objective, "data": {"_target_": "no.such.Corpus"}})
    with pytest.raises(UserError, match=f"^{message}"):
        prepare_corpus(cfg)
