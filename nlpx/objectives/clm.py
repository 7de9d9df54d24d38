"""Causal language modelling (objective=clm, GPT): max sum_t log p(x_t | x_<t).

The decoder's hidden state at position t predicts token t+1; padding is never a target. The
vocabulary projection runs on the real target positions only, as in the MLM objective.
"""

from __future__ import annotations

import torch.nn.functional as F

from nlpx.objectives.base import PretrainObjective


class CausalLM(PretrainObjective):
    name = "clm"
    decoder = True
    monitor = "clm_loss"

    def forward(self, model, batch) -> dict:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        hidden = self.family.encoder(model)(input_ids=ids, attention_mask=mask).last_hidden_state
        valid = mask[:, 1:].bool() & mask[:, :-1].bool()
        targets = ids[:, 1:][valid]
        logits = self.family.lm_head(model)(hidden[:, :-1][valid])
        loss = F.cross_entropy(logits.float(), targets)
        correct = (logits.argmax(-1) == targets).sum()
        return {"loss": loss, "clm_loss": loss, "clm_acc": correct.float() / max(int(targets.numel()), 1),
                "_clm_count": int(targets.numel())}
