"""InfoNCE for sentence embeddings (SimCSE, ESimCSE; AnglE's terms are in nlpx.embeddings.angle).

As in SimCSE's and ESimCSE's code: one direction, each anchor h_i against every positive h+_j of
the batch, every hard negative h-_k of the batch (supervised SimCSE) and every queued embedding
q_m (ESimCSE's momentum queue, no gradient), cosine similarity divided by the temperature tau,
cross-entropy with target i:

    L_i = -log e^{sim(h_i, h+_i)/tau} / (sum_j e^{sim(h_i, h+_j)/tau} + sum_k e^{sim(h_i, h-_k)/tau}
                                        + sum_m e^{sim(h_i, q_m)/tau})
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def full_precision(fn):
    """Run `fn` with autocast off: under bf16 mixed precision a matmul of unit vectors would be
    computed in bf16, whose cosines near 1 are 2^-8 apart (0.08 in logits at tau 0.05); SimCSE's
    reference computes them in float32."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return fn(*args, **kwargs)

    return wrapper


@full_precision
def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


@full_precision
def info_nce(anchors: torch.Tensor, positives: torch.Tensor, *, temperature: float,
             queue: torch.Tensor | None = None, negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of L_i above; `negatives` ([K, dim]) and `queue` ([M, dim], no gradient)
    add K + M negatives."""
    logits = cosine_matrix(anchors, positives)
    if negatives is not None:
        logits = torch.cat([logits, cosine_matrix(anchors, negatives)], dim=1)
    if queue is not None and len(queue):
        logits = torch.cat([logits, cosine_matrix(anchors, queue.detach())], dim=1)
    target = torch.arange(len(anchors), device=anchors.device)
    return F.cross_entropy(logits / temperature, target)
