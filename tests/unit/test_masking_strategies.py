"""Masking strategies: token (unchanged), whole_word (words from the tokenizer) and span (SpanBERT
with Span Boundary Objective targets); word boundaries stored in the corpus cache."""

import hashlib

import numpy as np
import pytest
from omegaconf import OmegaConf
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from nlpx.data.cache import prepare, word_start_flags
from nlpx.data.corpus import TokenizedCorpus
from nlpx.data.dataset import TRAIN_STREAM, Collator, MaskedExamples
from nlpx.data.instances import PackedInstances, SegmentPairInstances
from nlpx.data.masking import MaskingConfig, mask_example, mask_spans, mask_tokens
from nlpx.data.tokenizer import train_tokenizer
from nlpx.errors import UserError
from nlpx.data.formats import masking_config

CLS, SEP, MASK = 1, 2, 3
RANDOM_IDS = np.arange(5000, 6000, dtype=np.int64)  # disjoint from the text ids: fates are visible


class FakeTokenizer:
    mask_token_id, all_special_ids = 4, [0, 1, 2, 3, 4]

    def __len__(self):
        return 300


# ---------------------------------------------------------------- token: unchanged bit for bit


def golden_corpus() -> TokenizedCorpus:
    g = np.random.default_rng(42)
    docs = [[list(g.integers(5, 300, size=int(g.integers(1, 25)))) for _ in range(int(g.integers(1, 9)))]
            for _ in range(40)]
    return TokenizedCorpus.from_documents(docs)


