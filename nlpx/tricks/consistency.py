"""Divergences between two predictions of one batch, for R-Drop and SiFT.

Each follows its paper's public code for class distributions; scores (STS-B) and independent
labels (multi-label) have no softmax distribution, so they use the analogue stated per function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlpx.tricks.base import TaskInfo

# sum: over the batch (the paper's code) | mean: over examples | token: over the positions a
# token-level divergence counts (labelled tokens, valid spans; a QA window's start and end)
PER_EXAMPLE_REDUCTIONS = ("sum", "mean")
RDROP_REDUCTIONS = (*PER_EXAMPLE_REDUCTIONS, "token")


def reduce_divergence(per_position: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    """A token-level divergence [B, ...] at the valid positions: summed over each example's
    positions, then summed over the batch (sum), averaged over examples (mean), or averaged over
    all valid positions of the batch (token: fairseq's per-token normalisation, which R-Drop's
    translation code inherits, on the scale of a token-averaged loss such as the softmax tagger's;
    a CRF's or GlobalPointer's loss is per sentence, so there the term is far smaller)."""
    kept = torch.where(valid, per_position, torch.zeros_like(per_position))
    if reduction == "token":
        return kept.sum() / valid.sum().clamp(min=1)
    per_example = kept.flatten(1).sum(1)
    return per_example.sum() if reduction == "sum" else per_example.mean()


def _bernoulli_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """Per label [log(1-p), log p]: multi-label outputs as independent two-class distributions."""
    return torch.stack([F.logsigmoid(-logits), F.logsigmoid(logits)], dim=-1)


def _logprobs(logits: torch.Tensor, task: TaskInfo) -> torch.Tensor:
    return _bernoulli_logprobs(logits.float()) if task.multilabel else F.log_softmax(logits.float(), dim=-1)


def rdrop_kl(p_logits: torch.Tensor, q_logits: torch.Tensor, task: TaskInfo, reduction: str = "sum") -> torch.Tensor:
    """R-Drop: 1/2 (KL(p||q) + KL(q||p)), summed over classes (over labels for multi-label) and,
    with reduction="sum", summed over the batch as the paper's code does (its alpha values assume
    that sum, while the task loss is a mean); "mean" averages over the batch instead, an alpha
    independent of the batch size (B times weaker at the same alpha). Regression: the squared
    difference of the two scores, reduced the same way. Both directions carry gradients, as in
    the paper's code."""
    if reduction not in PER_EXAMPLE_REDUCTIONS:  # one prediction per example: no token form
        raise ValueError(f"reduction={reduction!r} (valid: {', '.join(PER_EXAMPLE_REDUCTIONS)})")
    if task.regression:
        per_example = (p_logits.float().squeeze(-1) - q_logits.float().squeeze(-1)) ** 2
    else:
        lp, lq = _logprobs(p_logits, task), _logprobs(q_logits, task)
        kl_pq = (lp.exp() * (lp - lq)).sum(-1)
        kl_qp = (lq.exp() * (lq - lp)).sum(-1)
        per_example = (0.5 * (kl_pq + kl_qp)).reshape(len(p_logits), -1).sum(-1)
    return per_example.sum() if reduction == "sum" else per_example.mean()


def sift_symmetric_kl(logits: torch.Tensor, target: torch.Tensor, task: TaskInfo) -> torch.Tensor:
    """DeBERTa's `symmetric_kl` (SiFT): the two cross-entropies with each side's probabilities
    detached, -sum p_t log p_s - sum p_s log p_t, summed (not averaged), mean over the batch.
    Its gradient is that of KL(p_t||p_s) + KL(p_s||p_t) with the weights p held fixed.
    Regression: the squared difference (DeBERTa's MSE perturbation loss)."""
    if task.regression:
        return F.mse_loss(logits.float().squeeze(-1), target.float().squeeze(-1))
    ls, lt = _logprobs(logits, task), _logprobs(target, task)
    loss = (lt.exp().detach() * -ls).sum(-1) + (ls.exp().detach() * -lt).sum(-1)
    return loss.reshape(len(logits), -1).sum(-1).mean()
