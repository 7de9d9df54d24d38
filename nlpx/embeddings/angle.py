"""AnglE's objective for scored sentence pairs: L = w_cos L_cos + w_ibn L_ibn + w_angle L_angle
(+ w_contrastive L_contrastive: an nlpx option, weight 0 in both presets; the reference uses its
contrastive term only for (anchor, positive, negative) triples, not for scored pairs). No library has these, so they are
written here from CONCEPTS.md in the form of the authors' reference code (SeanLee97/AnglE):

Each batch is B pairs (z_i, w_i) with gold scores s_i. tau multiplies similarities (tau = 20 is a
temperature of 0.05).

  L_cos    = log(1 + sum_{s_i < s_j} exp(tau cos(z_i, w_i) - tau cos(z_j, w_j)))      (CoSENT)
  L_angle  = log(1 + sum_{s_i < s_j} exp(D_i - D_j)),
             D_i = tau |sum_k Re_k + sum_k Im_k| of  z_i conj(w_i) / (|z_i| |w_i|)
             (z = a + bi and w = c + di from the first and second halves of each vector:
             Re = ac + bd, Im = bc - ad, whole-vector norms); D ranks like a similarity.
  L_ibn    = InfoNCE over the 2B embeddings: each one against the other 2B - 1 (tau cos), its
             pair partner the target; the rows of a pair scored below `positive_min` have no
             target and add 0 to the mean over 2B rows (the reference casts scores to int, so a
             pair is positive from score 1 up)
  L_contrastive = InfoNCE of z_i against every w_j (tau cos), over the positive pairs only

Pairs with equal scores are not ranked against each other; a batch with no ordered pair has
L_cos = L_angle = log 1 = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlpx.embeddings.contrastive import full_precision

# the reference's large constant: masked-out entries of a logsumexp vanish (exp(-1e12) == 0)
MASKED = 1e12


@full_precision
def _ranking(values: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """log(1 + sum over (i, j) with s_i < s_j of exp(values_i - values_j))."""
    lower = (scores[:, None] < scores[None, :]).to(values.dtype)
    diffs = (values[:, None] - values[None, :] - (1 - lower) * MASKED).reshape(-1)
    return torch.logsumexp(torch.cat([diffs.new_zeros(1), diffs]), dim=0)


@full_precision
def pair_cosine(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (F.normalize(z.float(), dim=-1) * F.normalize(w.float(), dim=-1)).sum(-1)


def cosine_loss(z: torch.Tensor, w: torch.Tensor, scores: torch.Tensor, tau: float = 20.0) -> torch.Tensor:
    return _ranking(tau * pair_cosine(z, w), scores.float())


@full_precision
def angle_difference(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """|sum Re + sum Im| of z conj(w) / (|z| |w|) per pair (before tau)."""
    z, w = z.float(), w.float()
    if z.shape[-1] % 2:
        raise ValueError(f"angle: the embedding size ({z.shape[-1]}) must be even (real and imaginary halves)")
    a, b = z.chunk(2, dim=-1)
    c, d = w.chunk(2, dim=-1)
    re = (a * c + b * d).sum(-1)
    im = (b * c - a * d).sum(-1)
    return (re + im).abs() / (z.norm(dim=-1) * w.norm(dim=-1))


def angle_loss(z: torch.Tensor, w: torch.Tensor, scores: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    return _ranking(tau * angle_difference(z, w), scores.float())


def positives(scores: torch.Tensor, positive_min: float) -> torch.Tensor:
    return scores.float() >= positive_min


@full_precision
def in_batch_negative_loss(z: torch.Tensor, w: torch.Tensor, scores: torch.Tensor, tau: float = 20.0,
                           positive_min: float = 1.0) -> torch.Tensor:
    n = len(z)
    stacked = torch.stack([z, w], dim=1).reshape(2 * n, -1).float()  # z_0, w_0, z_1, w_1, ...
    unit = F.normalize(stacked, dim=-1)
    logits = tau * (unit @ unit.T) - torch.eye(2 * n, device=z.device) * MASKED
    partner = torch.arange(2 * n, device=z.device) ^ 1
    has_target = positives(scores, positive_min).repeat_interleave(2)
    per_row = F.cross_entropy(logits, partner, reduction="none")
    return (per_row * has_target.to(per_row.dtype)).sum() / (2 * n)


@full_precision
def contrastive_loss(z: torch.Tensor, w: torch.Tensor, scores: torch.Tensor, tau: float = 20.0,
                     positive_min: float = 1.0) -> torch.Tensor:
    keep = positives(scores, positive_min)
    if not keep.any():
        return z.sum() * 0.0
    z, w = z[keep].float(), w[keep].float()
    logits = tau * F.normalize(z, dim=-1) @ F.normalize(w, dim=-1).T
    return F.cross_entropy(logits, torch.arange(len(z), device=z.device))


TERMS = ("cosine", "ibn", "angle", "contrastive")


def angle_objective(z: torch.Tensor, w: torch.Tensor, scores: torch.Tensor, *, weights: dict, taus: dict,
                    positive_min: float) -> dict[str, torch.Tensor]:
    """{"loss": the weighted sum, and each term with a non-zero weight}."""
    parts = {}
    if weights["cosine"]:
        parts["cosine"] = cosine_loss(z, w, scores, taus["cosine"])
    if weights["ibn"]:
        parts["ibn"] = in_batch_negative_loss(z, w, scores, taus["ibn"], positive_min)
    if weights["angle"]:
        parts["angle"] = angle_loss(z, w, scores, taus["angle"])
    if weights["contrastive"]:
        parts["contrastive"] = contrastive_loss(z, w, scores, taus["contrastive"], positive_min)
    loss = sum(weights[k] * v for k, v in parts.items())
    return {"loss": loss, **parts}