def digest(ds) -> str:
    h = hashlib.sha256()
    for epoch in range(2):
        for i in range(len(ds)):
            ex = ds[(epoch, i)]
            for k in sorted(ex):
                if k != "word_start":  # new field; everything the old code produced is hashed
                    h.update(k.encode())
                    h.update(np.asarray(ex[k], dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("fmt, ratio, expected", [
    ("packed", 0.15, "78cb7e0bf797bf16"), ("packed", 0.4, "bb75c7a55da32f39"),
    ("pairs", 0.15, "758704750b1f5999"), ("pairs", 0.4, "9507283cd9419380"),
])
def test_token_strategy_is_bit_for_bit_the_previous_one(fmt, ratio, expected):
    # Digests recorded with the code before strategies and word starts existed (same corpus,
    # seed, epochs): masks, NSP partners and truncation must not move for existing seeds.
    corpus = golden_corpus()
    inst = PackedInstances(corpus, 48, 2, 3) if fmt == "packed" else SegmentPairInstances(corpus, 48, 2, 3)
    ds = MaskedExamples(inst, FakeTokenizer(), MaskingConfig(ratio=ratio), seed=5, stream=TRAIN_STREAM,
                        static=False)
    assert digest(ds) == expected


def test_token_strategy_ignores_word_starts():
    ids = np.array([CLS] + list(range(1000, 1040)) + [SEP])
    special = np.isin(ids, [CLS, SEP])
    words = np.zeros(ids.size, dtype=bool)
    words[::7] = True
    a = mask_tokens(ids, np.random.default_rng(3), MaskingConfig(), mask_id=MASK, special_mask=special,
                    random_ids=RANDOM_IDS)
    b = mask_tokens(ids, np.random.default_rng(3), MaskingConfig(), mask_id=MASK, special_mask=special,
                    random_ids=RANDOM_IDS, word_start=words)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- span masking


def span_example(g: np.random.Generator):
    """[CLS] text [SEP], 60 to 400 text tokens: words of 1 to 3 tokens, so spans in words and in
    tokens differ."""
    n_text = int(g.integers(60, 401))
    ids = np.concatenate(([CLS], g.integers(1000, 2000, size=n_text), [SEP]))
    word_start = np.ones(ids.size, dtype=bool)
    pos = 1
    while pos < n_text + 1:
        size = int(g.integers(1, 4))
        word_start[pos + 1:min(pos + size, n_text + 1)] = False
        pos += size
    return ids, np.isin(ids, [CLS, SEP]), word_start


def spans_of(out) -> list[tuple[int, int]]:
    """Spans [a, b) read from the SBO fields: a span starts where sbo_pos is 0."""
    return [(int(a), int(out["sbo_right"][a])) for a in np.flatnonzero(out["sbo_pos"] == 0)]


def truncated_geometric_pmf(p=0.2, max_len=10):
    pmf = np.array([p * (1 - p) ** (k - 1) for k in range(1, max_len + 1)])
    return pmf / pmf.sum()


def run_spans(n_examples, seed=0):
    cfg = MaskingConfig(strategy="span")
    g = np.random.default_rng(seed)
    rows = []
    for idx in range(n_examples):
        ids, special, word_start = span_example(g)
        out = mask_spans(ids, np.random.default_rng([seed, 0, idx]), cfg, mask_id=MASK,
                         special_mask=special, random_ids=RANDOM_IDS, word_start=word_start)
        rows.append((ids, special, word_start, out))
    return rows


@pytest.fixture(scope="module")
def span_rows():
    return run_spans(4500)  # about 5 spans per example: > 20,000 spans


def test_span_lengths_follow_the_truncated_geometric(span_rows):
    pmf = truncated_geometric_pmf()
    expected_mean = float(np.arange(1, 11) @ pmf)
    assert abs(expected_mean - 3.797) < 1e-3  # the official form, not min(L, 10) (4.463)
    lengths = []
    for _, _, word_start, out in span_rows:
        for a, b in spans_of(out):
            lengths.append(int(word_start[a:b].sum()))
    lengths = np.array(lengths)
    assert lengths.size >= 20_000
    assert lengths.min() >= 1 and lengths.max() <= 10
    assert abs(lengths.mean() / expected_mean - 1) < 0.05
    freq = np.bincount(lengths, minlength=11)[1:] / lengths.size
    np.testing.assert_allclose(freq, pmf, atol=0.01)  # the shape too, not only the mean


def test_span_masked_fraction_is_the_ratio(span_rows):
    candidates = sum(int((~special).sum()) for _, special, _, _ in span_rows)
    masked = sum(int((out["labels"] != -100).sum()) for *_, out in span_rows)
    assert abs(masked / candidates - 0.15) < 0.01


def test_spans_cover_whole_words_never_overlap_and_have_unmasked_boundaries(span_rows):
    for ids, special, word_start, out in span_rows:
        labels = out["labels"]
        covered = np.zeros(ids.size, dtype=int)
        for a, b in spans_of(out):
            covered[a:b] += 1
            assert word_start[a] and (word_start[b] or special[b])  # starts and ends at word edges
            assert not special[a:b].any()
            np.testing.assert_array_equal(out["sbo_left"][a:b], a - 1)
            np.testing.assert_array_equal(out["sbo_right"][a:b], b)
            np.testing.assert_array_equal(out["sbo_pos"][a:b], np.arange(b - a))
            assert labels[a - 1] == -100 and labels[b] == -100  # boundaries are outside every span
        assert covered.max() <= 1  # no overlap
        np.testing.assert_array_equal(covered == 1, labels != -100)  # labels are exactly the spans
        np.testing.assert_array_equal(labels[covered == 1], ids[covered == 1])
        outside = covered == 0
        assert (out["sbo_left"][outside] == -1).all() and (out["sbo_right"][outside] == -1).all()
        assert (out["sbo_pos"][outside] == -1).all()
        np.testing.assert_array_equal(out["input_ids"][outside], ids[outside])


def test_span_fate_is_decided_per_span(span_rows):
    fates = []
    for ids, _, _, out in span_rows:
        for a, b in spans_of(out):
            got, orig = out["input_ids"][a:b], ids[a:b]
            kinds = {"mask" if t == MASK else "random" if t in RANDOM_IDS else "keep" if t == o else "?"
                     for t, o in zip(got.tolist(), orig.tolist())}
            assert len(kinds) == 1 and "?" not in kinds  # one fate for the whole span
            fates.append(kinds.pop())
    fates = np.array(fates)
    for kind, share in (("mask", 0.8), ("random", 0.1), ("keep", 0.1)):
        assert abs((fates == kind).mean() - share) < 0.015


def test_span_boundaries_exact_on_a_hand_made_example():
    # [CLS] w0 w0 [SEP] w1 w1 w1 [SEP]: each run has one word, so a span is one whole word and
    # the outcomes are {w0}, {w1}, {w0, w1}; boundaries are the surrounding [CLS] / [SEP].
    ids = np.array([CLS, 1001, 1002, SEP, 1003, 1004, 1005, SEP])
    special = np.isin(ids, [CLS, SEP])
    word_start = np.array([1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)
    w0 = {"sbo_left": [-1, 0, 0, -1, -1, -1, -1, -1], "sbo_right": [-1, 3, 3, -1, -1, -1, -1, -1],
          "sbo_pos": [-1, 0, 1, -1, -1, -1, -1, -1]}
    w1 = {"sbo_left": [-1, -1, -1, -1, 3, 3, 3, -1], "sbo_right": [-1, -1, -1, -1, 7, 7, 7, -1],
          "sbo_pos": [-1, -1, -1, -1, 0, 1, 2, -1]}
    both = {k: [max(x, y) for x, y in zip(w0[k], w1[k])] for k in w0}
    seen = set()
    cfg = MaskingConfig(ratio=0.99, strategy="span")
    for seed in range(300):
        out = mask_spans(ids, np.random.default_rng(seed), cfg, mask_id=MASK, special_mask=special,
                         random_ids=RANDOM_IDS, word_start=word_start)
        got = {k: out[k].tolist() for k in w0}
        name = next(n for n, want in (("w0", w0), ("w1", w1), ("both", both)) if got == want)
        seen.add(name)
        assert all(out[k].dtype == np.int64 for k in ("sbo_left", "sbo_right", "sbo_pos", "labels"))
    assert seen == {"w0", "w1", "both"}


def test_span_without_word_starts_treats_tokens_as_words():
    ids = np.array([CLS] + list(range(1000, 1100)) + [SEP])
    out = mask_spans(ids, np.random.default_rng(1), MaskingConfig(strategy="span"), mask_id=MASK,
                     special_mask=np.isin(ids, [CLS, SEP]), random_ids=RANDOM_IDS, word_start=None)
    assert all(1 <= b - a <= 10 for a, b in spans_of(out)) and spans_of(out)


def test_span_same_seed_epoch_index_same_mask_and_collated_with_minus_one():
    corpus = TokenizedCorpus.from_documents(
        [[list(range(100 + 1000 * d, 140 + 1000 * d)) for _ in range(3)] for d in range(6)],
        word_starts=[[[i % 3 == 0 for i in range(40)] for _ in range(3)] for _ in range(6)])

    def dataset():
        return MaskedExamples(PackedInstances(corpus, 64, CLS, SEP), FakeTokenizer(),
                              MaskingConfig(strategy="span"), seed=7, stream=TRAIN_STREAM, static=False)

    a, b = dataset(), dataset()
    keys = ("input_ids", "labels", "sbo_left", "sbo_right", "sbo_pos")
    for i in range(len(a)):
        x, y = a[(0, i)], b[(0, i)]
        assert all(np.array_equal(x[k], y[k]) for k in keys)
    changed = sum(not np.array_equal(a[(0, i)]["labels"], a[(1, i)]["labels"]) for i in range(len(a)))
    assert changed >= len(a) - 1  # a new epoch gives new spans
    batch = Collator(pad_id=0)([a[(0, len(a) - 1)], a[(0, 0)]])  # the last example is shorter
    assert "word_start" not in batch
    width = batch["input_ids"].shape[1]
    short = len(a[(0, len(a) - 1)]["input_ids"])
    assert short < width
    for k in ("sbo_left", "sbo_right", "sbo_pos"):
        assert batch[k].shape == (2, width) and (batch[k][0, short:] == -1).all()
        np.testing.assert_array_equal(batch[k][1].numpy(), a[(0, 0)][k])


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "words"}, ("objective.masking.strategy=words: unknown masking strategy "
                             "(valid: token, whole_word, span, none)")),
    ({"span_p": 0.0}, "objective.masking.span_p=0.0: must be a number in (0, 1]"),
    ({"span_p": 1.5}, "objective.masking.span_p=1.5: must be a number in (0, 1]"),
    ({"span_p": "x"}, "objective.masking.span_p=x: must be a number in (0, 1]"),
    ({"span_max": 0}, "objective.masking.span_max=0: must be an integer >= 1"),
    ({"span_max": 2.5}, "objective.masking.span_max=2.5: must be an integer >= 1"),
])
def test_invalid_strategy_settings_name_the_key_and_valid_values(kwargs, message):
    with pytest.raises(UserError) as err:
        MaskingConfig(**kwargs)
    assert str(err.value) == message


