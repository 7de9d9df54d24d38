"""The fine-tuning LightningModule: one task, dev evaluation after every epoch, best/last epoch.

The kept epoch's weights are a CPU copy in memory rather than a checkpoint file: a GLUE
evaluation runs tasks x seeds fine-tunings and needs only the kept weights of each, once, to
predict the test sets.

Optimisation is manual (Lightning's manual optimization): fine-tuning tricks work between the
backward and the optimizer step (AWP) and add passes (R-Drop, SiFT), so the step is written out
here: loss (nlpx.tricks.stack), backward, the tricks' after-backward, then every
`accumulate_grad_batches` batches gradient clipping, the optimizer and the LR schedule.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from nlpx.run.module import OptimizerSettings, RunModule, warmup_steps
from nlpx.tricks.base import Step
from nlpx.tricks.stack import TrickStack

SELECT = ("best", "last")


class FinetuneModule(RunModule):
    def __init__(self, cfg, model, objective, data, *, total_steps: int, steps_per_epoch: int,
                 tricks: TrickStack | None = None):
        super().__init__(int(cfg.seed))
        self.automatic_optimization = False
        self.cfg, self.model, self.objective, self.data = cfg, model, objective, data
        self.tricks = tricks or TrickStack([])
        self.loss_fn = self.tricks.loss_fn(objective.loss) if objective is not None else None
        trainer = cfg.get("trainer") or {}
        self.accumulate = int(trainer.get("accumulate_grad_batches", 1))
        clip = trainer.get("gradient_clip_val")
        self.clip = float(clip) if clip else None
        self.passes = [0, 0]  # forward, backward passes since the last optimizer step
        self.pass_totals = [0, 0, 0]  # forward, backward passes, optimizer steps
        self.task = str(cfg.task.name)
        self.total_steps, self.steps_per_epoch = total_steps, max(1, steps_per_epoch)
        self.examples_seen = 0
        self.val_seconds = 0.0
        self.evaluations: list[dict] = []  # one per dev evaluation: epoch, step, metrics, score
        self.kept: dict | None = None  # the evaluation selected by task.select
        self.kept_state: dict | None = None  # its weights (None: the model's current weights)
        self.kept_dev_predictions: dict[str, np.ndarray] = {}
        self._val: dict[int, list] = {}
        self._val_started = 0.0

    # -- training ------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        step = Step(self.model, batch, self.loss_fn, lambda loss: self.manual_backward(loss / self.accumulate),
                    epoch=int(self.current_epoch), global_step=int(self.global_step))
        loss, logits = self.tricks.training_loss(step)
        step.backward(loss)
        self.tricks.after_backward(step)
        self.tricks.on_batch_end(step, logits)
        self.passes[0] += step.forwards
        self.passes[1] += step.backwards
        self.batches_seen += 1
        size = int(batch["input_ids"].shape[0])
        self.examples_seen += size
        if (batch_idx + 1) % self.accumulate == 0 or self.trainer.is_last_batch:
            self._optimizer_step()
        self.log("train/loss", loss.detach(), batch_size=size, prog_bar=True)
        for key, value in step.parts.items():
            self.log(f"train/{key}_loss" if key == "task" else f"train/{key}", value, batch_size=size)
        for key, value in self.tricks.metrics().items():
            self.log(key, value, batch_size=1)
        self.log_lr()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.clock()
        if self.train_seconds > 0:
            self.log("train/examples_per_s", self.examples_seen / self.train_seconds, batch_size=1)

    def _optimizer_step(self) -> None:
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        if self.clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.clip, gradient_clip_algorithm="norm")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        self.log("cost/forward_passes", float(self.passes[0]), batch_size=1)
        self.log("cost/backward_passes", float(self.passes[1]), batch_size=1)
        self.pass_totals = [self.pass_totals[0] + self.passes[0], self.pass_totals[1] + self.passes[1],
                            self.pass_totals[2] + 1]
        self.passes = [0, 0]

    def passes_per_step(self) -> dict:
        steps = max(self.pass_totals[2], 1)
        return {"forward": self.pass_totals[0] / steps, "backward": self.pass_totals[1] / steps}

    # -- evaluation ----------------------------------------------------------------------------
    def on_validation_epoch_start(self):
        super().on_validation_epoch_start()
        self._val = {}
        self._val_started = time.perf_counter()

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        logits = self.objective.logits(self.model, batch)
        loss = self.objective.loss(logits, batch["labels"]) * len(logits)
        self._val.setdefault(dataloader_idx, []).append(
            (batch["rows"].cpu(), _on_cpu(self.objective.predictions(logits, batch)), float(loss)))

    def on_validation_epoch_end(self):
        self.val_seconds += time.perf_counter() - self._val_started
        if self.trainer.sanity_checking:
            return
        predictions, per_split, loss_sum, n = {}, {}, 0.0, 0
        spec = self.data.spec
        for idx, split in enumerate(self.data.dev):
            preds = in_row_order(self._val.get(idx, []), len(split.encoded))
            predictions[split.name] = preds
            per_split[split.score_as] = spec.split_metrics(split.score_as, preds, split.encoded.labels)
            loss_sum += sum(x[2] for x in self._val.get(idx, []))
            n += len(split.encoded)
        metrics = spec.join_metrics(per_split)
        score = spec.score(metrics)
        record = {"epoch": round(self.trainer.global_step / self.steps_per_epoch, 3),
                  "step": int(self.trainer.global_step), "metrics": metrics, "score": score,
                  "loss": loss_sum / max(n, 1)}
        if self.evaluations and self.evaluations[-1]["step"] == record["step"]:
            return  # the same weights evaluated twice (fit's last epoch, then an explicit validate)
        self.evaluations.append(record)
        for key, value in metrics.items():
            self.log(f"val/{key}", value)
        self.log("val/score", score, prog_bar=True)
        self.log("val/loss", record["loss"])
        if self._keep(record):
            self.kept, self.kept_dev_predictions = record, predictions
            if self.cfg.task.select == "best":
                self.kept_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def _keep(self, record: dict) -> bool:
        if self.cfg.task.select == "last" or self.kept is None:
            return True
        # the first of equal scores wins; a nan score (a constant STS-B prediction) never does
        return _finite(record["score"]) > _finite(self.kept["score"])

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        logits = self.objective.logits(self.model, batch)
        return batch["rows"].cpu(), _on_cpu(self.objective.predictions(logits, batch))

    def restore_kept(self) -> None:
        if self.kept_state is not None:
            self.model.load_state_dict(self.kept_state)

    # -- optimisation --------------------------------------------------------------------------
    def optimizer_settings(self) -> OptimizerSettings:
        return OptimizerSettings.from_cfg(self.cfg.optim)

    def param_groups(self, settings: OptimizerSettings) -> list[dict]:
        groups = (self.tricks.param_groups(self.model, settings.lr, settings.weight_decay)
                  or super().param_groups(settings))
        # parameters the objective trains at a rate of their own (a CRF's transitions), no decay
        for params, lr in (self.objective.param_groups() if self.objective is not None else []):
            own = {id(p) for p in params}
            groups = [{**g, "params": [p for p in g["params"] if id(p) not in own]} for g in groups]
            groups.append({"params": list(params), "lr": lr, "weight_decay": 0.0})
        return [g for g in groups if g["params"]]

    def scheduler(self, optimizer):
        from transformers import get_linear_schedule_with_warmup

        warmup = warmup_steps(float(self.cfg.optim.warmup), self.total_steps)
        return get_linear_schedule_with_warmup(optimizer, warmup, self.total_steps)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def _on_cpu(predictions):
    return predictions.cpu() if isinstance(predictions, torch.Tensor) else predictions


def in_row_order(outputs: list, n: int) -> np.ndarray:
    """Per-batch (rows, predictions) from length-sorted batches -> one array in file order.
    Predictions are tensors, or lists of one object per row (a tagger's entity spans)."""
    rows = torch.cat([o[0] for o in outputs]).numpy()
    if isinstance(outputs[0][1], torch.Tensor):
        preds = torch.cat([o[1] for o in outputs]).numpy()
    else:
        preds = np.empty(len(rows), dtype=object)
        preds[:] = [p for o in outputs for p in o[1]]
    if len(rows) != n or len(np.unique(rows)) != n:
        raise RuntimeError(f"evaluation covered {len(np.unique(rows))} of {n} examples")
    out = np.empty_like(preds)
    out[rows] = preds
    return out
