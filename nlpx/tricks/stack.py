"""The tricks of one fine-tuning run, composed in one fixed order (nlpx.tricks.base has the hooks).

ORDER is the order every hook runs in, whatever order `trick=[...]` lists them:
  model:      multi_dropout's head is built first, then LoRA wraps the model (its
              modules_to_save copies that head); export undoes them in reverse
  optimizer:  LLRD splits optim.lr per layer (trick=lora presets optim.lr: conf/trick/_lora_optim.yaml)
  loss:       ASL replaces cross-entropy; multi_dropout averages it over its K samples
  extra:      R-Drop's second pass, then SiFT's perturbed passes, each adding its term
  backward:   AWP's adversarial forward/backward, after the loss above is backpropagated
  batch end:  ASL's adaptive gamma
"""

from __future__ import annotations

from hydra.utils import get_class

from nlpx.errors import UserError
from nlpx.tricks.base import Step, TaskInfo, Trick

ORDER = {"llrd": "nlpx.tricks.llrd.LLRD", "multi_dropout": "nlpx.tricks.multi_dropout.MultiDropout",
         "lora": "nlpx.tricks.lora.LoRA", "asl": "nlpx.tricks.asl.ASL", "rdrop": "nlpx.tricks.rdrop.RDrop",
         "sift": "nlpx.tricks.sift.SiFT", "awp": "nlpx.tricks.awp.AWP"}


def selected(trick_cfg) -> list[str]:
    names = list(trick_cfg or {})
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        raise UserError(f"trick={unknown[0]}: unknown (valid: {', '.join(sorted(ORDER))})")
    return [n for n in ORDER if n in names]


def check_not_pretraining(cfg) -> None:
    if selected(cfg.get("trick")):
        raise UserError(f"trick={','.join(selected(cfg.trick))}: tricks apply to fine-tuning "
                        f"(objective=classify or nlpx eval glue), not objective={cfg.objective.name}")


class TrickStack:
    def __init__(self, tricks: list[Trick], skipped: dict[str, str] | None = None):
        self.tricks = tricks
        self.skipped = skipped or {}  # name -> why it does not apply to this task (eval glue)

    @classmethod
    def build(cls, trick_cfg, task: TaskInfo, *, strict: bool = True) -> TrickStack:
        """strict: a trick that cannot apply is exit 2 (one task); else it is left out and noted
        (`nlpx eval glue trick=[asl]` keeps STS-B at its squared error)."""
        tricks, skipped = [], {}
        for name in selected(trick_cfg):
            trick = get_class(ORDER[name])(trick_cfg[name], task)
            why = trick.problem()
            if why and strict:
                raise UserError(f"trick={name}: cannot apply to this run: {why}")
            if why:
                skipped[name] = why
            else:
                tricks.append(trick)
        return cls(tricks, skipped)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tricks]

    def get(self, name: str) -> Trick | None:
        return next((t for t in self.tricks if t.name == name), None)

    # -- model and optimizer ----------------------------------------------------------------------
    def prepare_model(self, model):
        for t in self.tricks:
            model = t.prepare_model(model)
        return model

    def save(self, model, run_dir) -> None:
        for t in self.tricks:
            t.save(model, run_dir)

    def describe(self) -> dict:
        return {t.name: t.describe() for t in self.tricks if t.describe()}

    def export_model(self, model):
        for t in reversed(self.tricks):
            model = t.export_model(model)
        return model

    def param_groups(self, model, lr: float, weight_decay: float) -> list[dict] | None:
        for t in self.tricks:
            groups = t.param_groups(model, lr, weight_decay)
            if groups is not None:
                return groups
        return None

    # -- the step ---------------------------------------------------------------------------------
    def loss_fn(self, base_loss):
        """(logits, labels) -> loss: ASL (if any) instead of base_loss, averaged over
        multi_dropout's samples (if any)."""
        asl, msd = self.get("asl"), self.get("multi_dropout")
        single = asl.task_loss if asl is not None else base_loss
        if msd is None:
            return single
        return lambda logits, labels: msd.task_loss_of(single, logits, labels)

    def training_loss(self, step: Step):
        """The loss to backpropagate for one batch, and the clean pass's logits."""
        logits = step.forward()
        loss = step.loss(logits)
        step.parts["task"] = float(loss.detach())
        for t in self.tricks:
            loss = t.extend_loss(step, loss, logits)
        return loss, logits

    def after_backward(self, step: Step) -> None:
        for t in self.tricks:
            t.after_backward(step)

    def on_batch_end(self, step: Step, logits) -> None:
        for t in self.tricks:
            t.on_batch_end(step, logits.detach())

    def metrics(self) -> dict[str, float]:
        return {f"trick/{t.name}_{k}": float(v) for t in self.tricks for k, v in t.metrics().items()}
