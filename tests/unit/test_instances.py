import numpy as np
import pytest

from nlpx.data.corpus import TokenizedCorpus
from nlpx.data.instances import (PackedInstances, SegmentPairInstances, truncate_pair,
                                 truncated_pair_lengths)
from nlpx.errors import UserError

CLS, SEP = 1, 2


def doc_of(tokens: np.ndarray) -> np.ndarray:
    """Fixture token ids encode their document: 100 + 1000 * doc + position in doc."""
    return (np.asarray(tokens) - 100) // 1000


def random_docs(seed: int, n_docs: int, max_sent_len: int = 30, empty_docs=()) -> list[list[list[int]]]:
    g = np.random.default_rng(seed)
    docs = []
    for d in range(n_docs):
        if d in empty_docs:
            docs.append([])
            continue
        lens = g.integers(1, max_sent_len + 1, size=int(g.integers(1, 12)))
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        docs.append([list(100 + 1000 * d + np.arange(s, s + n)) for s, n in zip(starts, lens)])
    return docs


def random_corpus(seed: int, n_docs: int, max_sent_len: int = 30, empty_docs=()) -> TokenizedCorpus:
    return TokenizedCorpus.from_documents(random_docs(seed, n_docs, max_sent_len, empty_docs))


def reference_stream(corpus: TokenizedCorpus) -> np.ndarray:
    parts = [np.append(corpus.doc(d), SEP) for d in range(corpus.num_docs)]
    return np.concatenate(parts).astype(np.int64)


