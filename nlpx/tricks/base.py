"""What every fine-tuning trick sees: the task it is applied to, and one training step.

A trick is one small class, named by `_target_` in its conf/trick/<name>.yaml, with a few hooks;
nlpx.tricks.stack calls each hook on every trick of a run in the order of their `order` attributes:

  prepare_model(model) -> model      change or wrap the model (multi_dropout's head, LoRA)
  param_groups(model, lr, wd)        the optimizer's groups (LLRD), or None
  replace_loss(loss_fn) -> loss_fn   the loss of one set of logits (ASL's instead of the task's)
  wrap_loss(loss_fn) -> loss_fn      the pass's loss built from that one (multi_dropout: K samples)
  extend_loss(step, loss, logits)    adds terms that need extra passes (R-Drop, SiFT)
  after_backward(step)               works between backward and the optimizer step (AWP)
  on_batch_end(step, logits)         state updated once per batch (ASL's adaptive gamma)
  save(model, run_dir)               files of the trick's own (LoRA's adapter alone)
  export_model(model) -> model       the plain transformers model to save (LoRA merged, ...)
  describe() -> dict                 facts for the run's result (LoRA's trainable fraction)
  metrics() -> dict                  logged as trick/<name>_<key>
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class TaskInfo:
    model_type: str  # transformers' config.model_type
    num_labels: int  # 1: regression; tag or entity-type outputs per token for a tagger
    multilabel: bool = False
    token_level: bool = False  # outputs per token (objective=tag, qa): the objective's own loss and decoding
    divergence: object = None  # (p, q, labels, reduction) -> R-Drop's term where the objective has its own

    @property
    def regression(self) -> bool:
        return self.num_labels == 1 and not self.multilabel


class Trick:
    name = ""  # the trick's option name: keys of the results (tricks.applied, trick/<name>_<metric>)
    order: int  # where its hooks run among the others' (lower first); every trick sets its own

    def __init__(self, cfg, task: TaskInfo):
        self.cfg, self.task = cfg, task

    def problem(self) -> str | None:
        """Why this trick cannot run on this task / model family (None: it can)."""
        return None

    def prepare_model(self, model):
        return model

    def param_groups(self, model, lr: float, weight_decay: float) -> list[dict] | None:
        return None

    def replace_loss(self, loss_fn):
        return loss_fn

    def wrap_loss(self, loss_fn):
        return loss_fn

    def extend_loss(self, step: Step, loss: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return loss

    def after_backward(self, step: Step) -> None:
        pass

    def on_batch_end(self, step: Step, logits: torch.Tensor) -> None:
        pass

    def save(self, model, run_dir) -> None:
        pass

    def export_model(self, model):
        return model

    def describe(self) -> dict:
        return {}

    def metrics(self) -> dict[str, float]:
        return {}


@dataclass
class Step:
    """One training batch as the tricks see it. forward/backward count the passes, which the
    metrics report (cost/forward_passes, cost/backward_passes per optimizer step)."""

    model: torch.nn.Module
    batch: dict
    loss_fn: object  # (logits, labels) -> the task loss, tricks' own loss rules included
    backward_fn: object  # loss -> None: Lightning's manual_backward, scaled for accumulation
    epoch: int
    global_step: int
    forwards: int = 0
    backwards: int = 0
    parts: dict = field(default_factory=dict)  # loss terms to log, name -> value

    def forward(self) -> torch.Tensor:
        from nlpx.data.encode import MODEL_INPUTS

        self.forwards += 1
        return self.model(**{k: self.batch[k] for k in MODEL_INPUTS if k in self.batch}).logits

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(logits, self.batch["labels"])

    def backward(self, loss: torch.Tensor) -> None:
        self.backwards += 1
        self.backward_fn(loss)

    def grad(self, loss: torch.Tensor, inputs: list[torch.Tensor]) -> tuple:
        """Gradients w.r.t. inputs only, leaving every .grad as it is (a direction, not an update)."""
        self.backwards += 1
        return torch.autograd.grad(loss, inputs, allow_unused=True)
