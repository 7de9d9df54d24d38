"""Masked LM (objective=mlm) and masked LM + next-sentence prediction (objective=mlm_nsp).

L_MLM = -sum_{i in C} log p(x_i | X~), averaged over the selected positions C. The vocabulary
projection runs on the selected positions only: for small models it costs more than the encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedLM(nn.Module):
    needs_nsp = False

    def __init__(self, cfg, family):
        super().__init__()
        self.cfg = cfg
        self.family = family

    def encode(self, model, batch):
        return self.family.encoder(model)(input_ids=batch["input_ids"],
                                          attention_mask=batch["attention_mask"],
                                          token_type_ids=batch.get("token_type_ids"))

    def mlm(self, model, hidden: torch.Tensor, labels: torch.Tensor) -> dict:
        selected = labels != -100
        targets = labels[selected]
        logits = self.family.mlm_head(model)(hidden[selected])
        loss = F.cross_entropy(logits.float(), targets)
        correct = (logits.argmax(-1) == targets).sum()
        return {"mlm_loss": loss, "mlm_acc": correct.float() / max(int(targets.numel()), 1),
                "_mlm_count": int(targets.numel())}

    def forward(self, model, batch) -> dict:
        out = self.encode(model, batch)
        result = self.mlm(model, out.last_hidden_state, batch["labels"])
        result["loss"] = result["mlm_loss"]
        return result


class MaskedLMWithNSP(MaskedLM):
    needs_nsp = True

    def forward(self, model, batch) -> dict:
        out = self.encode(model, batch)
        result = self.mlm(model, out.last_hidden_state, batch["labels"])
        nsp_logits = self.family.nsp_head(model)(out.pooler_output)
        nsp_labels = batch["next_sentence_label"]
        result["nsp_loss"] = F.cross_entropy(nsp_logits.float(), nsp_labels)
        result["nsp_acc"] = (nsp_logits.argmax(-1) == nsp_labels).float().mean()
        result["_nsp_count"] = int(nsp_labels.numel())
        result["loss"] = result["mlm_loss"] + result["nsp_loss"]
        return result
