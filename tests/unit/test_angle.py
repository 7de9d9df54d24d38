"""AnglE's terms against values computed by hand, and the gradient that motivates the angle term."""

from __future__ import annotations

import math

import pytest
import torch

from nlpx.embeddings.angle import (angle_difference, angle_loss, angle_objective, contrastive_loss, cosine_loss,
                                   in_batch_negative_loss)
from nlpx.embeddings.contrastive import info_nce

R2 = math.sqrt(2)


def test_cosine_term_by_hand():
    # pair 0: cos((1,0), (0,1)) = 0, score 1; pair 1: cos((1,0), (1,1)) = 1/sqrt2, score 3
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    w = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    scores = torch.tensor([1.0, 3.0])
    # the lower-scored pair's similarity minus the higher one's: log(1 + e^{tau (0 - 1/sqrt2)})
    for tau in (1.0, 5.0):  # (at 20 the value, 7e-7, is below float32 resolution next to log 1)
        assert cosine_loss(z, w, scores, tau).item() == pytest.approx(math.log(1 + math.exp(-tau / R2)), rel=1e-6)
    # scores the other way round: the order is wrong, the loss large
    assert cosine_loss(z, w, torch.tensor([3.0, 1.0]), 1.0).item() == pytest.approx(math.log(1 + math.exp(1 / R2)),
                                                                                    rel=1e-6)


def test_cosine_term_ranks_only_ordered_pairs():
    # a third pair with cos = -1 and the same score as pair 1: (0,1), (0,2) and (2,?) ... only
    # pairs with strictly lower gold scores are ranked: (0 < 1) and (0 < 2); 1 and 2 tie
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    w = torch.tensor([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    scores = torch.tensor([1.0, 3.0, 3.0])
    tau = 2.0
    expected = math.log(1 + math.exp(tau * (0 - 1 / R2)) + math.exp(tau * (0 - (-1))))
    assert cosine_loss(z, w, scores, tau).item() == pytest.approx(expected, rel=1e-6)
    # every score equal: nothing is ranked, log(1) = 0
    assert cosine_loss(z, w, torch.ones(3), tau).item() == 0.0


def test_angle_difference_is_the_complex_quotient_by_hand():
    # z = 1 + 2i, w = 3 + 4i: z conj(w) = (1 + 2i)(3 - 4i) = 11 + 2i; |z| = sqrt5, |w| = 5
    z, w = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])
    assert (1 + 2j) * (3 - 4j) == 11 + 2j
    assert angle_difference(z, w).item() == pytest.approx(13 / (5 * math.sqrt(5)), rel=1e-6)
    # two complex dimensions: z = (1 + 0i, 2 + 1i), w = (0 + 1i, 1 - 1i): halves are (a | b), (c | d)
    z = torch.tensor([[1.0, 2.0, 0.0, 1.0]])
    w = torch.tensor([[0.0, 1.0, 1.0, -1.0]])
    prod = (1 + 0j) * (0 - 1j) + (2 + 1j) * (1 + 1j)  # sum over dimensions of z conj(w)
    nz, nw = math.sqrt(1 + 4 + 0 + 1), math.sqrt(0 + 1 + 1 + 1)
    assert angle_difference(z, w).item() == pytest.approx(abs(prod.real + prod.imag) / (nz * nw), rel=1e-6)


def test_angle_term_by_hand():
    z = torch.tensor([[1.0, 2.0], [1.0, 0.0]])
    w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    # D0 = 13 / (5 sqrt5); D1: (1 + 0i)(0 - 1i) = -i -> |0 + (-1)| / 1 = 1
    d0, d1 = 13 / (5 * math.sqrt(5)), 1.0
    tau = 1.0
    # pair 0 scored lower: log(1 + e^{tau (D0 - D1)})
    assert angle_loss(z, w, torch.tensor([0.0, 5.0]), tau).item() == pytest.approx(
        math.log(1 + math.exp(tau * (d0 - d1))), rel=1e-6)
    assert angle_loss(z, w, torch.tensor([5.0, 0.0]), 3.0).item() == pytest.approx(
        math.log(1 + math.exp(3.0 * (d1 - d0))), rel=1e-6)


