"""AdamW parameter groups shared by pretraining and fine-tuning."""

from __future__ import annotations


def decay_groups(parameters, weight_decay: float) -> list[dict]:
    """BERT's rule: no weight decay on biases and LayerNorm weights (the 1-D tensors)."""
    decay, no_decay = [], []
    for p in parameters:
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0}]
