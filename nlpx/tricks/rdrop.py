"""R-Drop (Liang et al. 2021): a second forward pass with its own dropout masks;
loss = 1/2 (task(pass 1) + task(pass 2)) + alpha * 1/2 (KL(p1||p2) + KL(p2||p1)), the KL summed
over the batch (reduction=sum, the paper's code) or averaged (mean). With dropout off the two
passes are equal and the KL term is 0. A tagger has its own divergence (TaskInfo.divergence,
nlpx.objectives.tag): the per-token KL of the tag softmax, or GlobalPointer's Bernoulli form;
token-level tasks may also average it over their tokens (reduction=token)."""

from __future__ import annotations

import logging

from nlpx.tricks.base import Trick
from nlpx.errors import UserError
from nlpx.tricks.consistency import RDROP_REDUCTIONS, rdrop_kl


class RDrop(Trick):
    name = "rdrop"
    order = 50

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        if cfg.reduction not in RDROP_REDUCTIONS:
            raise UserError(f"trick.rdrop.reduction={cfg.reduction}: unknown (valid: {', '.join(RDROP_REDUCTIONS)})")
        if cfg.reduction == "token" and not task.token_level:
            raise UserError("trick.rdrop.reduction=token: averages the KL over tokens, for token-level tasks "
                            "(objective=tag, qa); this task has one prediction per example (valid: sum, mean)")
        if task.token_level and cfg.reduction == "sum":
            logging.getLogger("nlpx").warning(
                "trick.rdrop.reduction=sum on a token-level task sums the KL over tokens and sentences, "
                "hundreds of times the token-averaged loss at alpha %s (CoNLL-2003: F1 0); "
                "trick.rdrop.reduction=token averages it over tokens, mean over sentences", cfg.alpha)
        self.last_kl: float | None = None

    def extend_loss(self, step, loss, logits):
        second = step.forward()
        reduction = str(self.cfg.reduction)
        kl = (self.task.divergence(logits, second, step.batch["labels"], reduction) if self.task.divergence
              else rdrop_kl(logits, second, self.task, reduction))
        self.last_kl = float(kl.detach())
        step.parts["rdrop_kl"] = self.last_kl
        return 0.5 * (loss + step.loss(second)) + float(self.cfg.alpha) * kl

    def metrics(self):
        return {} if self.last_kl is None else {"kl": self.last_kl}
