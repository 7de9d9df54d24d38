"""Multi-sample dropout (Inoue 2019): K dropout masks on the representation before the output
layer, each through the same output layer; training uses the mean of the K losses (or the loss
of the mean logits). In eval mode dropout is the identity, so the head equals the plain one.

Done with hooks, so the model keeps its modules and parameter names: LoRA's saved adapter and
the exported model load into the family's plain class. A forward hook on the output layer
replaces its output, in training, by the mean of its outputs on K dropout views of its input
(the K outputs are kept for the loss). The family's own last dropout is switched off (p = 0),
else it would be applied twice:
  bert, albert, deberta(-v2), gau: the model's `dropout` before `classifier`
  xlnet: `sequence_summary.last_dropout` before `logits_proj`
  roberta, electra, roformer, longformer, bigbird: `classifier.dropout` is used twice, before dense and before
      out_proj; a pre-hook on `dense` applies it there at its own rate, and out_proj gets the K samples
  gpt2: `score` has no dropout before it; the K samples are added. Its score runs on every
      token ([batch, tokens, labels]) and the model keeps one token per example: the samples
      are taken at the rows the model returned (nlpx does not copy transformers' padding rule)
The hooks are closures, so peft's modules_to_save copy of the head (LoRA) shares their state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nlpx.errors import UserError
from nlpx.tricks.base import Trick

# model_type -> (the output layer, the dropout module applied right before it, or None)
HEADS = {"bert": ("classifier", "dropout"), "albert": ("classifier", "dropout"),
         "deberta-v2": ("classifier", "dropout"), "deberta": ("classifier", "dropout"),
         "roberta": ("classifier.out_proj", "classifier.dropout"),
         "electra": ("classifier.out_proj", "classifier.dropout"),
         "roformer": ("classifier.out_proj", "classifier.dropout"),
         "gpt2": ("score", None), "nlpx_gau": ("classifier", "dropout"),
         "longformer": ("classifier.out_proj", "classifier.dropout"),
         "big_bird": ("classifier.out_proj", "classifier.dropout"),
         "xlnet": ("logits_proj", "sequence_summary.last_dropout")}
SHARED_DROPOUT = {"roberta", "electra", "roformer", "longformer", "big_bird"}  # one dropout module used before dense and out_proj
REDUCE = ("mean_loss", "mean_logits")


class Sampler:
    """The K dropout views of the output layer's input; `samples` and `mean` of the last
    training forward (None after an eval forward)."""

    def __init__(self, rates: list[float]):
        self.rates = rates
        self.samples: list[torch.Tensor] | None = None
        self.mean: torch.Tensor | None = None

    def run(self, layer, x):
        if not layer.training:
            self.samples = self.mean = None
            return None
        # layer.forward, not layer(...): no hooks again
        self.samples = [layer.forward(F.dropout(x, r, training=True)) for r in self.rates]
        self.mean = torch.stack(self.samples).mean(0)
        return self.mean

    def pooled_samples(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """The K samples at the rows the model returned (GPT-2 keeps one token per example)."""
        if self.samples[0].shape == logits.shape:
            return self.samples
        hit = (self.mean.detach() == logits.detach().unsqueeze(1)).all(-1)  # [batch, tokens]
        if not hit.any(-1).all():
            raise RuntimeError("multi_dropout: the logits are not rows of the last forward's samples")
        last = hit.shape[1] - 1 - hit.flip(-1).int().argmax(-1)  # the rightmost match, as GPT-2 pools
        rows = torch.arange(len(logits), device=logits.device)
        return [s[rows, last] for s in self.samples]


class MultiDropout(Trick):
    name = "multi_dropout"
    order = 20

    def __init__(self, cfg, task):
        super().__init__(cfg, task)
        self.rates = [float(r) for r in cfg.rates]
        if not self.rates or any(not 0 <= r < 1 for r in self.rates):
            raise UserError(f"trick.multi_dropout.rates={list(cfg.rates)}: give one rate in [0, 1) per sample")
        if str(cfg.reduce) not in REDUCE:
            raise UserError(f"trick.multi_dropout.reduce={cfg.reduce}: unknown (valid: {', '.join(REDUCE)})")
        self.sampler = Sampler(self.rates)
        self._hooks: list = []
        self._own_p: float | None = None

    def problem(self) -> str | None:
        if self.task.token_level:
            return "it replaces a sequence classifier's output layer; a token-level objective (objective=tag, qa) has its own"
        if self.task.model_type not in HEADS:
            return f"no known output layer for model type {self.task.model_type}"
        return None

    def prepare_model(self, model):
        output, dropout = HEADS[self.task.model_type]
        sampler = self.sampler

        def sample(layer, inputs, result):
            return sampler.run(layer, inputs[0])

        model.get_submodule(output).register_forward_hook(sample)
        self._hooks.append(sample)
        if dropout is not None:
            own = model.get_submodule(dropout)
            self._own_p, own.p = own.p, 0.0
            if self.task.model_type in SHARED_DROPOUT:
                rate = self._own_p

                def before_dense(layer, args):
                    return (F.dropout(args[0], rate, training=layer.training),)

                model.get_submodule(output.rpartition(".")[0] + ".dense").register_forward_pre_hook(before_dense)
                self._hooks.append(before_dense)
        return model

    def wrap_loss(self, loss_fn):
        return lambda logits, labels: self.task_loss_of(loss_fn, logits, labels)

    def task_loss_of(self, loss_fn, logits, labels):
        """The configured mean over the K samples of the last forward."""
        samples = self.sampler.samples
        if samples is None or str(self.cfg.reduce) == "mean_logits":
            return loss_fn(logits, labels)
        return torch.stack([loss_fn(s, labels) for s in self.sampler.pooled_samples(logits)]).mean()

    def export_model(self, model):
        """The family's plain model again: hooks removed (in peft's head copies too), the own
        dropout back at its rate."""
        for module in model.modules():
            for hooks in (module._forward_hooks, module._forward_pre_hooks):
                for key in [k for k, fn in hooks.items() if fn in self._hooks]:
                    del hooks[key]
        output, dropout = HEADS[self.task.model_type]
        if dropout is not None and self._own_p is not None:
            model.get_submodule(dropout).p = self._own_p
        return model
