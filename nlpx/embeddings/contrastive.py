"""InfoNCE for sentence embeddings (SimCSE, ESimCSE; AnglE's terms are in nlpx.embeddings.angle).

As in SimCSE's and ESimCSE's code: one direction, each anchor h_i against every positive h+_j of
the batch, every hard negative h-_k of the batch (supervised SimCSE) and every queued embedding
q_m (ESimCSE's momentum queue, no gradient), cosine similarity divided by the temperature tau,
cross-entropy with target i:

    L_i = -log e^{sim(h_i, h+_i)/tau} / (sum_j e^{sim(h_i, h+_j)/tau} + sum_k e^{sim(h_i, h-_k)/tau}
                                        + sum_m e^{sim(h_i, q_m)/tau})
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


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
