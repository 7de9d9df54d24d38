"""The tricks of one fine-tuning run, composed in one fixed order (nlpx.tricks.base has the hooks).

Each trick's class comes from `_target_` in its conf/trick/<name>.yaml, and its `order` attribute
fixes where its hooks run, whatever order `trick=[...]` lists them in:
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
from omegaconf import OmegaConf

from nlpx.errors import UserError
from nlpx.tricks.base import Step, TaskInfo, Trick

TARGET = "_target_"


def trick_class(name: str, cfg) -> type[Trick]:
    """The class named by trick.<name>._target_ (a trick=<name> option always has one)."""
    target = cfg.get(TARGET) if OmegaConf.is_dict(cfg) else None
    if not target:
        from nlpx.config import group_options

        raise UserError(f"trick={name}: unknown (valid: {', '.join(group_options()['trick'])})")
    try:
        cls = get_class(str(target))
    except Exception as e:  # an import error inside the module keeps its cause in the one line
        raise UserError(f"trick.{name}.{TARGET}={target}: {str(e).splitlines()[0]}") from None
    if not issubclass(cls, Trick):
        raise UserError(f"trick.{name}.{TARGET}={target}: not a trick (a subclass of nlpx.tricks.base.Trick)")
    return cls


def _in_order(trick_cfg) -> list[tuple[str, type[Trick]]]:
    classes = [(name, trick_class(name, trick_cfg[name])) for name in (trick_cfg or {})]
    return sorted(classes, key=lambda nc: nc[1].order)


def selected(trick_cfg) -> list[str]:
    """The selected tricks' names, in the order their hooks run."""
    return [name for name, _ in _in_order(trick_cfg)]


def settings(cfg):
    """A trick's keys as it reads them: its yaml without `_target_`."""
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != TARGET])


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
        for name, trick_cls in _in_order(trick_cfg):
            trick = trick_cls(settings(trick_cfg[name]), task)
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

    def settings(self) -> dict[str, dict]:
        """Each applied trick's keys as it read them (a report says which R-Drop, which AWP)."""
        return {t.name: OmegaConf.to_container(t.cfg, resolve=True) for t in self.tricks}

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
        """(logits, labels) -> loss: a replacing trick's loss (ASL) instead of base_loss, then
        wrapped by the wrapping tricks (multi_dropout's mean over its samples)."""
        loss = base_loss
        for t in self.tricks:
            loss = t.replace_loss(loss)
        for t in self.tricks:
            loss = t.wrap_loss(loss)
        return loss

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