def test_masking_config_reads_the_objective_keys():
    obj = OmegaConf.create({"masking": {"ratio": 0.15, "mask": 0.8, "random": 0.1, "keep": 0.1,
                                        "mode": "dynamic", "strategy": "span", "span_p": 0.3,
                                        "span_max": 6}})
    cfg = masking_config(obj)
    assert (cfg.strategy, cfg.span_p, cfg.span_max) == ("span", 0.3, 6)
    obj.masking.strategy = "spans"
    with pytest.raises(UserError, match=r"^objective\.masking\.strategy=spans: .*valid: token, whole_word, span, none"):
        masking_config(obj)


def test_strategy_none_leaves_the_input_alone():
    ids = np.array([CLS] + list(range(1000, 1050)) + [SEP])
    rng = np.random.default_rng(0)
    out = mask_example(ids, rng, MaskingConfig(strategy="none"), mask_id=MASK,
                       special_mask=np.isin(ids, [CLS, SEP]), random_ids=RANDOM_IDS)
    np.testing.assert_array_equal(out["input_ids"], ids)
    assert (out["labels"] == -100).all() and out.keys() == {"input_ids", "labels"}
    assert rng.random() == np.random.default_rng(0).random()  # no draw spent


def test_mask_tokens_refuses_span():
    with pytest.raises(ValueError, match="mask_spans"):
        mask_tokens(np.array([CLS, 1000, SEP]), np.random.default_rng(0), MaskingConfig(strategy="span"),
                    mask_id=MASK, special_mask=np.array([1, 0, 1], dtype=bool), random_ids=RANDOM_IDS)