def test_in_batch_negative_term_by_hand():
    # embeddings in order z0, w0, z1, w1 (unit vectors): pair 0 scored 4 (a positive), pair 1
    # scored 0.5 (below positive_min = 1: no target, adds 0 to the mean over 4 rows)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([[0.6, 0.8], [-1.0, 0.0]])
    cos = {(0, 1): 0.6, (0, 2): 0.0, (0, 3): -1.0, (1, 2): 0.8, (1, 3): -0.6, (2, 3): 0.0}
    tau = 1.0
    row0 = -cos[0, 1] + math.log(sum(math.exp(cos[0, j]) for j in (1, 2, 3)))
    row1 = -cos[0, 1] + math.log(sum(math.exp(c) for c in (cos[0, 1], cos[1, 2], cos[1, 3])))
    got = in_batch_negative_loss(z, w, torch.tensor([4.0, 0.5]), tau, positive_min=1.0)
    assert got.item() == pytest.approx((row0 + row1) / 4, rel=1e-6)
    # both pairs positive: rows 2 and 3 add their own terms
    row2 = -cos[2, 3] + math.log(sum(math.exp(c) for c in (cos[0, 2], cos[1, 2], cos[2, 3])))
    row3 = -cos[2, 3] + math.log(sum(math.exp(c) for c in (cos[0, 3], cos[1, 3], cos[2, 3])))
    got = in_batch_negative_loss(z, w, torch.tensor([4.0, 2.0]), tau, positive_min=1.0)
    assert got.item() == pytest.approx((row0 + row1 + row2 + row3) / 4, rel=1e-6)


def test_contrastive_term_is_info_nce_over_the_positive_pairs():
    torch.manual_seed(0)
    z, w = torch.randn(5, 8), torch.randn(5, 8)
    scores = torch.tensor([4.0, 0.0, 3.0, 5.0, 0.9])
    keep = torch.tensor([0, 2, 3])
    expected = info_nce(z[keep], w[keep], temperature=1 / 20.0)
    assert contrastive_loss(z, w, scores, 20.0, positive_min=1.0).item() == pytest.approx(expected.item(), rel=1e-6)


def test_angle_objective_weights_the_terms():
    torch.manual_seed(1)
    z, w = torch.randn(6, 8), torch.randn(6, 8)
    scores = torch.tensor([0.0, 1.0, 2.5, 3.0, 4.5, 5.0])
    taus = {"cosine": 20.0, "ibn": 20.0, "angle": 1.0, "contrastive": 20.0}
    out = angle_objective(z, w, scores, weights={"cosine": 1.0, "ibn": 0.5, "angle": 2.0, "contrastive": 0.0},
                          taus=taus, positive_min=1.0)
    assert set(out) == {"loss", "cosine", "ibn", "angle"}
    assert out["cosine"].item() == pytest.approx(cosine_loss(z, w, scores, 20.0).item(), rel=1e-6)
    assert out["loss"].item() == pytest.approx(
        out["cosine"].item() + 0.5 * out["ibn"].item() + 2.0 * out["angle"].item(), rel=1e-6)


def test_angle_gradient_does_not_vanish_where_the_cosine_gradient_does():
    # pair 0: z = w (cos = 1), pair 1: z = -w (cos = -1), the lower-scored one; every gradient of
    # the cosine term vanishes there (cos is flat at +-1), the angle term's does not
    w = torch.tensor([[0.3, -1.2, 0.7, 0.5], [1.1, 0.4, -0.6, 0.9]])
    z = (w * torch.tensor([[1.0], [-1.0]])).clone().requires_grad_(True)
    scores = torch.tensor([5.0, 0.0])
    # at tau = 1 neither ranking weight saturates: d loss / d(cos_1 - cos_0) = sigmoid(-2) = 0.12
    cosine_loss(z, w, scores, 1.0).backward()
    assert z.grad.abs().max().item() < 1e-5
    z.grad = None
    angle_loss(z, w, scores, 1.0).backward()
    assert z.grad.norm().item() > 0.05
    # per pair: the gradient of cos(z, w) at z = w is zero, that of the angle difference is not
    z0 = w[:1].clone().requires_grad_(True)
    torch.nn.functional.cosine_similarity(z0, w[:1]).sum().backward()
    assert z0.grad.abs().max().item() < 1e-6
    z0.grad = None
    angle_difference(z0, w[:1]).sum().backward()
    assert z0.grad.norm().item() > 0.1


def test_angle_needs_an_even_size():
    with pytest.raises(ValueError, match="must be even"):
        angle_difference(torch.ones(2, 3), torch.ones(2, 3))


def test_supervised_info_nce_with_hard_negatives_by_hand():
    # anchors a1 = (1, 0), a2 = (0, 1); positives p1 = (1, 0), p2 = (0.6, 0.8); one hard negative
    # per anchor: n1 = (0, 1), n2 = (-1, 0); every anchor sees every positive and every negative
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    n = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    tau = 0.5
    e = lambda c: math.exp(c / tau)  # noqa: E731
    l1 = -math.log(e(1.0) / (e(1.0) + e(0.6) + e(0.0) + e(-1.0)))
    l2 = -math.log(e(0.8) / (e(0.0) + e(0.8) + e(1.0) + e(0.0)))
    assert info_nce(a, p, temperature=tau, negatives=n).item() == pytest.approx((l1 + l2) / 2, rel=1e-6)
