"""SimCSE/ESimCSE pieces: InfoNCE by hand, word repetition, the momentum encoder and queue."""

from __future__ import annotations

import math
import random

import pytest
import torch

from nlpx.embeddings.augment import repeat_words
from nlpx.embeddings.contrastive import info_nce
from nlpx.embeddings.momentum import EmbeddingQueue, MomentumEncoder


def test_info_nce_by_hand():
    # unit vectors: cos(a1, p1) = 1, cos(a1, p2) = 0, cos(a2, p1) = 0.6, cos(a2, p2) = 0.8
    anchors = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    positives = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    tau = 0.5
    l1 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0 / tau)))
    l2 = -math.log(math.exp(0.8 / tau) / (math.exp(0.6 / tau) + math.exp(0.8 / tau)))
    assert info_nce(anchors, positives, temperature=tau).item() == pytest.approx((l1 + l2) / 2, rel=1e-6)
    # one queued negative q = (0, 1): cos(a1, q) = 0, cos(a2, q) = 0.8
    queue = torch.tensor([[0.0, 5.0]])
    q1 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 1 + 1))
    q2 = -math.log(math.exp(0.8 / tau) / (math.exp(0.6 / tau) + 2 * math.exp(0.8 / tau)))
    assert info_nce(anchors, positives, temperature=tau, queue=queue).item() == pytest.approx((q1 + q2) / 2, rel=1e-6)


def test_info_nce_tends_to_log_batch_size_at_large_temperature():
    torch.manual_seed(0)
    a, p = torch.randn(8, 16), torch.randn(8, 16)
    assert info_nce(a, p, temperature=1e6).item() == pytest.approx(math.log(8), abs=1e-5)
    assert info_nce(a, p, temperature=1e6, queue=torch.randn(24, 16)).item() == pytest.approx(math.log(32), abs=1e-5)


@pytest.mark.parametrize("sampling", ["paper", "fixed"])
def test_word_repetition_keeps_order_and_only_duplicates(sampling):
    rng = random.Random(0)
    for n in (1, 2, 5, 17, 40):
        words = [f"w{i}" for i in range(n)]
        out = repeat_words(words, 0.32, rng, sampling)
        # removing immediate repeats gives the input back, and each word appears once or twice
        dedup = [w for i, w in enumerate(out) if i == 0 or out[i - 1] != w]
        assert dedup == words and all(1 <= out.count(w) <= 2 for w in words)


def test_word_repetition_rates():
    rng = random.Random(1)
    sentences = [[f"w{i}" for i in range(rng.randint(8, 40))] for _ in range(3000)]
    fixed = [len(repeat_words(s, 0.32, rng, "fixed")) - len(s) for s in sentences]
    share = sum(fixed) / sum(len(s) for s in sentences)
    assert abs(share - 0.32) < 0.02  # the configured rate, within 2 points
    # the paper's sampling: dup_len uniform on [0, max(2, int(0.32 N))] (cap 10)
    paper = [len(repeat_words(s, 0.32, rng, "paper")) - len(s) for s in sentences]
    expected = sum(min(10, max(2, int(0.32 * len(s)))) / 2 for s in sentences)
    assert abs(sum(paper) - expected) / expected < 0.03
    assert all(d <= min(10, max(2, int(0.32 * len(s)))) for d, s in zip(paper, sentences))


def test_momentum_encoder_gets_no_gradient_and_moves_by_the_rule():
    torch.manual_seed(0)
    encoder = torch.nn.Linear(4, 3)
    momentum = MomentumEncoder(encoder, 0.9)
    old = [p.clone() for p in momentum.encoder.parameters()]
    x = torch.randn(5, 4)
    loss = encoder(x).sum() + momentum(x).sum()
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in momentum.encoder.parameters())
    torch.optim.SGD(encoder.parameters(), lr=0.1).step()
    momentum.update(encoder)
    for m, o, e in zip(momentum.encoder.parameters(), old, encoder.parameters()):
        assert torch.allclose(m, 0.9 * o + 0.1 * e.detach(), atol=0, rtol=1e-6)


def test_queue_keeps_its_size_and_drops_the_oldest_first():
    q = EmbeddingQueue(size=5, dim=2)
    assert len(q) == 0
    for start in (0, 3, 6):
        q.push(torch.arange(start, start + 3, dtype=torch.float).unsqueeze(1).repeat(1, 2))
    assert len(q) == 5 and q.items[:, 0].tolist() == [4, 5, 6, 7, 8]
    assert not q.items.requires_grad