# ---------------------------------------------------------------- word boundaries + whole words

WORDS = ["alpha", "betamax", "unbelievable", "cat", "tokenization", "sat", "ran", "quickly",
         "overzealous", "dog", "internationalisation", "x", "mat", "hyperparameter", "on"]


def documents(n_docs=24):
    g = np.random.default_rng(0)
    docs = []
    for d in range(n_docs):
        sents = []
        for _ in range(int(g.integers(2, 5))):
            words = [WORDS[i] for i in g.integers(0, len(WORDS), size=int(g.integers(4, 12)))]
            sents.append(f"doc{d} " + " ".join(words) + (" ," if g.random() < 0.5 else " ."))
        docs.append(sents)
    return docs


class ListCorpus:
    def __init__(self, docs):
        self.docs = docs

    def documents(self, split=True):
        return iter(self.docs)

    def sentence_splitter(self):
        return None  # documents come as sentences

    def fingerprint(self):
        return {"docs": self.docs}

    def count_documents(self):
        return len(self.docs)

    def check_empty(self, n):
        pass


def metaspace_tokenizer(sentences):
    """SentencePiece style: a Unigram model over "▁"-prefixed pieces (Metaspace pre-tokenizer);
    `sentences()` iterates over the corpus, as prepare() hands it over."""
    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(sentences(), trainers.UnigramTrainer(vocab_size=120, special_tokens=specials,
                                                               unk_token="<unk>", show_progress=False))
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="<mask>")


