"""ESimCSE's momentum contrast: a momentum copy of the encoder, theta_m <- lambda theta_m +
(1 - lambda) theta_e after each step (it gets no gradient), and a FIFO queue of its embeddings
that adds negatives to InfoNCE; the oldest entries leave first. torch has the EMA update
(torch.optim.swa_utils.get_ema_multi_avg_fn) but not one that keeps the copy out of autograd and
the optimizer, and no queue: these are small enough to own."""

from __future__ import annotations

import copy

import torch
from torch import nn


class MomentumEncoder(nn.Module):
    def __init__(self, encoder: nn.Module, momentum: float):
        super().__init__()
        self.momentum = float(momentum)
        self.encoder = copy.deepcopy(encoder)
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, encoder: nn.Module) -> None:
        for m, e in zip(self.encoder.parameters(), encoder.parameters()):
            m.mul_(self.momentum).add_(e.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)


class EmbeddingQueue(nn.Module):
    """Up to `size` embeddings; push adds the newest, dropping the oldest beyond size.
    A buffer, so it moves with the module and is saved in checkpoints."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size = int(size)
        self.register_buffer("items", torch.zeros(0, dim))

    @torch.no_grad()
    def push(self, embeddings: torch.Tensor) -> None:
        if self.size <= 0:
            return
        self.items = torch.cat([self.items, embeddings.detach().to(self.items)])[-self.size:]

    def __len__(self) -> int:
        return len(self.items)