def split_pair(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert ids[0] == CLS and ids[-1] == SEP
    seps = np.flatnonzero(ids == SEP)
    assert seps.size == 2  # fixture text never contains SEP
    return ids[1:seps[0]], ids[seps[0] + 1:-1]


# ---------------------------------------------------------------- packing


def test_packing_small_exact():
    corpus = TokenizedCorpus.from_documents([[[5, 6], [7]], [[8, 9, 10]]])
    packed = PackedInstances(corpus, seq_len=5, cls_id=CLS, sep_id=SEP)
    # stream: 5 6 7 SEP 8 9 10 SEP
    assert packed.stream_length == 8 and len(packed) == 3
    got = [packed.get(i, None)["input_ids"].tolist() for i in range(3)]
    assert got == [[CLS, 5, 6, 7, SEP], [CLS, SEP, 8, 9, SEP], [CLS, 10, SEP, SEP]]


@pytest.mark.parametrize("seq_len", [3, 17, 64, 512])
def test_packing_loses_and_duplicates_nothing(seq_len):
    corpus = random_corpus(0, 40, empty_docs=(3, 4, 39))
    packed = PackedInstances(corpus, seq_len, CLS, SEP)
    stream = reference_stream(corpus)
    assert packed.stream_length == stream.size == corpus.num_tokens + corpus.num_docs
    L = seq_len - 2
    assert len(packed) == -(-stream.size // L)
    examples = [packed.get(i, np.random.default_rng(i)) for i in range(len(packed))]
    for ex in examples:
        assert ex["input_ids"].dtype == np.int64 and ex["input_ids"][0] == CLS and ex["input_ids"][-1] == SEP
        np.testing.assert_array_equal(ex["token_type_ids"], np.zeros_like(ex["input_ids"]))
    lengths = [ex["input_ids"].size for ex in examples]
    assert all(n == seq_len for n in lengths[:-1])
    assert lengths[-1] == (stream.size % L or L) + 2
    joined = np.concatenate([ex["input_ids"][1:-1] for ex in examples])
    np.testing.assert_array_equal(joined, stream)
    np.testing.assert_array_equal(joined[joined != SEP], corpus.tokens)
    assert (joined == SEP).sum() == corpus.num_docs


def test_packing_last_example_shorter_when_not_a_multiple():
    corpus = TokenizedCorpus.from_documents([[[10] * 7], [[11] * 3]])  # stream length 12

    def lengths(seq_len):
        packed = PackedInstances(corpus, seq_len, CLS, SEP)
        return [packed.get(i)["input_ids"].size for i in range(len(packed))]

    assert lengths(8) == [8, 8]  # L = 6 divides 12: no short example
    assert lengths(6) == [6, 6, 6]  # L = 4
    assert lengths(7) == [7, 7, 4]  # L = 5: 5 + 5 + 2


def test_stream_slice_matches_reference_and_ignores_rng():
    corpus = random_corpus(1, 25, empty_docs=(0, 12))
    packed = PackedInstances(corpus, 50, CLS, SEP)
    stream = reference_stream(corpus)
    g = np.random.default_rng(5)
    for _ in range(300):
        a, b = sorted(g.integers(0, stream.size + 3, size=2))
        np.testing.assert_array_equal(packed.stream_slice(a, b), stream[a:b])
    np.testing.assert_array_equal(packed.get(2, np.random.default_rng(1))["input_ids"],
                                  packed.get(2, np.random.default_rng(2))["input_ids"])
    with pytest.raises(IndexError):
        packed.get(len(packed))


def test_packing_rejects_seq_len_without_room_for_text():
    with pytest.raises(UserError, match="seq_len"):
        PackedInstances(random_corpus(0, 2), 2, CLS, SEP)


# ---------------------------------------------------------------- segment pairs


def test_chunks_are_greedy_whole_sentences_exact():
    # seq_len 13 -> L = 10. Doc 0 sentence lengths 4 5 3 12 2 2, doc 1: 10 1.
    lens = [[4, 5, 3, 12, 2, 2], [10, 1]]
    corpus = TokenizedCorpus.from_documents([[[100 + 1000 * d] * n for n in ls] for d, ls in enumerate(lens)])
    pairs = SegmentPairInstances(corpus, 13, CLS, SEP)
    assert pairs.chunk_doc.tolist() == [0, 0, 0, 0, 1, 1]
    assert pairs.chunk_start_sent.tolist() == [0, 2, 3, 4, 6, 7]
    assert pairs.chunk_end_sent.tolist() == [2, 3, 4, 6, 7, 8]
    assert len(pairs) == 6


def test_chunks_tile_documents_greedily():
    corpus = random_corpus(2, 60, empty_docs=(10,))
    pairs = SegmentPairInstances(corpus, 64, CLS, SEP)
    L, so = 61, corpus.sent_offsets
    for d in range(corpus.num_docs):
        rows = np.flatnonzero(pairs.chunk_doc == d)
        bounds = [corpus.doc_sents[d]] + pairs.chunk_end_sent[rows].tolist()
        assert pairs.chunk_start_sent[rows].tolist() == bounds[:-1]  # contiguous, in order
        assert bounds[-1] == corpus.doc_sents[d + 1]  # every sentence used once
        for s, e in zip(pairs.chunk_start_sent[rows], pairs.chunk_end_sent[rows]):
            size = so[e] - so[s]
            assert size <= L or e - s == 1
            if e < corpus.doc_sents[d + 1]:
                assert so[e + 1] - so[s] > L  # the next sentence would not have fitted


def sample_pairs(pairs, n, seed=11):
    out, epoch = [], 0
    while len(out) < n:
        for idx in range(len(pairs)):
            ex, b_doc = pairs.get_with_source(idx, np.random.default_rng([seed, epoch, idx]))
            out.append((idx, ex, b_doc))
        epoch += 1
    return out


def test_pairs_labels_sources_and_layout():
    corpus = random_corpus(3, 80, empty_docs=(7,))
    seq_len = 40  # small enough that truncation happens
    pairs = SegmentPairInstances(corpus, seq_len, CLS, SEP)
    samples = sample_pairs(pairs, 10_000)
    labels = np.array([int(ex["next_sentence_label"]) for _, ex, _ in samples])
    assert abs(labels.mean() - 0.5) < 0.02
    for idx, ex, b_doc in samples:
        ids, tt = ex["input_ids"], ex["token_type_ids"]
        assert ids.dtype == tt.dtype == ex["next_sentence_label"].dtype == np.int64
        assert ids.size <= seq_len
        a, b = split_pair(ids)
        assert a.size >= 1 and b.size >= 1
        np.testing.assert_array_equal(tt, [0] * (a.size + 2) + [1] * (b.size + 1))
        a_doc = pairs.chunk_doc[idx]
        assert np.all(doc_of(a) == a_doc) and np.all(doc_of(b) == b_doc)
        if ex["next_sentence_label"] == 1:
            assert b_doc != a_doc and b_doc != 7
        else:
            assert b_doc == a_doc


def test_continuation_is_exactly_the_rest_of_the_chunk_and_random_b_is_whole_sentences():
    corpus = random_corpus(4, 50)
    pairs = SegmentPairInstances(corpus, 512, CLS, SEP)  # chunks hold <= 509 tokens
    so = corpus.sent_offsets
    sent_starts = set(so.tolist())
    checked = {0: 0, 1: 0}
    for idx, ex, b_doc in sample_pairs(pairs, 2000):
        a, b = split_pair(ex["input_ids"])
        label = int(ex["next_sentence_label"])
        if label == 1 and a.size + b.size == 509:
            continue  # may have been truncated: covered by the truncation tests
        s, e = pairs.chunk_start_sent[idx], pairs.chunk_end_sent[idx]
        chunk = corpus.tokens[so[s]:so[e]]
        np.testing.assert_array_equal(a, chunk[:a.size])  # A starts the chunk
        if e - s >= 2:
            assert so[s] + a.size in sent_starts and so[s] + a.size < so[e]  # cut at a boundary
        if label == 0:
            np.testing.assert_array_equal(np.concatenate([a, b]), chunk)
        else:
            start = corpus.doc_offsets[b_doc] + (b[0] - 100 - 1000 * b_doc)
            assert start in sent_starts and start + b.size in sent_starts  # whole sentences
            np.testing.assert_array_equal(b, corpus.tokens[start:start + b.size])
            end, doc_end = start + b.size, corpus.doc_offsets[b_doc + 1]
            if end < doc_end:  # greedy: the next sentence would not have fitted A's leftover
                assert so[np.searchsorted(so, end) + 1] - start > 509 - a.size
        checked[label] += 1
    assert checked[0] > 800 and checked[1] > 800


@pytest.mark.parametrize("len_a", [3, 4])
def test_random_b_takes_whole_sentences_up_to_the_budget_left_after_a(len_a):
    # Doc 0: one chunk of a len_a-token and a 3-token sentence, so A is always the first one.
    # Doc 1: six 2-token sentences. L = 10 leaves 7 (or exactly 6) for B: three sentences either
    # way, fewer when the random start is near the end of doc 1.
    doc1 = [[1100 + 2 * i, 1101 + 2 * i] for i in range(6)]
    sent_a = list(range(100, 100 + len_a))
    corpus = TokenizedCorpus.from_documents([[sent_a, [200, 201, 202]], doc1])
    pairs = SegmentPairInstances(corpus, 13, CLS, SEP, negative_prob=1.0)
    assert pairs.chunk_doc.tolist() == [0, 1, 1]
    starts = set()
    for seed in range(200):
        ex, b_doc = pairs.get_with_source(0, np.random.default_rng(seed))
        a, b = split_pair(ex["input_ids"])
        assert int(ex["next_sentence_label"]) == 1 and b_doc == 1
        assert a.tolist() == sent_a
        first = (int(b[0]) - 1100) // 2
        assert b.tolist() == sum(doc1[first:first + 3], [])
        starts.add(first)
    assert starts == set(range(6))


def test_one_token_chunk_forces_a_random_next():
    corpus = TokenizedCorpus.from_documents([[[100]], [[1100, 1101], [1102]]])
    pairs = SegmentPairInstances(corpus, 64, CLS, SEP)
    for seed in range(50):
        ex, b_doc = pairs.get_with_source(0, np.random.default_rng(seed))
        assert int(ex["next_sentence_label"]) == 1 and b_doc == 1
        assert split_pair(ex["input_ids"])[0].tolist() == [100]


def test_long_single_sentence_is_split_and_truncated_to_fit():
    corpus = TokenizedCorpus.from_documents([[list(range(100, 140))], [[1100, 1101]]])  # 40 tokens
    pairs = SegmentPairInstances(corpus, 20, CLS, SEP, negative_prob=0.0)  # L = 17
    assert len(pairs) == 2
    for seed in range(100):
        a, b = split_pair(pairs.get(0, np.random.default_rng(seed))["input_ids"])
        assert a.size + b.size == 17
        # contiguous pieces of the sentence, A before B
        assert np.all(np.diff(a) == 1) and np.all(np.diff(b) == 1) and a[-1] < b[0]
        # some split point between them gives exactly these lengths under truncate_seq_pair
        assert any(truncated_pair_lengths(cut, 40 - cut, 17) == (a.size, b.size)
                   for cut in range(a[-1] - 99, b[0] - 99))


def test_truncated_pair_lengths_matches_one_at_a_time_loop():
    for la in range(12):
        for lb in range(12):
            for limit in range(14):
                a, b = la, lb
                while a + b > limit:  # BERT's truncate_seq_pair: the longer loses one, B on a tie
                    if a > b:
                        a -= 1
                    else:
                        b -= 1
                assert truncated_pair_lengths(la, lb, limit) == (a, b), (la, lb, limit)


def test_truncate_pair_removes_from_the_longer_segment_front_and_back():
    a, b = np.arange(10), np.arange(100, 103)
    fronts = set()
    for seed in range(200):
        ta, tb = truncate_pair(a, b, 8, np.random.default_rng(seed))
        assert ta.size == 5 and tb.tolist() == [100, 101, 102]
        assert np.all(np.diff(ta) == 1)  # a contiguous window of a
        fronts.add(int(ta[0]))
    assert fronts == {0, 1, 2, 3, 4, 5}  # 0..5 tokens off the front, the rest off the back


def test_nsp_needs_two_documents():
    one_doc = TokenizedCorpus.from_documents([[[100, 101], [102]]])
    with pytest.raises(UserError, match="at least 2 non-empty documents"):
        SegmentPairInstances(one_doc, 64, CLS, SEP)
    with pytest.raises(UserError):
        SegmentPairInstances(TokenizedCorpus.from_documents([[[100]], []]), 64, CLS, SEP)
    pairs = SegmentPairInstances(one_doc, 64, CLS, SEP, negative_prob=0.0)
    ex = pairs.get(0, np.random.default_rng(0))
    assert int(ex["next_sentence_label"]) == 0
    assert ex["input_ids"].tolist() == [CLS, 100, 101, SEP, 102, SEP]


def test_same_rng_seed_same_pair():
    pairs = SegmentPairInstances(random_corpus(5, 20), 48, CLS, SEP)
    for idx in range(len(pairs)):
        x = pairs.get(idx, np.random.default_rng([1, 0, idx]))
        y = pairs.get(idx, np.random.default_rng([1, 0, idx]))
        assert x.keys() == {"input_ids", "token_type_ids", "next_sentence_label", "word_start"}
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
