"""Asymmetric loss (Ridnik et al. 2021) with an adaptive gamma-minus.

Every output is a sigmoid label: multi-label tasks use their label sets; single-label tasks
(binary or multi-class) are one-vs-rest over their classes (target = one-hot), so the model's
head and predictions (argmax) stay as they are. Regression (STS-B) has no labels: an error on
its own, left at its squared error inside `nlpx eval glue` (noted in the results).

  L+ = (1 - p)^g+ log p,   L- = p_m^g- log(1 - p_m),   p_m = max(p - m, 0)
  loss = -sum over labels (y L+ + (1 - y) L-), mean over the batch (the code sums over the
         batch too; the mean keeps the learning rate independent of the batch size)

As the paper's code: p_m replaces p in both factors of L- (the notes write log(1 - p)), a
clamp at eps inside the logs, and no gradient through the focusing weight unless
trick.asl.focus_grad (the code's disable_torch_grad_focal_loss).

Adaptive gamma-minus: no public implementation exists (the ASL repo's issue #93 asks for one),
so this follows the formula in ../shared/CONCEPTS.md, with p_t the probability given to the
true label (p on positives, 1 - p on negatives):
  dp = mean(p_t over negatives) - mean(p_t over positives)
  g- <- max(0, g- + lambda (dp - dp_target))      once per training batch
While positives are predicted much less confidently than negatives (dp above the target) g-
rises, which down-weights the easy negatives further; below the target it falls. `mode: running`
uses an exponential running mean of dp (momentum) instead of the batch's value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlpx.errors import UserError
from nlpx.tricks.base import Trick

MODES = ("batch", "running")


def asymmetric_loss(logits: torch.Tensor, targets: torch.Tensor, *, gamma_pos: float, gamma_neg: float,
                    clip: float, eps: float = 1e-8, focus_grad: bool = False) -> torch.Tensor:
    """ASL over [batch, labels] logits and 0/1 targets: summed over labels, mean over the batch."""
    p = torch.sigmoid(logits.float())
    y = targets.float()
    p_m = (p - clip).clamp(min=0) if clip > 0 else p
    log_pos = torch.log(p.clamp(min=eps))
    log_neg = torch.log((1 - p_m).clamp(min=eps))
    with torch.set_grad_enabled(focus_grad and torch.is_grad_enabled()):
        w_pos = (1 - p) ** gamma_pos
        w_neg = p_m ** gamma_neg
    loss = y * w_pos * log_pos + (1 - y) * w_neg * log_neg
    return -loss.sum(-1).mean()


def probability_gap(logits: torch.Tensor, targets: torch.Tensor) -> float | None:
    """mean p_t over negatives - mean p_t over positives; None without both in the batch."""
    p = torch.sigmoid(logits.detach().float())
    pos, neg = targets > 0.5, targets <= 0.5
    if not pos.any() or not neg.any():
        return None
    return float((1 - p[neg]).mean() - p[pos].mean())


def targets_of(labels: torch.Tensor, num_labels: int, multilabel: bool) -> torch.Tensor:
    return labels.float() if multilabel else F.one_hot(labels.long(), num_labels).float()


class AdaptiveGamma:
    def __init__(self, gamma_neg: float, *, step_size: float, target: float, mode: str, momentum: float):
        if mode not in MODES:
            raise UserError(f"trick.asl.adaptive.mode={mode}: unknown (valid: {', '.join(MODES)})")
        self.gamma_neg, self.step_size, self.target = float(gamma_neg), float(step_size), float(target)
        self.mode, self.momentum = mode, float(momentum)
        self.gap: float | None = None  # the value the last update used

    def update(self, gap: float | None) -> float:
        if gap is not None:
            if self.mode == "running" and self.gap is not None:
                gap = self.momentum * self.gap + (1 - self.momentum) * gap
            self.gap = gap
            self.gamma_neg = max(0.0, self.gamma_neg + self.step_size * (gap - self.target))
        return self.gamma_neg


class ASL(Trick):
    name = "asl"
    order = 40

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        a = cfg.adaptive
        self.adaptive = AdaptiveGamma(cfg.gamma_neg, step_size=a.step_size, target=a.target, mode=str(a.mode),
                                      momentum=a.momentum) if a.enabled else None
        self.gamma_neg = float(cfg.gamma_neg)

    def problem(self) -> str | None:
        if self.task.token_level:
            return "a token-level objective (objective=tag, qa) has a loss of its own (CRF, GlobalPointer, pointers)"
        if self.task.regression:
            return "a regression task (one score, no labels) has nothing for ASL to weigh"
        return None

    def replace_loss(self, loss_fn):
        return self.task_loss

    def task_loss(self, logits, labels):
        return asymmetric_loss(logits, targets_of(labels, logits.shape[-1], self.task.multilabel),
                               gamma_pos=float(self.cfg.gamma_pos), gamma_neg=self.gamma_neg,
                               clip=float(self.cfg.clip), eps=float(self.cfg.eps),
                               focus_grad=bool(self.cfg.focus_grad))

    def on_batch_end(self, step, logits):
        if self.adaptive is not None:
            targets = targets_of(step.batch["labels"], logits.shape[-1], self.task.multilabel)
            self.gamma_neg = self.adaptive.update(probability_gap(logits, targets))

    def metrics(self):
        out = {"gamma_neg": self.gamma_neg}
        if self.adaptive is not None and self.adaptive.gap is not None:
            out["gap"] = self.adaptive.gap
        return out