def without_pre_tokenizer(fast: PreTrainedTokenizerFast) -> PreTrainedTokenizerFast:
    """The same model with spaces turned into "▁" by the normalizer instead of a pre-tokenizer (as
    Llama's conversion does): same pieces, but word_ids put a whole sentence in word 0."""
    tok = Tokenizer.from_str(fast.backend_tokenizer.to_str())
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    return wrap(tok)


MAKERS = {
    "wordpiece": lambda s: train_tokenizer(s, kind="wordpiece", vocab_size=120, lowercase=True),
    "bpe": lambda s: train_tokenizer(s, kind="bpe", vocab_size=300, lowercase=True),
    "sentencepiece": metaspace_tokenizer,
}


def reference_flags(tok, sentence: str) -> np.ndarray:
    """Word starts from the tokenizer's own word_ids, through its public Python API."""
    word_ids = tok(sentence, add_special_tokens=False).word_ids()
    return np.array([i == 0 or w != word_ids[i - 1] for i, w in enumerate(word_ids)], dtype=bool)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_whole_word_masking_takes_whole_words_of_each_tokenizer(kind, tmp_path):
    docs = documents()
    p = prepare(ListCorpus(docs), cache_dir=tmp_path, val_fraction=0.2, tokenizer_spec={"kind": kind},
                make_tokenizer=MAKERS[kind])
    tok = p.tokenizer
    # every document's tokens -> the tokenizer's word numbers, for the documents of the split
    by_tokens = {}
    for doc in docs:
        ids = [tok(s, add_special_tokens=False).input_ids for s in doc]
        flags = [reference_flags(tok, s) for s in doc]
        by_tokens[tuple(t for s in ids for t in s)] = np.concatenate(flags)
    stream_words, n_words, multi_token_words = [], 0, 0
    for d in range(p.train.num_docs):
        lo, hi = p.train.doc_offsets[d], p.train.doc_offsets[d + 1]
        flags = by_tokens[tuple(int(t) for t in p.train.tokens[lo:hi])]
        np.testing.assert_array_equal(p.train.word_starts[lo:hi], flags)  # stored = tokenizer's own
        multi_token_words += int((np.diff(np.flatnonzero(np.append(flags, True))) > 1).sum())
        stream_words.append(n_words + np.cumsum(flags))
        n_words += int(flags.sum())
        stream_words.append([n_words + 1])  # the document separator is a word of its own
        n_words += 1
    assert multi_token_words > 50  # the tokenizer splits words, so the check below means something
    stream_words = np.concatenate(stream_words)

    packed = PackedInstances(p.train, 24, tok.cls_token_id, tok.sep_token_id)  # cuts inside words
    ds = MaskedExamples(packed, tok, MaskingConfig(ratio=0.3, strategy="whole_word"), seed=1,
                        stream=TRAIN_STREAM, static=False)
    selected_multi = 0
    for i in range(len(ds)):
        ex = ds[(0, i)]
        words = stream_words[i * 22:(i + 1) * 22]
        sel = (ex["labels"] != -100)[1:-1]
        body_special = np.isin(ex["input_ids"][1:-1], tok.all_special_ids) & ~sel
        for w in np.unique(words[~body_special]):
            in_word = sel[words == w]
            assert in_word.all() or not in_word.any(), (kind, i, w)  # all of a word or nothing
            selected_multi += int(in_word.all() and in_word.size > 1)
        assert sel.any()  # every example has a prediction, even when its words are long
    assert selected_multi > 20


