"""The fine-tuning LightningModule: one task, dev evaluation after every epoch, best/last epoch.

The kept epoch's weights are a CPU copy in memory rather than a checkpoint file: a GLUE
evaluation runs tasks x seeds fine-tunings and needs only the kept weights of each, once, to
predict the test sets.
"""

from __future__ import annotations

import math
import time

import lightning as L
import numpy as np
import torch

from nlpx.eval.glue_metrics import mnli_metrics, task_metrics, task_score
from nlpx.train.module import _mix
from nlpx.train.optim import decay_groups

SELECT = ("best", "last")


class FinetuneModule(L.LightningModule):
    def __init__(self, cfg, model, objective, data, *, total_steps: int, steps_per_epoch: int):
        super().__init__()
        self.cfg, self.model, self.objective, self.data = cfg, model, objective, data
        self.task = str(cfg.task.name)
        self.seed = int(cfg.seed)
        self.total_steps, self.steps_per_epoch = total_steps, max(1, steps_per_epoch)
        self.batches_seen = 0
        self.examples_seen = 0
        self.val_seconds = 0.0
        self.evaluations: list[dict] = []  # one per dev evaluation: epoch, step, metrics, score
        self.kept: dict | None = None  # the evaluation selected by task.select
        self.kept_state: dict | None = None  # its weights (None: the model's current weights)
        self.kept_dev_predictions: dict[str, np.ndarray] = {}
        self._val: dict[int, list] = {}
        self._val_started = 0.0

    # -- training ------------------------------------------------------------------------------
    def on_train_batch_start(self, batch, batch_idx):
        # dropout depends on (seed, batch position) only, as in pretraining
        torch.manual_seed(_mix(self.seed, self.batches_seen))

    def training_step(self, batch, batch_idx):
        out = self.objective(self.model, batch)
        self.batches_seen += 1
        self.examples_seen += int(batch["input_ids"].shape[0])
        self.log("train/loss", out["loss"], batch_size=int(batch["input_ids"].shape[0]), prog_bar=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        return out["loss"]

    # -- evaluation ----------------------------------------------------------------------------
    def on_validation_epoch_start(self):
        self._val = {}
        self._val_started = time.perf_counter()

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        logits = self.objective.logits(self.model, batch)
        loss = self.objective.loss(logits, batch["labels"]) * len(logits)
        self._val.setdefault(dataloader_idx, []).append(
            (batch["rows"].cpu(), self.objective.predictions(logits).cpu(), float(loss)))

    def on_validation_epoch_end(self):
        self.val_seconds += time.perf_counter() - self._val_started
        if self.trainer.sanity_checking:
            return
        predictions, per_split, loss_sum, n = {}, {}, 0.0, 0
        for idx, split in enumerate(self.data.dev):
            preds = in_row_order(self._val.get(idx, []), len(split.examples))
            predictions[split.name] = preds
            per_split[split.score_as] = task_metrics(split.score_as, preds, split.encoded.labels)
            loss_sum += sum(x[2] for x in self._val.get(idx, []))
            n += len(split.examples)
        if self.task == "mnli":
            metrics = mnli_metrics(per_split["mnli_m"], per_split["mnli_mm"])
        else:
            metrics = per_split[self.task]
        score = task_score(self.task, metrics)
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
        return batch["rows"].cpu(), self.objective.predictions(logits).cpu()

    def restore_kept(self) -> None:
        if self.kept_state is not None:
            self.model.load_state_dict(self.kept_state)

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        t = self.cfg.task
        optimizer = torch.optim.AdamW(decay_groups(self.parameters(), t.weight_decay), lr=float(t.lr),
                                      betas=tuple(t.adam_betas), eps=float(t.adam_eps))
        warmup = math.ceil(float(t.warmup_ratio) * self.total_steps)  # as transformers' Trainer
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def in_row_order(outputs: list, n: int) -> np.ndarray:
    """Per-batch (rows, predictions) from length-sorted batches -> one array in file order."""
    rows = torch.cat([o[0] for o in outputs]).numpy()
    preds = torch.cat([o[1] for o in outputs]).numpy()
    if len(rows) != n or len(np.unique(rows)) != n:
        raise RuntimeError(f"evaluation covered {len(np.unique(rows))} of {n} examples")
    out = np.empty_like(preds)
    out[rows] = preds
    return out
