"""Masked LM (objective=mlm), MLM + next-sentence prediction (mlm_nsp), MLM + sentence-order
prediction (sop, ALBERT).

L_MLM = -sum_{i in C} log p(x_i | X~), averaged over the selected positions C. The vocabulary
projection runs on the selected positions only: for small models it costs more than the encoder.
The pair tasks (NSP, SOP) classify the pooled [CLS] vector into 2 classes with the family's HF
head where it has one (BERT's NSP head, ALBERT's SOP head), else with a head of nlpx's own
(a linear layer on the pooled vector, as BERT's head); loss = L_MLM + L_pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nlpx.objectives.base import PretrainObjective


class MaskedLM(PretrainObjective):
    name = "mlm"
    common_eval = True

    def common_metrics(self, model, batches) -> dict[str, float]:
        """MLM loss and accuracy on the common set, token-weighted over the whole set."""
        loss, correct, count = 0.0, 0.0, 0
        for batch in batches:
            m = self.mlm(model, self.encode(model, batch).last_hidden_state, batch["labels"])
            n = m["_mlm_count"]
            loss, correct, count = loss + float(m["mlm_loss"]) * n, correct + float(m["mlm_acc"]) * n, count + n
        return {"common_mlm_loss": loss / max(count, 1), "common_mlm_acc": correct / max(count, 1)}

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
    """MLM + a sentence-pair task; the label is batch["next_sentence_label"] (0 = in order)."""

    name = "mlm_nsp"
    needs_nsp = True
    pair = "nsp"  # metric prefix

    def attach(self, model) -> None:
        if self.family.pair_head(model) is None:
            hidden = model.config.hidden_size
            self.own_pair_head = nn.Linear(hidden, 2)
            nn.init.normal_(self.own_pair_head.weight, std=getattr(model.config, "initializer_range", 0.02))
            nn.init.zeros_(self.own_pair_head.bias)

    def pair_logits(self, model, out, batch) -> torch.Tensor:
        head = self.family.pair_head(model) or self.own_pair_head
        return head(self.family.pooled(out, batch["attention_mask"]))

    def forward(self, model, batch) -> dict:
        out = self.encode(model, batch)
        result = self.mlm(model, out.last_hidden_state, batch["labels"])
        logits = self.pair_logits(model, out, batch)
        labels = batch["next_sentence_label"]
        p = self.pair
        result[f"{p}_loss"] = F.cross_entropy(logits.float(), labels)
        result[f"{p}_acc"] = (logits.argmax(-1) == labels).float().mean()
        result[f"_{p}_count"] = int(labels.numel())
        result["loss"] = result["mlm_loss"] + result[f"{p}_loss"]
        return result


class MaskedLMWithSOP(MaskedLMWithNSP):
    """ALBERT: the pair is two consecutive segments of one document, swapped half of the time."""

    name = "sop"
    pair = "sop"