def test_whole_word_fates_are_per_token_and_fraction_is_the_ratio():
    g = np.random.default_rng(2)
    n_cand = n_sel = mixed = 0
    fates = {"mask": 0, "random": 0, "keep": 0}
    for idx in range(400):
        ids, special, word_start = span_example(g)
        out = mask_example(ids, np.random.default_rng(idx), MaskingConfig(strategy="whole_word"),
                           mask_id=MASK, special_mask=special, random_ids=RANDOM_IDS, word_start=word_start)
        assert out.keys() == {"input_ids", "labels"}
        sel = out["labels"] != -100
        n_cand += int((~special).sum())
        n_sel += int(sel.sum())
        word = np.cumsum(word_start)
        for w in np.unique(word[sel]):
            assert sel[word == w].all()
            got = out["input_ids"][word == w]
            kinds = {int(t == MASK) * 2 + int(t in RANDOM_IDS) for t in got.tolist()}
            mixed += len(kinds) > 1
        got, orig = out["input_ids"][sel], ids[sel]
        fates["mask"] += int((got == MASK).sum())
        fates["random"] += int(np.isin(got, RANDOM_IDS).sum())
        fates["keep"] += int((got == orig).sum())
    assert abs(n_sel / n_cand - 0.15) < 0.005
    assert mixed > 100  # one word, several fates: 80/10/10 is drawn per token
    for kind, share in (("mask", 0.8), ("random", 0.1), ("keep", 0.1)):
        assert abs(fates[kind] / n_sel - share) < 0.015


def test_whole_word_takes_one_word_when_every_word_is_too_long():
    ids = np.array([CLS, 1000, 1001, 1002, 1003, SEP])
    out = mask_example(ids, np.random.default_rng(0), MaskingConfig(strategy="whole_word"), mask_id=MASK,
                       special_mask=np.isin(ids, [CLS, SEP]), random_ids=RANDOM_IDS,
                       word_start=np.array([1, 1, 0, 0, 0, 1], dtype=bool))
    assert out["labels"].tolist() == [-100, 1000, 1001, 1002, 1003, -100]


def test_word_starts_from_offsets_when_the_tokenizer_has_no_pre_tokenizer(tmp_path):
    docs = documents(6)
    flat = [s for d in docs for s in d]
    plain = metaspace_tokenizer(lambda: iter(flat))
    llama_style = without_pre_tokenizer(plain)
    assert set(llama_style(flat[0], add_special_tokens=False).word_ids()) == {0}
    p = prepare(ListCorpus(docs), cache_dir=tmp_path, val_fraction=0.2, tokenizer_spec={"kind": "llama"},
                make_tokenizer=lambda s: llama_style)
    starts = np.concatenate([p.train.word_starts, p.val.word_starts])
    tokens = np.concatenate([p.train.tokens, p.val.tokens])
    # same pieces as the Metaspace tokenizer, whose word_ids do tell words apart
    expected = {tuple(plain(s, add_special_tokens=False).input_ids): reference_flags(plain, s) for s in flat}
    pos = 0
    for split in (p.train, p.val):
        for s in range(len(split.sent_offsets) - 1):
            n = int(split.sent_offsets[s + 1] - split.sent_offsets[s])
            np.testing.assert_array_equal(starts[pos:pos + n], expected[tuple(tokens[pos:pos + n].tolist())])
            pos += n
    assert pos == tokens.size and not starts.all()


class FakeEncoding:
    def __init__(self, offsets):
        self.offsets = offsets

    def __len__(self):
        return len(self.offsets)


def test_offset_rule_exact():
    text = "the cat  sat"
    # tokens: "th" "e" " c" "at" " " " sat": a whitespace-only token joins the next word
    enc = FakeEncoding([(0, 2), (2, 3), (3, 5), (5, 7), (7, 8), (8, 12)])
    assert word_start_flags(enc, text, from_offsets=True).tolist() == [True, False, True, False, True, False]
