"""SpanBERT (objective=span): span masking (nlpx.data.masking, strategy=span) + the Span
Boundary Objective. Loss = L_MLM + L_SBO, both averaged over the masked tokens.

SBO (Joshi et al. 2020, eq. 1-2): a token x_i inside a masked span (s..e) is predicted from the
encoder outputs of the two boundary tokens and a relative-position embedding only:
    h0 = [x_{s-1}; x_{e+1}; p_{i-s+1}]
    h1 = LayerNorm(GELU(W1 h0))
    y_i = LayerNorm(GELU(W2 h1))
and y_i goes through the model's own output projection (the MLM decoder, tied to the input
embeddings), as SpanBERT shares it between MLM and SBO. transformers has no SBO: this head is
nlpx's own and is exported as nlpx_heads.safetensors (see objectives/base.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlpx.objectives.mlm import MaskedLM


class SpanBoundaryHead(nn.Module):
    def __init__(self, hidden: int, out_dim: int, max_positions: int, eps: float = 1e-12):
        super().__init__()
        self.max_positions = max_positions
        self.position = nn.Embedding(max_positions, hidden)
        self.w1 = nn.Linear(3 * hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=eps)
        self.w2 = nn.Linear(hidden, out_dim)
        self.ln2 = nn.LayerNorm(out_dim, eps=eps)

    def forward(self, left: torch.Tensor, right: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        # tokens deeper into a span than the table is long share its last row (spans are <= 10
        # words; a word of many pieces could go further)
        p = self.position(pos.clamp(max=self.max_positions - 1))
        h1 = self.ln1(F.gelu(self.w1(torch.cat([left, right, p], dim=-1))))
        return self.ln2(F.gelu(self.w2(h1)))


class SpanMaskedLM(MaskedLM):
    name = "span"

    def attach(self, model) -> None:
        decoder = model.get_output_embeddings()
        std = getattr(model.config, "initializer_range", 0.02)
        self.sbo_head = SpanBoundaryHead(model.config.hidden_size, decoder.in_features,
                                         int(self.cfg.sbo.max_positions),
                                         eps=getattr(model.config, "layer_norm_eps", 1e-12))
        for module in self.sbo_head.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def sbo(self, model, hidden: torch.Tensor, batch) -> dict:
        pos = batch["sbo_pos"]
        inside = pos >= 0
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(pos)[inside]
        left = hidden[rows, batch["sbo_left"][inside]]
        right = hidden[rows, batch["sbo_right"][inside]]
        targets = batch["labels"][inside]
        logits = model.get_output_embeddings()(self.sbo_head(left, right, pos[inside]))
        loss = F.cross_entropy(logits.float(), targets)
        correct = (logits.argmax(-1) == targets).sum()
        return {"sbo_loss": loss, "sbo_acc": correct.float() / max(int(targets.numel()), 1),
                "_sbo_count": int(targets.numel())}

    def forward(self, model, batch) -> dict:
        hidden = self.encode(model, batch).last_hidden_state
        result = {**self.mlm(model, hidden, batch["labels"]), **self.sbo(model, hidden, batch)}
        result["loss"] = result["mlm_loss"] + result["sbo_loss"]
        return result
