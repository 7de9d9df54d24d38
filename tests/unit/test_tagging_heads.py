"""The tagging heads against hand computation and brute force: the CRF's likelihood and Viterbi
path over every tag sequence, GlobalPointer's RoPE, loss, decoding and Bernoulli divergence, the
per-token R-Drop KL."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from omegaconf import OmegaConf

from nlpx.objectives.crf import CRF
from nlpx.objectives.global_pointer import IGNORE, GlobalPointer, bernoulli_divergence, decode, rope, span_loss
from nlpx.objectives.tag import CRFHead, GlobalPointerHead, SoftmaxHead, gather_words, token_divergence

HEAD_CFG = OmegaConf.create({"transition_lr": None, "head_size": 8})


def brute_force(crf: CRF, emissions: torch.Tensor, n: int) -> dict[tuple, float]:
    """score of every tag path of the first n positions, by the definition."""
    out = {}
    for path in itertools.product(range(crf.num_tags), repeat=n):
        s = crf.start[path[0]] + crf.end[path[-1]] + sum(emissions[t, path[t]] for t in range(n))
        s = s + sum(crf.transitions[path[t - 1], path[t]] for t in range(1, n))
        out[path] = float(s)
    return out


def test_crf_likelihood_and_viterbi_equal_enumeration_over_every_path():
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():  # transitions big enough to matter
        crf.transitions.mul_(20)
        crf.start.mul_(20)
        crf.end.mul_(20)
    emissions = torch.randn(3, 4, 3)
    lengths = [4, 2, 1]
    mask = torch.arange(4)[None] < torch.tensor(lengths)[:, None]
    tags = torch.tensor([[0, 2, 1, 1], [2, 2, 0, 0], [1, 0, 0, 0]])
    ll = crf.log_likelihood(emissions, tags, mask)
    paths = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        scores = brute_force(crf, emissions[b], n)
        log_z = math.log(sum(math.exp(s) for s in scores.values()))
        assert float(ll[b]) == pytest.approx(scores[tuple(tags[b, :n].tolist())] - log_z, abs=1e-4)
        assert tuple(paths[b]) == max(scores, key=scores.get)
    # the probabilities of all paths of a sequence sum to one
    all_paths = torch.tensor(list(itertools.product(range(3), repeat=2)))
    e2 = emissions[1:2].expand(len(all_paths), -1, -1)
    m2 = mask[1:2].expand(len(all_paths), -1)
    padded = torch.cat([all_paths, torch.zeros(len(all_paths), 2, dtype=torch.long)], 1)
    assert float(crf.log_likelihood(e2, padded, m2).exp().sum()) == pytest.approx(1.0, abs=1e-5)


def test_gather_words_moves_the_first_sub_tokens_to_the_front_in_order():
    values = torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]])
    at = torch.tensor([[False, True, False, True], [True, True, True, False]])
    got, mask = gather_words(values, at)
    assert got[0, :2].tolist() == [11, 13] and got[1].tolist() == [20, 21, 22]
    assert mask.tolist() == [[True, True, False], [True, True, True]]


def test_rope_rotates_each_pair_by_position_times_its_frequency():
    x = torch.tensor([1.0, 0.0, 1.0, 0.0]).expand(1, 3, 4).clone()  # [B, T, d]
    out = rope(x)
    for p in range(3):  # pair m turns by p * 10000^(-2m/4): (cos, sin) of that angle
        for m, freq in enumerate([1.0, 0.01]):
            assert out[0, p, 2 * m].item() == pytest.approx(math.cos(p * freq), abs=1e-6)
            assert out[0, p, 2 * m + 1].item() == pytest.approx(math.sin(p * freq), abs=1e-6)


def test_global_pointer_scores_depend_on_the_distance_not_the_place():
    torch.manual_seed(0)
    gp = GlobalPointer(hidden=6, num_types=2, head_size=4)
    same = torch.randn(1, 1, 6).expand(1, 5, 6)  # one state at every position
    s = gp(same)
    assert s.shape == (1, 2, 5, 5)
    for d in range(-2, 3):
        diag = torch.diagonal(s, offset=d, dim1=2, dim2=3)
        assert torch.allclose(diag, diag[..., :1].expand_as(diag), atol=1e-5)


def test_span_loss_is_the_multilabel_categorical_cross_entropy_over_valid_spans():
    scores = torch.tensor([[[[1.0, -2.0], [5.0, 0.5]]]])  # [B=1, types=1, 2, 2]
    labels = torch.tensor([[[[1, 0], [IGNORE, 0]]]])  # (0,0) entity; (0,1), (1,1) not; (1,0) no span
    want = math.log(1 + math.exp(-2.0) + math.exp(0.5)) + math.log(1 + math.exp(-1.0))
    assert span_loss(scores, labels).item() == pytest.approx(want, rel=1e-6)
    # averaged over (example, type); a type with no entity has only the negative term
    two = torch.cat([scores, scores], 1)
    lab2 = torch.cat([labels, torch.tensor([[[[0, 0], [IGNORE, 0]]]])], 1)
    other = math.log(1 + math.exp(1.0) + math.exp(-2.0) + math.exp(0.5))
    assert span_loss(two, lab2).item() == pytest.approx((want + other) / 2, rel=1e-6)


def test_bernoulli_divergence_is_sigmoid_difference_times_score_difference_over_valid_spans():
    s = torch.tensor([[[[1.0, 2.0], [3.0, -1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    t = torch.tensor([[[[0.0, 2.0], [-3.0, 1.0]]], [[[1.0, 0.0], [0.0, 0.0]]]])
    labels = torch.tensor([[[[0, 1], [IGNORE, 0]]], [[[0, 0], [IGNORE, 0]]]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    first = (sig(1) - sig(0)) * 1 + 0 + (sig(-1) - sig(1)) * -2  # (1,0) is not a span
    second = (sig(0) - sig(1)) * -1
    assert bernoulli_divergence(s, t, labels, "sum").item() == pytest.approx(first + second, rel=1e-6)
    assert bernoulli_divergence(s, t, labels, "mean").item() == pytest.approx((first + second) / 2, rel=1e-6)
    # token: over the batch's 6 valid spans (3 per example)
    assert bernoulli_divergence(s, t, labels, "token").item() == pytest.approx((first + second) / 6, rel=1e-6)
    assert bernoulli_divergence(s, s, labels, "sum").item() == 0.0


def test_token_divergence_is_the_symmetric_kl_of_labelled_tokens():
    p = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [9.0, -9.0]]])
    q = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [-9.0, 9.0]]])
    labels = torch.tensor([[1, 0, IGNORE]])  # the third token is not a word start
    a = [math.exp(0) / (1 + math.e), math.e / (1 + math.e)]
    b = a[::-1]
    kl = lambda x, y: sum(xi * math.log(xi / yi) for xi, yi in zip(x, y))  # noqa: E731
    want = 0.5 * (kl(a, b) + kl(b, a))  # the second token's two passes agree
    assert token_divergence(p, q, labels, "sum").item() == pytest.approx(want, rel=1e-6)
    assert token_divergence(p, q, labels, "mean").item() == pytest.approx(want, rel=1e-6)  # one sentence
    assert token_divergence(p, q, labels, "token").item() == pytest.approx(want / 2, rel=1e-6)  # 2 labelled tokens
    # two sentences, 2 + 1 labelled tokens: mean halves the sum, token divides it by 3
    p2, q2, l2 = torch.cat([p, p]), torch.cat([q, q]), torch.tensor([[1, 0, IGNORE], [1, IGNORE, IGNORE]])
    assert token_divergence(p2, q2, l2, "mean").item() == pytest.approx(want, rel=1e-6)
    assert token_divergence(p2, q2, l2, "token").item() == pytest.approx(2 * want / 3, rel=1e-6)


def test_global_pointer_decoding_keeps_positive_valid_spans():
    scores = torch.tensor([[[[0.5, 2.0], [3.0, -1.0]], [[-1.0, -1.0], [-1.0, 0.1]]]])
    valid = torch.tensor([[True, True], [False, True]]).expand(1, 2, 2, 2)
    assert decode(scores, valid) == [[(0, 0, 0), (0, 0, 1), (1, 1, 1)]]


def test_heads_predict_spans_in_word_indices():
    types = ("LOC", "PER")  # tags O, B-LOC, I-LOC, B-PER, I-PER
    softmax = SoftmaxHead(HEAD_CFG, 4, types)
    # tokens: [CLS] w0 w1a w1b w2 [SEP]; word starts at 1, 2, 4 -> words 0, 1, 2
    word_index = torch.tensor([[-1, 0, 1, -1, 2, -1]])
    tag_ids = [0, 3, 0, 4, 1, 0]  # at the starts: B-PER, I-PER (the 4 is not a start), B-LOC
    logits = torch.nn.functional.one_hot(torch.tensor([tag_ids]), 5).float()
    logits[0, 2] = torch.nn.functional.one_hot(torch.tensor(4), 5).float()  # word 1: I-PER
    assert softmax.predict(logits, word_index) == [[(1, 0, 1), (0, 2, 2)]]
    crf = CRFHead(HEAD_CFG, 4, types)
    with torch.no_grad():
        for p in crf.crf.parameters():
            p.zero_()
    assert crf.predict(logits * 10, word_index) == [[(1, 0, 1), (0, 2, 2)]]
    # a sentence with no kept word predicts nothing
    assert crf.predict(logits, torch.full((1, 6), -1)) == [[]]
    gp = GlobalPointerHead(HEAD_CFG, 4, types)
    spans = torch.full((1, 2, 6, 6), -1.0)
    spans[0, 1, 1, 2] = 1.0  # PER over words 0-1
    spans[0, 0, 3, 4] = 1.0  # not a word start: ignored
    spans[0, 0, 4, 1] = 1.0  # end before start: ignored
    assert gp.predict(spans, word_index) == [[(1, 0, 1)]]


def test_crf_loss_is_the_mean_negative_log_likelihood_of_the_word_tags():
    torch.manual_seed(1)
    head = CRFHead(HEAD_CFG, 4, ("PER",))
    logits = torch.randn(2, 5, 3)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 2, IGNORE], [IGNORE, 0, IGNORE, IGNORE, IGNORE]])
    words = torch.stack([logits[0, [1, 3]], torch.cat([logits[1, [1]], logits[1, [1]]])])
    mask = torch.tensor([[True, True], [True, False]])
    tags = torch.tensor([[1, 2], [0, 0]])
    want = -head.crf.log_likelihood(words, tags, mask).mean()
    assert head.loss(logits, labels).item() == pytest.approx(want.item(), rel=1e-6)
