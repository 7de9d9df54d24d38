"""GlobalPointer (Su 2021): every span (i, j), i <= j, scored per entity type, for NER.

s_a(i, j) = q_{i,a} . k_{j,a} / sqrt(d), with q, k the token states projected per type and rotated
by RoPE (so the score sees j - i), as bert4keras' GlobalPointer. The loss is the multi-label
categorical cross-entropy per (example, type), log(1 + sum_neg e^s) + log(1 + sum_pos e^-s),
averaged over examples and types; a span is predicted where s > 0.

Scores are returned unmasked; which spans exist (both ends a word's first sub-token, i <= j) is in
the labels (-100 elsewhere), which the loss, the R-Drop divergence and the decoding all read.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nlpx.tricks.consistency import reduce_divergence

IGNORE = -100


def rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding over [B, T, ..., d]: each pair (x_2m, x_2m+1) at position p is
    rotated by p * 10000^(-2m/d) (the interleaved pairs of bert4keras / RoFormer)."""
    t, d = x.shape[1], x.shape[-1]
    pos = torch.arange(t, dtype=torch.float32, device=x.device)
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    angle = pos[:, None] * freq[None, :]  # [T, d/2]
    shape = (1, t) + (1,) * (x.dim() - 3) + (d,)
    cos = angle.cos().repeat_interleave(2, -1).view(shape)
    sin = angle.sin().repeat_interleave(2, -1).view(shape)
    turned = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).reshape(x.shape)
    return x * cos + turned * sin


class GlobalPointer(nn.Module):
    def __init__(self, hidden: int, num_types: int, head_size: int = 64):
        super().__init__()
        self.num_types, self.head_size = num_types, head_size
        self.dense = nn.Linear(hidden, num_types * head_size * 2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, T, H] -> span scores [B, types, T, T]."""
        b, t, _ = hidden.shape
        qk = self.dense(hidden).view(b, t, self.num_types, 2, self.head_size)
        q, k = rope(qk[..., 0, :]), rope(qk[..., 1, :])
        return torch.einsum("bmhd,bnhd->bhmn", q, k) / math.sqrt(self.head_size)


def span_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The multi-label categorical cross-entropy per (example, type) over its valid spans (labels
    1 positive, 0 negative, -100 not a span), averaged over examples and types."""
    s = scores.float().flatten(2)
    y = labels.flatten(2)
    none = torch.full_like(s, -math.inf)
    zero = torch.zeros_like(s[..., :1])
    neg = torch.cat([torch.where(y == 0, s, none), zero], dim=-1)
    pos = torch.cat([torch.where(y == 1, -s, none), zero], dim=-1)
    return (torch.logsumexp(neg, -1) + torch.logsumexp(pos, -1)).mean()


def bernoulli_divergence(p: torch.Tensor, q: torch.Tensor, labels: torch.Tensor, reduction: str) -> torch.Tensor:
    """R-Drop for GlobalPointer (the notes' form): each span score a Bernoulli logit, the symmetric
    KL of Bernoulli(sigmoid(s)) and Bernoulli(sigmoid(t)) is (sigmoid(s) - sigmoid(t)) (s - t);
    summed over the valid spans of an example, then summed (reduction=sum) or averaged (mean)
    over the batch, as R-Drop's classification KL; token: averaged over the batch's valid spans."""
    s, t = p.float(), q.float()
    per_span = (torch.sigmoid(s) - torch.sigmoid(t)) * (s - t)
    return reduce_divergence(per_span, labels != IGNORE, reduction)


def decode(scores: torch.Tensor, valid: torch.Tensor) -> list[list[tuple[int, int, int]]]:
    """(type, i, j) of the valid spans with a positive score, per example."""
    hits = ((scores > 0) & valid).nonzero().tolist()
    out: list[list[tuple[int, int, int]]] = [[] for _ in range(scores.shape[0])]
    for b, a, i, j in hits:
        out[b].append((a, i, j))
    return out
