"""SiFT, DeBERTa's scale-invariant fine-tuning (He et al. 2021; DeBERTa's sift.py): a virtual
adversarial perturbation of the layer-normalised word embeddings.

The output h of the embedding LayerNorm is perturbed in its normalised coordinates,
n = (h - mean) / std per token: h' = h + std * delta, so delta is scale-invariant. As in
DeBERTa's code: delta starts as N(0, init_perturbation) clamped to +-2 init_perturbation; one
ascent step on the symmetric KL between the perturbed and the clean logits (the clean side
detached), delta <- delta + learning_rate * g / (1e-6 + max|g| over the hidden size); then the
adversarial term is the symmetric KL at the new delta, added with `weight`. The perturbed pass
does not backpropagate into the embeddings (h is detached there, as in the code).
The logged term is DeBERTa's value: two cross-entropies, i.e. the symmetric KL plus both
entropies, so it does not fall to 0 when the predictions agree (about 1.39 for two uniform
classes); its gradient is the symmetric KL's.
One difference: DeBERTa's hook also re-normalises the clean pass (a LayerNorm without affine
parameters after the model's own); here the clean pass is the model's unchanged, so SiFT
with delta = 0 gives exactly the plain model's outputs.
"""

from __future__ import annotations

import torch

from nlpx.errors import UserError
from nlpx.tricks.base import Trick
from nlpx.tricks.consistency import sift_symmetric_kl


def embedding_norm(model):
    """The LayerNorm at the end of the family's embeddings, or None (GPT-2 has none)."""
    if hasattr(model, "peft_config"):  # LoRA: peft's base_model is its tuner, not the encoder
        model = model.get_base_model()
    embeddings = getattr(model.base_model, "embeddings", None)
    return getattr(embeddings, "LayerNorm", None) if embeddings is not None else None


NO_EMBEDDING_NORM = {"gpt2": "GPT-2", "xlnet": "XLNet"}  # model_type -> name


class SiFT(Trick):
    name = "sift"
    order = 60

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        self.delta: torch.Tensor | None = None  # None: the hook leaves the output alone
        self.hidden: torch.Tensor | None = None  # the last perturbed input (for tests)
        self.last: float | None = None
        self.model = None

    def problem(self):
        if self.task.token_level:
            return "its divergence is over one output per example; a token-level objective (objective=tag, qa) has one per token"
        if self.task.model_type in NO_EMBEDDING_NORM:
            return f"{NO_EMBEDDING_NORM[self.task.model_type]} has no layer-normalised word embeddings to perturb"
        return None

    def prepare_model(self, model):
        norm = embedding_norm(model)
        if norm is None:
            raise UserError(f"trick=sift: cannot apply to this run: {type(model).__name__} has no "
                            "embeddings.LayerNorm to perturb")
        norm.register_forward_hook(self._perturb)
        self.model = model
        return model

    def _perturb(self, module, inputs, output):
        if self.delta is None:
            return None
        h = output.detach()
        std = h.float().var(-1, unbiased=False, keepdim=True).add(module.eps).sqrt()
        if self.delta.shape != h.shape:  # the first adversarial pass: the batch's own shape
            init = float(self.cfg.init_perturbation)
            self.delta = torch.empty(h.shape, device=h.device).normal_(0, init).clamp(-2 * init, 2 * init)
            self.delta.requires_grad_(True)
        self.hidden = (h.float() + std * self.delta).to(output.dtype)
        return self.hidden

    def extend_loss(self, step, loss, logits):
        self.delta = torch.empty(0)  # armed: the hook draws delta at the batch's shape
        try:
            adv = step.forward()
            g, = step.grad(sift_symmetric_kl(adv, logits.detach(), self.task), [self.delta])
            if g is not None and torch.isfinite(g).all():
                scale = g.abs().amax(-1, keepdim=True).add(1e-6)
                self.delta = (self.delta + float(self.cfg.learning_rate) * g / scale).detach()
            else:
                self.delta = self.delta.detach()
            term = sift_symmetric_kl(step.forward(), logits, self.task)
        finally:
            self.delta = None
        self.last = float(term.detach())
        step.parts["sift"] = self.last
        return loss + float(self.cfg.weight) * term

    def metrics(self):
        return {} if self.last is None else {"adv_loss": self.last}
