"""A linear-chain conditional random field over per-word tag scores (the CRF tagging head).

Written here rather than taken from a package: pytorch-crf, the usual choice, has had no release
since 2019, and what a CRF needs is two short recursions. It is tested against brute-force
enumeration of every tag path (tests/unit/test_tagging_heads.py).

score(y | e) = start[y_0] + sum_t e_t[y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{n-1}]
log p(y | e) = score(y | e) - log sum_{y'} exp score(y' | e)      (the forward algorithm)
decode(e)    = argmax_y score(y | e)                                (Viterbi)

Sequences are given padded with a prefix mask: mask[b, t] is true for t < length_b (>= 1).
"""

from __future__ import annotations

import torch
from torch import nn


class CRF(nn.Module):
    def __init__(self, num_tags: int):
        super().__init__()
        self.num_tags = num_tags
        # uniform(-0.1, 0.1), the initialisation pytorch-crf and most BERT-CRF code use
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """score(y | e) of the given tags, [B]."""
        e, m = emissions.float(), mask.float()
        lengths = mask.sum(1)
        first = tags[:, 0]
        score = self.start[first] + e[:, 0].gather(1, first[:, None]).squeeze(1)
        if e.shape[1] > 1:
            emit = e[:, 1:].gather(2, tags[:, 1:, None]).squeeze(2)
            trans = self.transitions[tags[:, :-1], tags[:, 1:]]
            score = score + ((emit + trans) * m[:, 1:]).sum(1)
        last = tags.gather(1, (lengths - 1)[:, None]).squeeze(1)
        return score + self.end[last]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log sum over every tag path of exp score, [B]."""
        e = emissions.float()
        alpha = self.start + e[:, 0]  # [B, C]
        for t in range(1, e.shape[1]):
            nxt = torch.logsumexp(alpha[:, :, None] + self.transitions + e[:, t, None, :], dim=1)
            alpha = torch.where(mask[:, t, None], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.path_score(emissions, tags, mask) - self.log_partition(emissions, mask)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag path of each sequence (its own length)."""
        e = emissions.float()
        score = self.start + e[:, 0]
        back = []
        for t in range(1, e.shape[1]):
            best, arg = (score[:, :, None] + self.transitions).max(dim=1)
            nxt = best + e[:, t]
            keep = mask[:, t, None]
            score = torch.where(keep, nxt, score)
            # past a sequence's end its path points to itself, so backtracking passes through
            back.append(torch.where(keep, arg, torch.arange(self.num_tags, device=e.device).expand_as(arg)))
        score = score + self.end
        lengths = mask.sum(1).tolist()
        paths = []
        last = score.argmax(1)
        for b in range(e.shape[0]):
            tag = int(last[b])
            path = [tag]
            for t in range(len(back) - 1, -1, -1):
                tag = int(back[t][b, tag])
                path.append(tag)
            paths.append(path[::-1][:lengths[b]])
        return paths
