"""Adversarial weight perturbation (Wu et al. 2020), in the form Kaggle solutions made standard.

After the normal backward, each attacked weight tensor w (trainable, name matching `params`,
2-D or more when `matrices_only`: weight matrices, so no biases and no LayerNorm) moves along
its own normalised gradient,
    w <- w + adv_lr * (||w|| + 1e-6) * g / (||g|| + 1e-6)      (norms over the whole tensor)
clipped to [w0 - adv_eps |w0|, w0 + adv_eps |w0|] around the weights saved before the first
attack step; tensors whose gradient norm is 0 or not finite are left alone. The adversarial
loss is then forwarded and backpropagated; the saved weights are restored bit-exactly and the
optimizer steps.

With adv_steps > 1, each further attack step follows the gradient of the previous
adversarial loss (computed with autograd.grad, so .grad is untouched), and only the last
adversarial loss is backpropagated. The gradients accumulate (nlpx's definition; some
copies of the Kaggle code zero them before the adversarial backward): the step uses
grad L(w) + grad L(w + r). With gradient accumulation the attack direction is the gradient
accumulated so far in the optimizer step. The adversarial loss is the task loss (with the loss tricks: ASL,
multi-sample dropout), not R-Drop's or SiFT's extra terms.
Nothing happens before `adv_start` (in `adv_start_unit`: epoch, counted from 0, or step).
"""

from __future__ import annotations

import re

import torch

from nlpx.errors import UserError
from nlpx.tricks.base import Trick

UNITS = ("epoch", "step")


class AWP(Trick):
    name = "awp"
    order = 70

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        if str(cfg.adv_start_unit) not in UNITS:
            raise UserError(f"trick.awp.adv_start_unit={cfg.adv_start_unit}: unknown (valid: {', '.join(UNITS)})")
        if int(cfg.adv_steps) < 1:
            raise UserError(f"trick.awp.adv_steps={cfg.adv_steps}: at least 1")
        self.pattern = re.compile(str(cfg.params))
        self.attacks = 0
        self.perturbation = 0.0  # relative size of the last perturbation, ||r|| / ||w|| over all tensors

    def attacked(self, model) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in model.named_parameters()
                if p.requires_grad and self.pattern.search(n) and (p.ndim >= 2 or not self.cfg.matrices_only)]

    def active(self, step) -> bool:
        now = step.epoch if str(self.cfg.adv_start_unit) == "epoch" else step.global_step
        return float(self.cfg.adv_lr) > 0 and now >= int(self.cfg.adv_start)

    def after_backward(self, step):
        if not self.active(step):
            return
        params = [p for _, p in self.attacked(step.model)]
        saved = [p.detach().clone() for p in params]
        eps = float(self.cfg.adv_eps)
        boxes = [(w - eps * w.abs(), w + eps * w.abs()) for w in saved]
        grads = [p.grad for p in params]
        try:
            for i in range(int(self.cfg.adv_steps)):
                self._attack(params, grads, boxes)
                adv_loss = step.loss(step.forward())
                if i + 1 < int(self.cfg.adv_steps):
                    grads = list(step.grad(adv_loss, params))
                else:
                    step.backward(adv_loss)
                    step.parts["awp_loss"] = float(adv_loss.detach())
            with torch.no_grad():
                moved = sum(float((p - w).pow(2).sum()) for p, w in zip(params, saved))
                self.perturbation = (moved / max(sum(float(w.pow(2).sum()) for w in saved), 1e-30)) ** 0.5
        finally:
            with torch.no_grad():
                for p, w in zip(params, saved):
                    p.copy_(w)
        self.attacks += 1

    @torch.no_grad()
    def _attack(self, params, grads, boxes) -> None:
        lr = float(self.cfg.adv_lr)
        for p, g, (low, high) in zip(params, grads, boxes):
            if g is None:
                continue
            g_norm = torch.linalg.vector_norm(g.float())
            if g_norm == 0 or not torch.isfinite(g_norm):
                continue
            r = lr * g / (g_norm + 1e-6) * (torch.linalg.vector_norm(p.float()) + 1e-6)
            p.add_(r.to(p.dtype))
            p.copy_(torch.minimum(torch.maximum(p, low), high))

    def metrics(self):
        return {"attacks": float(self.attacks), "perturbation": self.perturbation}
